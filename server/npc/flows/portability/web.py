"""The portability flow on the public site: the subscriber's status page and the regulator's
count of requests. Plain Spanish for the subscriber; the rules stay in the handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.flows.portability import notices
from npc.flows.portability.handler import PortabilityHandler
from npc.flows.portability.model import PublicStatus
from npc.web.site import (
    Column,
    Field,
    LookupPage,
    Report,
    ReportQuery,
    StatusView,
    WebRoutes,
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
    Column("receptor", "Operador receptor"),
    Column("cedente", "Operador cedente"),
    Column("servicio", "Servicio"),
    Column("estado", "Estado"),
    Column("solicitudes", "Solicitudes", "number"),
    Column("cedente_sin_respuesta", "Sin respuesta del cedente", "number"),
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
                "receptor": r["recipient"],
                "cedente": r["donor"],
                "servicio": SERVICES.get(r["service"], r["service"]),
                "estado": STATES[r["state"]][0],
                "solicitudes": r["requests"],
                "cedente_sin_respuesta": r["donor_silent"],
            }
            for r in rows
        ]

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
            )
        ],
    )
