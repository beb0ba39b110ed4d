"""The cancellations and plan migrations tracking flow on the public site: the subscriber's
status of a cancellation (baja) or plan migration request, and the regulator's report of the
operators' compliance with the daily report (7 days a week)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from npc.flows.cancellations import store
from npc.flows.cancellations.handler import CancellationsHandler
from npc.flows.cancellations.rules import REPORTING_THRESHOLD
from npc.store.operators import operator_list
from npc.web.site import (
    Column,
    Field,
    LookupPage,
    Report,
    ReportQuery,
    StatusView,
    WebRoutes,
    spanish_date,
    spanish_instant,
)

KINDS = {"cancellation": "Baja del servicio", "migration": "Migración de plan"}
HEADINGS = {"cancellation": "Solicitud de baja", "migration": "Solicitud de migración de plan"}
SERVICES = {
    "fixed": "Telefonía fija",
    "mobile": "Telefonía móvil",
    "internet": "Internet",
    "pay_tv": "Televisión de paga",
}
CHANNELS = {
    "store": "Presencial (centro de atención)",
    "phone": "Telefónico",
    "web": "Página web",
    "mobile_app": "Aplicación móvil",
    "email": "Correo electrónico",
    "other": "Otro canal",
}
SERVICE_STATUSES = {
    "active": "Activo",
    "suspended": "Suspendido",
    "cancelled": "Dado de baja",
    "migrated": "Migrado al nuevo plan",
}
# State -> (what the subscriber reads as the state, tone).
STATES = {
    "pending": ("En trámite", "info"),
    "executed": ("Ejecutada", "ok"),
    "rejected": ("Rechazada", "error"),
    "withdrawn": ("Retirada", "info"),
}
COUNTRIES = {"PE": "Perú", "CO": "Colombia"}

NOT_FOUND = (
    "No encontramos una solicitud con esos datos. Revise el operador, el código de la solicitud "
    "y el número de documento e inténtelo de nuevo. Su operador informa cada día sus solicitudes: "
    "si la presentó hoy, vuelva a consultar mañana."
)

# The operators bound to report; every operator while none is registered, so the form is never empty.
# Spanish groups thousands with spaces: "500 000".
_THRESHOLD = f"{REPORTING_THRESHOLD:,}".replace(",", " ")

OPERATOR = Field(
    "operador",
    "Operador",
    r"[a-z][a-z0-9_-]{1,31}",
    "Elija de la lista el operador ante el que presentó la solicitud.",
    hint="La empresa ante la que pidió la baja o el cambio de plan.",
    max_length=32,
)
REQUEST_CODE = Field(
    "codigo",
    "Código de la solicitud",
    r"[A-Za-z0-9._/-]{1,40}",
    "Escriba el código de la solicitud tal como se lo entregó su operador (hasta 40 letras, "
    "dígitos, puntos, guiones o barras).",
    hint="El código o número de pedido que le dio su operador al presentar la solicitud.",
    max_length=40,
)
DOCUMENT = Field(
    "documento",
    "Número de documento del titular",
    r"[A-Z0-9-]{4,20}",
    "Escriba el número de documento: solo letras, dígitos o guiones, de 4 a 20 caracteres.",
    hint="DNI, carné de extranjería o RUC con el que presentó la solicitud.",
    max_length=20,
    uppercase=True,
)

COMPLIANCE_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("days_due", "Días exigibles", "number"),
    Column("received", "Reportes recibidos", "number"),
    Column("on_time", "A tiempo", "number"),
    Column("late", "Fuera de plazo", "number"),
    Column("missing", "Faltantes", "number"),
    Column("late_dates", "Fechas reportadas fuera de plazo", "prose"),
    Column("missing_dates", "Fechas sin reporte", "prose"),
)


def explanation(status: Mapping[str, Any], when: Any) -> tuple[str, str]:
    """What the request's state means for the subscriber, and the tone to show it in."""
    operator = status["operator_name"]
    state = status["state"]
    migration = status["kind"] == "migration"
    label, tone = STATES[state]
    scheduled = status["scheduled_date"]
    if state == "pending":
        if status["scheduled_date_missed"]:
            return (
                f"{operator} debía ejecutar su solicitud a más tardar el "
                f"{spanish_date(scheduled)} y no lo hizo a tiempo; el incumplimiento quedó "
                f"registrado. Si aún le cobran por el servicio o por el plan anterior, "
                f"comuníquese con {operator} o presente un reclamo.",
                "warning",
            )
        what = "el cambio a su nuevo plan" if migration else "la baja de su servicio"
        when_text = f"el {spanish_date(scheduled)}" if scheduled else "en la fecha programada"
        return (
            f"{operator} registró su solicitud y tiene programada {what} para {when_text}. "
            "Ese día debe quedar ejecutada.",
            tone,
        )
    if state == "executed":
        done = (
            f"Su plan fue cambiado a {status['target_plan']}"
            if migration and status["target_plan"]
            else "Su plan fue cambiado"
            if migration
            else "Su servicio fue dado de baja"
        )
        executed = f" el {when(status['executed_at'])}" if status["executed_at"] else ""
        late = (
            f" Se ejecutó después de la fecha programada ({spanish_date(scheduled)}); el "
            "incumplimiento quedó registrado."
            if status["scheduled_date_missed"]
            else ""
        )
        return f"{done}{executed}. El trámite terminó.{late}", tone
    if state == "rejected":
        reason = status["execution_reason"] or "no informado"
        return (
            f"{operator} rechazó su solicitud. Motivo informado: {reason}. Si no está de "
            f"acuerdo, puede presentar un reclamo ante {operator}.",
            tone,
        )
    return (
        f"La solicitud fue retirada y {operator} no la ejecutará. Si no la retiró usted, "
        f"comuníquese con {operator}.",
        tone,
    )


