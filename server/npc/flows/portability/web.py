"""The portability flow on the public site: the subscriber's status page and the regulator's
count of requests. Plain Spanish for the subscriber; the rules stay in the handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.flows.portability import notices
from npc.flows.portability.handler import PortabilityHandler
from npc.flows.portability.model import PublicStatus
from npc.flows.portability.rules import DONOR_ANSWER_MINUTES, DONOR_ANSWER_TERM
from npc.web.charts import BarChart, Reference, Series
from npc.web.site import (
    Column,
    Field,
    LookupPage,
    Report,
    ReportQuery,
    StatusView,
    WebRoutes,
    days_between,
    mask_number,
    spanish_instant,
)

# State -> (what the subscriber reads as the state, tone, what it means and what comes next).
STATES: dict[str, tuple[str, str, str]] = {
    "awaiting_donor": (
        "En evaluación",
        "info",
        "Su solicitud fue registrada y enviada a {donor}, su operador actual, que tiene pocos "
        "minutos para revisarla. Si no responde a tiempo, el trámite continúa igual.",
    ),
    "objected_debt": (
        "Observada por deuda",
        "warning",
        "{donor} informó que usted tiene una deuda pendiente. Si ya la pagó, entregue la "
        "constancia de pago a {recipient} cuanto antes: debe presentarla dentro de las 24 horas "
        "siguientes a la observación; si no, la solicitud será rechazada.",
    ),
    "admissible": (
        "Procedente",
        "ok",
        "Su solicitud fue aceptada. {recipient} debe programar la fecha y hora del cambio, que se "
        "realiza de madrugada, dentro de la ventana de cambio.",
    ),
    "scheduled": (
        "Programada",
        "ok",
        "El cambio de operador está programado. Durante la ventana de cambio su servicio puede "
        "interrumpirse hasta 3 horas; luego su número funcionará con {recipient}.",
    ),
    "executed": (
        "Cambio realizado, en confirmación",
        "ok",
        "Su número ya pasó a {recipient}. Los operadores están confirmando el cambio; si su línea "
        "no funciona, comuníquese con {recipient}.",
    ),
    "completed": (
        "Portabilidad completada",
        "ok",
        "Su número ya funciona con {recipient}. El trámite terminó.",
    ),
    # Why a request was rejected or cancelled is `notices.outcome_sentence`, as the notices say.
    "rejected": ("Rechazada", "error", ""),
    "cancelled": ("Cancelada", "error", ""),
}
SERVICES = {"mobile": "Telefonía móvil", "fixed": "Telefonía fija"}
COUNTRIES = {"PE": "Perú", "CO": "Colombia"}

CODE = Field(
    "codigo",
    "Número de solicitud de portabilidad",
    r"SP[0-9]{10}",
    "Escriba el número de solicitud: las letras SP seguidas de 10 dígitos.",
    hint="Se lo entrega su nuevo operador. Empieza con SP, por ejemplo SP0000000123.",
    max_length=12,
    uppercase=True,
)
DOCUMENT = Field(
    "documento",
    "Número de documento del titular",
    r"[A-Z0-9]{4,20}",
    "Escriba el número de documento: solo letras y dígitos, de 4 a 20 caracteres.",
    hint="DNI, carné de extranjería o RUC, el mismo de la solicitud, sin espacios ni guiones.",
    max_length=20,
    uppercase=True,
)

REQUEST_COLUMNS = (
    Column("recipient", "Operador receptor", "operator"),
    Column("donor", "Operador cedente", "operator"),
    Column("service", "Servicio"),
    Column("state", "Estado"),
    Column("requests", "Solicitudes", "number"),
    Column("donor_silent", "Sin respuesta del cedente", "number"),
)
ANSWER_COLUMNS = (
    Column("donor", "Operador cedente", "operator"),
    Column("owed", "Mensajes recibidos (CP y SP)", "number"),
    Column("answers", "Respondidos", "number"),
    Column("in_time", f"Respondidos en {DONOR_ANSWER_MINUTES} minutos", "number"),
    Column("silences", "Sin respuesta", "number"),
    Column("median_seconds", "Mediana (s)", "number"),
    Column("p95_seconds", "Percentil 95 (s)", "number"),
    Column("max_seconds", "Máximo (s)", "number"),
)
DAILY_COLUMNS = (
    Column("day", "Día", "date"),
    Column("donor", "Operador cedente", "operator"),
    Column("recipient", "Operador receptor", "operator"),
    Column("ports", "Portabilidades ejecutadas", "number"),
    Column("numbers", "Números portados", "number"),
)
# The ports chart draws this many operator pairs, the busiest; the rest share one series.
CHART_PAIRS = 7


def seconds(value: float | None) -> float | None:
    """A duration in seconds as the report shows it: to a tenth of a second."""
    return None if value is None else round(value, 1)


def answer_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One donor's answer times, under the report's column keys."""
    return {
        **{key: row[key] for key in ("donor", "owed", "answers", "in_time", "silences")},
        **{key: seconds(row[key]) for key in ("median_seconds", "p95_seconds", "max_seconds")},
    }


