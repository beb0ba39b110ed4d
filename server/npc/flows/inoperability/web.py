"""The inoperability registry in the regulator's reports: the events of each operator in a period
("Reporte de Eventos de Inoperatividad de los Sistemas de Atención", seed 002) and their totals.
Error/test records are left out, as they are never reported; events over one hour are flagged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.flows.inoperability.handler import InoperabilityHandler
from npc.flows.inoperability.model import ReportRow
from npc.flows.inoperability.rules import REPORT_WITHIN_BUSINESS_DAYS, Scenario
from npc.store.operators import operator_list
from npc.web.site import Column, Report, ReportQuery, WebRoutes

POINT_TYPES = {
    "store": "Centro de atención (CAC)",
    "dealer": "ACD regulado",
    "call_centre": "Atención telefónica (123/135)",
}
REQUEST_TYPES = {
    "claims": "Reclamos",
    "activations": "Altas",
    "cancellations": "Bajas",
    "inquiries": "Consultas",
}
SCENARIOS = {
    "mass_failure": "Falla masiva",
    "unforeseen_event": "Evento no previsto",
    "error_or_test": "Error o pruebas",
}
CLOSING_REASONS = {
    "connectivity": "Inconveniente de conectividad",
    "intermittency": "Intermitencia",
    "maintenance": "Mantenimiento de aplicativos",
    "mass_application_failure": "Falla masiva de aplicativo",
    "point_infrastructure": "Infraestructura del punto de atención",
    "no_power": "Sin fluido eléctrico en el punto de atención",
    "user_error": "Error de usuario",
}
YES_NO = {True: "Sí", False: "No"}

EVENT_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("number", "N.º", "number"),
    Column("attention_point_code", "Punto de atención"),
    Column("attention_point_name", "Nombre del punto", "prose"),
    Column("attention_point_type", "Canal"),
    Column("request_type", "Trámite"),
    Column("scenario", "Escenario"),
    Column("detail", "Detalle", "prose"),
    Column("started_at", "Inicio", "instant"),
    Column("ended_at", "Fin", "instant"),
    Column("duration_minutes", "Duración (min)", "number"),
    Column("over_one_hour", "Más de 1 hora"),
    Column("closing_reason", "Motivo de ocurrencia", "prose"),
    Column("report_due_at", "Plazo para reportar", "instant"),
    Column("reported_at", "Reportado", "instant"),
    Column("blocks_stolen_or_lost", "Bloqueos por robo o pérdida", "number"),
    Column("claims_filed", "Reclamos presentados", "number"),
)
SUMMARY_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("events", "Eventos", "number"),
    Column("closed", "Cerrados", "number"),
    Column("open", "Abiertos", "number"),
    Column("total_minutes", "Minutos de inoperatividad", "number"),
    Column("over_one_hour", "Eventos de más de 1 hora", "number"),
    *(
        Column(f"scenario_{key}", label, "number")
        for key, label in SCENARIOS.items()
        if key != Scenario.ERROR_OR_TEST
    ),
    *(Column(f"request_type_{key}", label, "number") for key, label in REQUEST_TYPES.items()),
    Column("closing_reasons", "Motivos de ocurrencia", "prose"),
)


def _label(labels: Mapping[str, str], value: str | None) -> str | None:
    return None if value is None else labels.get(value, value)


def _event_row(e: ReportRow) -> dict[str, Any]:
    """One event's line of the events report."""
    return {
        "operator": e.operator,
        "number": e.number,
        "attention_point_code": e.attention_point_code,
        "attention_point_name": e.attention_point_name,
        "attention_point_type": _label(POINT_TYPES, e.attention_point_type),
        "request_type": _label(REQUEST_TYPES, e.request_type),
        "scenario": _label(SCENARIOS, e.scenario),
        "detail": e.detail,
        "started_at": e.started_at,
        "ended_at": e.ended_at,
        "duration_minutes": e.duration_minutes,
        "over_one_hour": YES_NO[e.over_one_hour],
        "closing_reason": _label(CLOSING_REASONS, e.closing_reason),
        "report_due_at": e.report_due_at,
        "reported_at": e.reported_at,
        "blocks_stolen_or_lost": e.critical_block_stolen_or_lost,
        "claims_filed": e.critical_claim_filing,
    }


def _summary_row(s: Mapping[str, Any]) -> dict[str, Any]:
    """One operator's line of the summary (`InoperabilityHandler.summary`)."""
    reasons = sorted(s["by_closing_reason"].items())
    return {
        "operator": s["operator"],
        "events": s["events"],
        "closed": s["closed"],
        "open": s["open"],
        "total_minutes": s["total_minutes"],
        "over_one_hour": s["over_one_hour"],
        **{
            f"scenario_{key}": s["by_scenario"].get(key, 0)
            for key in SCENARIOS
            if key != Scenario.ERROR_OR_TEST
        },
        **{f"request_type_{key}": s["by_request_type"].get(key, 0) for key in REQUEST_TYPES},
        "closing_reasons": "; ".join(
            f"{CLOSING_REASONS.get(reason, reason)}: {count}" for reason, count in reasons
        )
        or None,
    }


def inoperability_web(handler: InoperabilityHandler) -> WebRoutes:
    """The events report and the summary per operator; an operator reads only its own."""

    async def operators_of(query: ReportQuery) -> list[str]:
        if query.operator is not None:
            return [query.operator]
        async with handler.core.db.pool.acquire() as conn:
            return [id_ for id_, _ in await operator_list(conn)]

    async def events(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        return [
            _event_row(event)
            for operator in await operators_of(query)
            for event in await handler.report(operator, query.first_day, query.last_day)
        ]

    async def summaries(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        return [
            _summary_row(await handler.summary(operator, query.first_day, query.last_day))
            for operator in await operators_of(query)
        ]

    jurisdiction = handler.calendar.country
    return WebRoutes(
        reports=[
            Report(
                slug="inoperatividad-eventos",
                title="Reporte de eventos de inoperatividad de los sistemas de atención",
                description=(
                    "Eventos de inoperatividad de los aplicativos de venta y postventa que "
                    "empezaron en el periodo, por operador y número correlativo, sin los "
                    "registros de error o pruebas. «Más de 1 hora» señala los eventos cerrados "
                    "que duraron más de una hora; cada evento se reporta como máximo a los "
                    f"{REPORT_WITHIN_BUSINESS_DAYS} días hábiles de terminado."
                ),
                columns=EVENT_COLUMNS,
                rows=events,
                operators_see_own=True,
                jurisdiction=jurisdiction,
            ),
            Report(
                slug="inoperatividad-resumen",
                title="Resumen de inoperatividad por operador",
                description=(
                    "Totales por operador de los eventos que empezaron en el periodo (sin error "
                    "o pruebas): cerrados y abiertos, minutos de inoperatividad, eventos de más "
                    "de una hora, y eventos por escenario, trámite y motivo de ocurrencia."
                ),
                columns=SUMMARY_COLUMNS,
                rows=summaries,
                operators_see_own=True,
                jurisdiction=jurisdiction,
            ),
        ]
    )