def status_view(status: Mapping[str, Any], handler: CancellationsHandler) -> StatusView:
    """The subscriber's view of a tracked request, in plain Spanish and local time."""
    calendar = handler.calendar
    zone = calendar.zone

    def when(instant: Any) -> str:
        return spanish_instant(instant, zone)

    text, tone = explanation(status, when)
    details: list[tuple[str, str]] = [
        ("Código de la solicitud", status["request_code"]),
        ("Operador", status["operator_name"]),
        ("Trámite", KINDS.get(status["kind"], status["kind"])),
        ("Servicio", SERVICES.get(status["service"], status["service"])),
        ("Canal de atención", CHANNELS.get(status["channel"], status["channel"])),
        ("Presentada", when(status["requested_at"])),
    ]
    if status["kind"] == "migration" and status["target_plan"]:
        details.append(("Nuevo plan", status["target_plan"]))
    if status["scheduled_date"]:
        details.append(("Fecha programada", spanish_date(status["scheduled_date"])))
    if status["executed_at"]:
        details.append(("Ejecutada", when(status["executed_at"])))
    if status["execution_reason"] and status["state"] != "rejected":
        details.append(("Motivo informado", status["execution_reason"]))
    details.append(("Estado del servicio", SERVICE_STATUSES.get(status["service_status"], "—")))
    details.append(("Información del reporte diario del", spanish_date(status["last_report_date"])))
    details.append(("Zona horaria", f"hora de {COUNTRIES.get(calendar.country, calendar.country)}"))
    return StatusView(
        heading=f"{HEADINGS.get(status['kind'], 'Solicitud')} {status['request_code']}",
        state=STATES[status["state"]][0],
        explanation=text,
        details=details,
        tone=tone,
    )


def dates_text(days: Sequence[date]) -> str:
    """Report dates as ``2026-11-22, 2026-11-23`` (ISO, so CSV and JSON sort and parse them)."""
    return ", ".join(d.isoformat() for d in days)


def _compliance_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """One operator's line of the daily-report compliance report."""
    return {
        "operator": item["operator"],
        "days_due": item["days_due"],
        "received": item["received"],
        "on_time": item["on_time"],
        "late": item["late"],
        "missing": item["missing"],
        "late_dates": dates_text(item["late_dates"]),
        "missing_dates": dates_text(item["missing_dates"]),
    }


def cancellations_web(handler: CancellationsHandler) -> WebRoutes:
    """The status page at /bajas-migraciones/consulta and the daily-report compliance report."""

    async def operators() -> Sequence[tuple[str, str]]:
        # The operators bound to report (now or before: their requests stay visible); every
        # operator while none is registered, so the form is never empty.
        async with handler.core.db.pool.acquire() as conn:
            bound = set(await store.ever_reporting(conn))
            everyone = await operator_list(conn, by="name")
        return [(id_, name) for id_, name in everyone if not bound or id_ in bound]

    async def lookup(values: dict[str, str]) -> StatusView | None:
        status = await handler.public_status(
            values["operador"], values["codigo"], values["documento"]
        )
        return status_view(status, handler) if status is not None else None

    async def compliance(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        items = await handler.daily_report_compliance(
            query.first_day, query.last_day, query.operator
        )
        return [_compliance_row(i) for i in items]

    due = handler.settings.report_due_time
    return WebRoutes(
        pages=[
            LookupPage(
                path="/bajas-migraciones/consulta",
                title="Consulte su solicitud de baja o de cambio de plan",
                nav_label="Estado de mi baja o cambio de plan",
                intro=(
                    "Elija su operador y escriba el código de su solicitud de baja del servicio "
                    "o de migración de plan y el número de documento del titular, para ver si ya "
                    "fue ejecutada o en qué fecha está programada."
                ),
                fields=(
                    replace(OPERATOR, choices=operators),
                    REQUEST_CODE,
                    DOCUMENT,
                ),
                lookup=lookup,
                not_found=NOT_FOUND,
            )
        ],
        reports=[
            Report(
                slug="bajas-reporte-diario",
                title="Cumplimiento del reporte diario de bajas y migraciones",
                description=(
                    f"Por operador obligado (más de {_THRESHOLD} abonados) y fechas"
                    " de reporte del "
                    "periodo ya vencidas: días exigibles, reportes recibidos, recibidos a tiempo "
                    f"(antes de las {due:%H:%M} del día siguiente, hora local), fuera de plazo y "
                    "faltantes, con sus fechas. Sistema de Seguimiento de Bajas y Migraciones: "
                    "reporte diario, 7 días a la semana."
                ),
                columns=COMPLIANCE_COLUMNS,
                rows=compliance,
                operators_see_own=True,
                jurisdiction=handler.settings.jurisdiction,
            )
        ],
    )