def answer_chart(
    query: ReportQuery, rows: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> BarChart:
    """Each donor's median, 95th percentile and longest answer against its 5 minutes."""
    figures = [
        ("Mediana", "median_seconds"),
        ("Percentil 95", "p95_seconds"),
        ("Máximo", "max_seconds"),
    ]
    return BarChart(
        title="Tiempo de respuesta del operador cedente",
        description=(
            "Mediana, percentil 95 y máximo, en segundos, del tiempo que cada operador cedente "
            f"tardó en responder consultas previas y solicitudes, frente al plazo de "
            f"{DONOR_ANSWER_MINUTES} minutos (artículos 20 y 22)."
        ),
        categories=tuple(names.get(r["donor"], r["donor"]) for r in rows),
        series=tuple(Series(label, tuple(r[key] for r in rows)) for label, key in figures),
        unit="segundos",
        reference=Reference(
            DONOR_ANSWER_TERM.total_seconds(), f"Plazo: {DONOR_ANSWER_MINUTES} minutos"
        ),
    )


def daily_chart(
    query: ReportQuery, rows: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> BarChart:
    """Ports executed per day, stacked by operator pair (donor to recipient)."""

    def pair(row: Mapping[str, Any]) -> str:
        return f"{names.get(row['donor'], row['donor'])} → {names.get(row['recipient'], row['recipient'])}"

    totals: dict[str, int] = {}
    for row in rows:
        totals[pair(row)] = totals.get(pair(row), 0) + row["ports"]
    busiest = sorted(totals, key=lambda p: (-totals[p], p))[:CHART_PAIRS]
    others = "Otros pares" if len(totals) > CHART_PAIRS else None
    days = days_between(query.first_day, query.last_day)
    cells: dict[tuple[str, object], float] = {}
    for row in rows:
        name = pair(row) if pair(row) in busiest else str(others)
        cells[(name, row["day"])] = cells.get((name, row["day"]), 0) + row["ports"]
    return BarChart(
        title="Portabilidades ejecutadas por día y par de operadores",
        description=(
            "Portabilidades ejecutadas cada día del periodo (hora local), apiladas por par de "
            "operadores, del cedente al receptor."
        ),
        categories=tuple(f"{d:%d/%m}" for d in days),
        series=tuple(
            Series(name, tuple(cells.get((name, d)) for d in days))
            for name in [*busiest, *([others] if others else [])]
        ),
        unit="portabilidades",
        stacked=True,
        counts=True,
    )


def status_view(status: PublicStatus, handler: PortabilityHandler) -> StatusView:
    """The subscriber's view of a port request, in plain Spanish."""
    calendar = handler.timeline.calendar
    zone = calendar.zone

    def when(instant: Any) -> str:
        return spanish_instant(instant, zone)

    label, tone, text = STATES[status.state]
    # Rejections and cancellations say why in the words of the subscriber's notices.
    explanation = notices.outcome_sentence(
        status.state, status.donor, status.recipient, status.objection_reason, status.schedulable
    ) or text.format(donor=status.donor, recipient=status.recipient)
    numbers = ", ".join(mask_number(n) for n in status.numbers)
    if status.number_count > len(status.numbers):
        numbers += f" y {status.number_count - len(status.numbers)} más"
    details: list[tuple[str, str]] = [
        ("Número de solicitud", status.id),
        ("Servicio", SERVICES.get(status.service, status.service)),
        ("Operador actual (cedente)", status.donor),
        ("Nuevo operador (receptor)", status.recipient),
        ("Números" if status.number_count > 1 else "Número", numbers),
        ("Presentada", when(status.submitted_at)),
    ]
    if status.state in ("awaiting_donor", "objected_debt", "admissible") and status.execution_limit:
        details.append(("Plazo máximo para el cambio", when(status.execution_limit)))
    if status.scheduled_at and status.state in ("scheduled", "executed", "completed"):
        scheduled = when(status.scheduled_at)
        if status.window_end:
            scheduled += (
                f" (la ventana de cambio termina a las {status.window_end.astimezone(zone):%H:%M})"
            )
        details.append(("Cambio programado", scheduled))
    if status.executed_at:
        details.append(("Cambio realizado", when(status.executed_at)))
    if status.closed_at and status.state in ("rejected", "cancelled", "completed"):
        details.append(("Trámite cerrado", when(status.closed_at)))
    details.append(("Zona horaria", f"hora de {COUNTRIES.get(calendar.country, calendar.country)}"))
    if status.notified_to:
        second = notices.SECOND_SOURCE.format(recipient=status.recipient)
        details.append(("Avisos del administrador", f"por {status.notified_to}. {second}"))
    return StatusView(
        heading=f"Solicitud de portabilidad {status.id}",
        state=label,
        explanation=explanation,
        details=details,
        tone=tone,
    )


def portability_web(handler: PortabilityHandler) -> WebRoutes:
    """The status page at /portabilidad/consulta and the requests report."""

    async def lookup(values: dict[str, str]) -> StatusView | None:
        status = await handler.public_status(values["codigo"], values["documento"])
        return status_view(status, handler) if status is not None else None

    async def requests(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        rows = await handler.request_counts(query.start, query.end, query.operator)
        return [
            {
                "recipient": r["recipient"],
                "donor": r["donor"],
                "service": SERVICES.get(r["service"], r["service"]),
                "state": STATES[r["state"]][0],
                "requests": r["requests"],
                "donor_silent": r["donor_silent"],
            }
            for r in rows
        ]

    async def answers(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        rows = await handler.donor_answer_times(query.start, query.end, query.operator)
        return [answer_row(r) for r in rows]

    async def daily(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        return await handler.daily_ports(query.start, query.end, query.operator)

    return WebRoutes(
        pages=[
            LookupPage(
                path="/portabilidad/consulta",
                title="Consulte el estado de su portabilidad",
                nav_label="Estado de mi portabilidad",
                intro=(
                    "Ingrese el número de su solicitud y el número de documento del titular para "
                    "ver en qué etapa está el cambio de operador y cuándo está programado."
                ),
                fields=(CODE, DOCUMENT),
                lookup=lookup,
            )
        ],
        reports=[
            Report(
                slug="portabilidad-solicitudes",
                title="Solicitudes de portabilidad",
                description=(
                    "Solicitudes presentadas en el periodo por operador receptor, operador "
                    "cedente, servicio y estado actual; con un operador, aquellas en que es "
                    "receptor o cedente."
                ),
                columns=REQUEST_COLUMNS,
                rows=requests,
                operators_see_own=True,
            ),
            Report(
                slug="portabilidad-respuestas-cedente",
                title="Tiempo de respuesta del operador cedente",
                description=(
                    "Por operador cedente, las consultas previas y solicitudes que recibió en el "
                    "periodo, cuántas respondió, cuántas dentro de los "
                    f"{DONOR_ANSWER_MINUTES} minutos (artículos 20 y 22) y cuántas quedaron sin "
                    "respuesta (infracciones 18 y 21), con la mediana, el percentil 95 y el "
                    "máximo del tiempo de respuesta."
                ),
                columns=ANSWER_COLUMNS,
                rows=answers,
                operators_see_own=True,
                chart=answer_chart,
            ),
            Report(
                slug="portabilidad-ejecuciones-diarias",
                title="Portabilidades ejecutadas por día",
                description=(
                    "Portabilidades ejecutadas cada día (hora local) por operador cedente y "
                    "receptor, con los números portados; con un operador, aquellas en que es "
                    "parte."
                ),
                columns=DAILY_COLUMNS,
                rows=daily,
                operators_see_own=True,
                chart=daily_chart,
            ),
        ],
    )
