"""The PQR flow on the public site: the status of a PQR by its CUN (art. 2.1.5.14) and the
monthly attention indicators per provider (art. 2.1.5.15.3, 2.1.5.15.4).

Colombian Spanish, addressing the user as "usted"; dates in Bogotá time. The indicators are
defined per calendar month, so the report is a monthly one: the filter picks whole months and
each row is one provider in one month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from npc.flows.pqr.handler import PqrHandler
from npc.flows.pqr.model import ProviderIndicators, PublicStatus
from npc.flows.pqr.rules import ACKNOWLEDGE_WITHIN, JURISDICTION, SHORT_CODE, Kind, State, Subject
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

# State -> (what the user reads as the state, tone).
STATES: dict[str, tuple[str, str]] = {
    State.ANALYSIS: ("En análisis por parte del proveedor", "info"),
    State.EVIDENCE: ("En etapa de pruebas del proveedor", "info"),
    State.ANSWERED: ("Respondida por el proveedor", "ok"),
    State.RECONSIDERATION: ("Recurso de reposición en análisis por parte del proveedor", "info"),
    State.RECONSIDERATION_EVIDENCE: ("Recurso de reposición en etapa de pruebas", "info"),
    State.SILENCE_APPLIED: ("Resuelta a su favor por silencio administrativo positivo", "ok"),
    State.TRANSFER_DUE: ("Recurso de apelación: expediente por enviar a la SIC", "warning"),
    State.APPEAL: ("Recurso de apelación en análisis por parte de la SIC", "info"),
    State.CLOSED: ("Trámite cerrado", "ok"),
}
# What the date of `public_status()["due_at"]` is, by state.
DUE_LABELS: dict[str, str] = {
    State.ANALYSIS: "Fecha máxima de respuesta",
    State.EVIDENCE: "Fecha máxima de respuesta",
    State.RECONSIDERATION: "Fecha máxima de respuesta al recurso",
    State.RECONSIDERATION_EVIDENCE: "Fecha máxima de respuesta al recurso",
    State.ANSWERED: "Último día para presentar recurso de reposición",
    State.SILENCE_APPLIED: "Plazo del proveedor para cumplir lo resuelto a su favor",
    State.TRANSFER_DUE: "Último día para enviar el expediente a la SIC",
    State.APPEAL: "Fecha máxima de decisión de la SIC",
}
KINDS: dict[str, str] = {Kind.PETITION: "Petición", Kind.COMPLAINT: "Queja"}
SUBJECTS: dict[str, str] = {
    Subject.BILLING: "facturación",
    Subject.SUSPENSION: "suspensión del servicio",
    Subject.TERMINATION: "terminación del contrato",
    Subject.CUT: "corte del servicio",
    Subject.CONTRACT_REFUSAL: "negativa a contratar",
    Subject.SERVICE_QUALITY: "calidad del servicio",
    Subject.OTHER: "otros",
}

ACK_MINUTES = ACKNOWLEDGE_WITHIN // timedelta(minutes=1)

NOT_FOUND = (
    "No encontramos una petición, queja o recurso con ese CUN. Revise el número que le informó "
    "su proveedor al radicar su PQR e inténtelo de nuevo. Si el problema continúa, comuníquese "
    "con la línea gratuita de atención de su proveedor."
)
CUN = Field(
    "cun",
    "Código Único Numérico (CUN)",
    r"[0-9]{6,18}",
    "Escriba el CUN: solo dígitos, entre 6 y 18.",
    hint="Su proveedor se lo informó al radicar su petición, queja o recurso. Solo los dígitos.",
    max_length=18,
    inputmode="numeric",
)

INDICATOR_COLUMNS = (
    Column("month", "Mes"),
    Column("provider", "Proveedor", "operator"),
    Column("sms_requests", f"Solicitudes SMS QUEJA al {SHORT_CODE}", "number"),
    Column("sms_acknowledged_in_time", f"Acuse en {ACK_MINUTES} minutos", "number"),
    Column("sms_acknowledged_in_time_pct", f"Acuse en {ACK_MINUTES} minutos (%)", "number"),
    Column("sms_contacted_in_time", "Llamada a tiempo", "number"),
    Column("sms_contacted_in_time_pct", "Llamada a tiempo (%)", "number"),
    Column("sms_closed_unreachable", "Cerradas sin contacto", "number"),
    Column("pqrs_filed", "PQR radicadas", "number"),
    Column("answers", "Respuestas", "number"),
    Column("answers_in_time", "Respuestas a tiempo", "number"),
    Column("answers_in_time_pct", "Respuestas a tiempo (%)", "number"),
    Column("silences_applied", "Silencios administrativos positivos", "number"),
    Column("silence_effects_late", "Efectos del silencio fuera de plazo", "number"),
    Column("transfers_to_sic", "Expedientes enviados a la SIC", "number"),
    Column("transfers_to_sic_late", "Envíos a la SIC fuera de plazo", "number"),
    Column("frequent_complaints", "Quejas más frecuentes", "prose"),
)


def months(first_day: date, last_day: date) -> list[str]:
    """The months (``YYYY-MM``) from `first_day`'s to `last_day`'s, in order."""
    found = []
    year, month = first_day.year, first_day.month
    while (year, month) <= (last_day.year, last_day.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def status_view(status: PublicStatus, handler: PqrHandler) -> StatusView:
    """The user's view of a PQR: the regulated sentence first, then the facts in Bogotá time."""
    zone = handler.calendar.zone

    def last_day_of(limit: datetime) -> str:
        # Terms in business days end at local midnight: the user reads the last day they include.
        local = limit.astimezone(zone)
        if local.time() == time(0, 0):
            return spanish_date((local - timedelta(microseconds=1)).date())
        return spanish_instant(limit, zone)

    label, tone = STATES[status["state"]]
    details: list[tuple[str, str]] = [
        ("CUN", status["cun"]),
        ("Proveedor", status["provider_name"]),
        ("Tipo", KINDS.get(status["kind"], status["kind"])),
        ("Radicada", spanish_instant(status["filed_at"], zone)),
    ]
    if status["due_at"] is not None and status["state"] in DUE_LABELS:
        details.append((DUE_LABELS[status["state"]], last_day_of(status["due_at"])))
    if status["transfer_notice"]:
        details.append(("Envío del expediente a la SIC", status["transfer_notice"]))
    details.append(("Zona horaria", "hora de Colombia"))
    return StatusView(
        heading=f"Su PQR con CUN {status['cun']}",
        state=label,
        explanation=status["sentence"],
        details=details,
        tone=tone,
    )


def indicator_row(row: ProviderIndicators) -> dict[str, Any]:
    """One provider's month of `PqrHandler.report`, under the report's column keys."""
    return {
        "month": row["month"],
        "provider": row["provider"],
        "sms_requests": row["sms_requests"],
        "sms_acknowledged_in_time": row["sms_acknowledged_in_time"],
        "sms_acknowledged_in_time_pct": row["sms_acknowledged_in_time_pct"],
        "sms_contacted_in_time": row["sms_contacted_in_time"],
        "sms_contacted_in_time_pct": row["sms_contacted_in_time_pct"],
        "sms_closed_unreachable": row["sms_closed_unreachable"],
        "pqrs_filed": row["pqrs_filed"],
        "answers": row["answers"],
        "answers_in_time": row["answers_in_time"],
        "answers_in_time_pct": row["answers_in_time_pct"],
        "silences_applied": row["silences_applied"],
        "silence_effects_late": row["silence_effects_late"],
        "transfers_to_sic": row["transfers_to_sic"],
        "transfers_to_sic_late": row["transfers_to_sic_late"],
        "frequent_complaints": "; ".join(
            f"{SUBJECTS.get(subject, subject)}: {count}"
            for subject, count in row["frequent_complaints"]
        ),
    }


def pqr_web(handler: PqrHandler) -> WebRoutes:
    """The status page at /pqr/consulta and the monthly indicators report."""

    async def lookup(values: dict[str, str]) -> StatusView | None:
        status = await handler.public_status(values["cun"])
        return status_view(status, handler) if status is not None else None

    async def indicators(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        rows: list[dict[str, Any]] = []
        for month in months(query.first_day, query.last_day):
            rows.extend(indicator_row(r) for r in await handler.report(month, query.operator))
        return rows

    return WebRoutes(
        pages=[
            LookupPage(
                path="/pqr/consulta",
                title="Consulte el estado de su PQR",
                nav_label="Estado de mi PQR",
                intro=(
                    "Escriba el Código Único Numérico (CUN) que le informó su proveedor al "
                    "radicar su petición, queja o recurso, para conocer en qué estado está el "
                    "trámite y hasta qué día tiene plazo para responderle."
                ),
                fields=(CUN,),
                lookup=lookup,
                not_found=NOT_FOUND,
                jurisdiction=JURISDICTION,
            )
        ],
        reports=[
            Report(
                slug="pqr-indicadores",
                title="Indicadores mensuales de atención de PQR",
                description=(
                    "Por proveedor y mes (hora de Colombia): solicitudes de queja por SMS al "
                    f"{SHORT_CODE} con acuse y llamada a tiempo (art. 2.1.5.1, parágrafo 1), PQR "
                    "radicadas, respuestas dentro del término (art. 2.1.5.2), silencios "
                    "administrativos positivos y sus efectos fuera de plazo, expedientes "
                    "enviados a la SIC y los enviados fuera de plazo (art. 2.1.5.9.3), y las "
                    "quejas más frecuentes por asunto (art. 2.1.5.15.3 y 2.1.5.15.4). Se elige "
                    "por meses completos."
                ),
                columns=INDICATOR_COLUMNS,
                rows=indicators,
                operators_see_own=True,
                jurisdiction=JURISDICTION,
                period="month",
            )
        ],
    )
