"""The user management system (SGU) on the public site: the subscriber's status page, the page
the confirmation e-mail links to, and the regulator's statistics. Plain Spanish for the
subscriber; the rules stay in the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from npc.flows.sgu import store
from npc.flows.sgu.base import CONFIRM_PATH
from npc.flows.sgu.handler import SguHandler
from npc.flows.sgu.rules import CONFIRMATION_HOURS, MAX_SCORE, State
from npc.store.operators import name_of
from npc.web.lookup import FOREIGN_FORM, NO_STORE
from npc.web.render import cross_site, render
from npc.web.site import (
    Column,
    Field,
    LookupPage,
    Report,
    ReportQuery,
    StatusView,
    WebRoutes,
    mask_number,
    spanish_date,
    spanish_instant,
)

TEMPLATES = Path(__file__).parent / "templates"
LOOKUP_PATH = "/sgu/consulta"

# State -> (what the subscriber reads as the state, tone, what it means and what comes next).
STATES: dict[State, tuple[str, str, str]] = {
    State.AWAITING_CONFIRMATION: (
        "Pendiente de confirmar su correo",
        "warning",
        "Registramos su problema, pero todavía no se envía a {operator}: confirme su correo "
        "electrónico con el enlace que le enviamos. Si no lo confirma dentro de las {hours} horas, el "
        "registro vence.",
    ),
    State.IN_TRAY: (
        "En atención por su empresa operadora",
        "info",
        "Su problema fue trasladado a {operator}, que debe responderle a más tardar en el plazo "
        "indicado abajo. Le avisaremos por correo cuando responda.",
    ),
    State.OVERDUE: (
        "Sin respuesta en el plazo",
        "warning",
        "{operator} no respondió dentro del plazo. El incumplimiento quedó registrado; la "
        "empresa todavía debe responderle.",
    ),
    State.ANSWERED: (
        "Respondido",
        "ok",
        "{operator} respondió su problema. Califique la respuesta indicando si quedó satisfecho.",
    ),
    State.CLOSED: ("Cerrado", "ok", "El trámite terminó."),
    State.ESCALATION_OPEN: (
        "Respondido, sin su conformidad",
        "warning",
        "Usted indicó que la respuesta de {operator} no lo dejó satisfecho.",
    ),
    State.CLAIM_REQUESTED: (
        "Reclamo en trámite",
        "info",
        "Usted pidió convertir su problema en reclamo. {operator} debe asignarle de inmediato un "
        "código de reclamo, que le enviaremos por correo.",
    ),
    State.CLAIMED: (
        "Reclamo registrado",
        "ok",
        "Su reclamo fue registrado ante {operator} con el código indicado abajo; la empresa debe "
        "resolverlo dentro del plazo.",
    ),
    State.EXPIRED: (
        "Registro vencido",
        "error",
        "El correo no se confirmó dentro de las {hours} horas y el registro venció. Puede registrar "
        "su problema nuevamente.",
    ),
}
CAN_CLAIM = " Puede convertir su problema en reclamo."
CONFIRMED = "Gracias: su correo electrónico está confirmado. "
NOT_FOUND = (
    "No encontramos un problema registrado con esos datos. Revise el código y el número de "
    "documento e inténtelo de nuevo. Si el problema continúa, comuníquese con el OSIPTEL."
)
BAD_LINK = (
    "El enlace o el código de confirmación no es válido. Copie el enlace completo del correo que "
    "le enviamos o escriba el código tal como aparece en él."
)

CODE = Field(
    "codigo",
    "Código del problema",
    r"SG[0-9]{10}",
    "Escriba el código del problema: las letras SG seguidas de 10 dígitos.",
    hint="Aparece en los correos del SGU. Empieza con SG, por ejemplo SG0000000123.",
    max_length=12,
    uppercase=True,
)
DOCUMENT = Field(
    "documento",
    "Número de documento del titular",
    r"[A-Z0-9]{4,20}",
    "Escriba el número de documento: solo letras y dígitos, de 4 a 20 caracteres.",
    hint="DNI, carné de extranjería o RUC, el mismo del registro, sin espacios ni guiones.",
    max_length=20,
    uppercase=True,
)
TOKEN = Field(
    "token",
    "Código de confirmación",
    r"[A-Za-z0-9_-]{16,100}",
    "Escriba el código de confirmación tal como aparece en el correo.",
    max_length=100,
)

FREQUENT_COLUMNS = (
    Column("subcategory", "Subcategoría"),
    Column("problem", "Problema", "prose"),
    Column("problems", "Problemas", "number"),
)
TIME_COLUMNS = (
    Column("subcategory", "Subcategoría"),
    Column("problem", "Problema", "prose"),
    Column("answered", "Respondidos", "number"),
    Column("average_hours", "Horas en responder (promedio)", "number"),
    Column("max_hours", "Horas en responder (máximo)", "number"),
)
OPERATOR_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("problems", "Problemas", "number"),
    Column("answered_in_time", "Respondidos a tiempo", "number"),
    Column("answered_late", "Respondidos tarde", "number"),
    Column("unanswered_overdue", "Vencidos sin respuesta", "number"),
    Column("claims", "Convertidos en reclamo", "number"),
)
SATISFACTION_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("rated", "Respuestas calificadas", "number"),
    Column("satisfied", "Usuarios satisfechos", "number"),
    Column("satisfied_pct", "Satisfechos (%)", "number"),
    Column("average_score", "Puntaje promedio (1 a 5)", "number"),
)
SOURCE = (
    "Instructivo Técnico del SGU (Res. 00170-2020-CD/OSIPTEL), reportes estadísticos; problemas "
    "registrados en el periodo y trasladados a la empresa operadora."
)


def problem_view(
    status: Mapping[str, Any], operator_name: str, subcategory_name: str, handler: SguHandler
) -> StatusView:
    """The subscriber's view of a problem, in plain Spanish."""
    label, tone, text = STATES[State(status["state"])]
    explanation = text.format(operator=operator_name, hours=CONFIRMATION_HOURS)
    if status["escalable"]:
        explanation += CAN_CLAIM
    return StatusView(
        heading=f"Problema {status['problem_id']}",
        state=label,
        explanation=explanation,
        details=_details(status, operator_name, subcategory_name, handler.calendar.zone),
        tone=tone,
    )


def _details(
    status: Mapping[str, Any], operator_name: str, subcategory_name: str, zone: ZoneInfo
) -> list[tuple[str, str]]:
    """The problem's facts, in the order the subscriber follows them."""

    def when(instant: datetime) -> str:
        return spanish_instant(instant, zone)

    problem = f"{subcategory_name} ({status['subcategory']})" if subcategory_name else ""
    details: list[tuple[str, str]] = [
        ("Código del problema", status["problem_id"]),
        ("Empresa operadora", operator_name),
        ("Línea", mask_number(status["number"])),
        ("Problema", problem or status["subcategory"]),
        ("Registrado", when(status["registered_at"])),
    ]
    if status["answer_deadline"] and status["state"] in (State.IN_TRAY, State.OVERDUE):
        details.append(("Plazo de respuesta", when(status["answer_deadline"])))
    if status["answered_at"]:
        answered = when(status["answered_at"])
        if status["answered_late"]:
            answered += " (fuera del plazo)"
        details.append(("Respondido", answered))
    if status["answer"]:
        details.append(("Respuesta de la empresa", status["answer"]))
    if status["score"]:
        feeling = "satisfecho" if status["satisfied"] else "no satisfecho"
        details.append(("Su calificación", f"{status['score']} de {MAX_SCORE}, {feeling}"))
    if status["claim_code"]:
        details.append(("Código de reclamo", status["claim_code"]))
    if status["claim_deadline"]:
        # The deadline is the midnight that ends its last business day: show that day.
        last_day = (status["claim_deadline"] - timedelta(seconds=1)).astimezone(zone).date()
        details.append(("Plazo para resolver el reclamo", spanish_date(last_day)))
    details.append(("Zona horaria", "hora de Perú"))
    return details


ViewOf = Callable[[Mapping[str, Any]], Awaitable[StatusView]]


def _view_of(handler: SguHandler) -> ViewOf:
    """The subscriber's view of a public status, with the operator's and problem's names."""

    async def view_of(status: Mapping[str, Any]) -> StatusView:
        async with handler.core.db.pool.acquire() as conn:
            operator_name = await name_of(conn, status["operator"])
            subcategory_name = await store.subcategory_name(conn, status["subcategory"])
        return problem_view(
            status, operator_name or status["operator"], subcategory_name or "", handler
        )

    return view_of


def _lookup_page(handler: SguHandler, view_of: ViewOf) -> LookupPage:
    """The status page: the problem's code and the holder's document."""

    async def lookup(values: dict[str, str]) -> StatusView | None:
        status = await handler.public_status(values["codigo"], values["documento"])
        return await view_of(status) if status is not None else None

    return LookupPage(
        path=LOOKUP_PATH,
        title="Consulte el estado de su problema (SGU)",
        nav_label="Estado de mi problema",
        intro=(
            "Ingrese el código del problema que registró en el Sistema de Gestión de Usuarios y "
            "el número de documento del titular para ver si su empresa operadora ya le respondió "
            "y qué puede hacer después."
        ),
        fields=(CODE, DOCUMENT),
        lookup=lookup,
        not_found=NOT_FOUND,
    )


def _confirm_form(
    request: web.Request, token: str, *, message: str | None = None, status: int = 200
) -> web.Response:
    return render(
        request,
        "sgu_confirmar.html",
        status=status,
        headers=NO_STORE,
        title="Confirme su correo electrónico",
        path=CONFIRM_PATH,
        field=TOKEN,
        token=token,
        # A link's token goes in a hidden field; without one (or a wrong one) it is typed.
        hidden=bool(token) and message is None,
        message=message,
    )


async def _show_confirmation(request: web.Request) -> web.Response:
    # Showing the page changes nothing: mail scanners and link previews open links too.
    return _confirm_form(request, TOKEN.normalise(request.query.get("token", "")))


def _confirmation_routes(
    handler: SguHandler, page: LookupPage, view_of: ViewOf
) -> list[web.RouteDef]:
    """The page the confirmation e-mail links to: GET shows the form, POST confirms."""

    async def confirm(request: web.Request) -> web.Response:
        if cross_site(request):
            return render(
                request, "error.html", status=403, title="Solicitud rechazada", message=FOREIGN_FORM
            )
        posted = await request.post()
        token = TOKEN.normalise(str(posted.get("token", "")))
        if TOKEN.check(token) is not None:
            return _confirm_form(request, token, message=BAD_LINK, status=400)
        status = await handler.confirm_email_token(token)
        if status is None:
            return _confirm_form(request, token, message=BAD_LINK)
        view = await view_of(status)
        if status["state"] not in (State.AWAITING_CONFIRMATION, State.EXPIRED):
            view = StatusView(
                heading=view.heading,
                state=view.state,
                explanation=CONFIRMED + view.explanation,
                details=view.details,
                tone=view.tone,
            )
        return render(request, "status.html", headers=NO_STORE, page=page, view=view)

    return [web.get(CONFIRM_PATH, _show_confirmation), web.post(CONFIRM_PATH, confirm)]


class _Statistics:
    """The rows of the four statistics reports, from the handler's report."""

    def __init__(self, handler: SguHandler) -> None:
        self.handler = handler

    async def most_frequent(self, query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await self.handler.report(query.start, query.end, operator=query.operator)
        return [
            {"subcategory": p.subcategory, "problem": p.name, "problems": p.problems}
            for p in report.most_frequent
        ]

    async def resolution_times(self, query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await self.handler.report(query.start, query.end, operator=query.operator)
        subcategories = {
            row["code"]: row["name"] for row in await self.handler.catalogue(include_inactive=True)
        }
        return [
            {
                "subcategory": t.subcategory,
                "problem": subcategories.get(t.subcategory, ""),
                "answered": t.answered,
                "average_hours": round(t.average_hours, 1),
                "max_hours": round(t.max_hours, 1),
            }
            for t in report.resolution_times
        ]

    async def operators(self, query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await self.handler.report(query.start, query.end, operator=query.operator)
        return [
            {
                "operator": o.operator,
                "problems": o.problems,
                "answered_in_time": o.answered_in_time,
                "answered_late": o.answered_late,
                "unanswered_overdue": o.unanswered_overdue,
                "claims": o.claims,
            }
            for o in report.operators
        ]

    async def satisfaction(self, query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await self.handler.report(query.start, query.end, operator=query.operator)
        return [
            {
                "operator": s.operator,
                "rated": s.rated,
                "satisfied": s.satisfied,
                "satisfied_pct": round(100 * s.satisfied / s.rated, 1),
                "average_score": round(s.average_score, 2),
            }
            for s in report.satisfaction
        ]


def _reports(handler: SguHandler) -> list[Report]:
    """The four statistics reports (the regulator's, as over gRPC: operators do not read them)."""
    rows = _Statistics(handler)
    jurisdiction = handler.calendar.country
    return [
        Report(
            slug="sgu-problemas-frecuentes",
            title="SGU: problemas más frecuentes",
            description="Problemas por subcategoría, de la más frecuente a la menos. " + SOURCE,
            columns=FREQUENT_COLUMNS,
            rows=rows.most_frequent,
            jurisdiction=jurisdiction,
        ),
        Report(
            slug="sgu-tiempos-respuesta",
            title="SGU: tiempos de respuesta",
            description=(
                "Horas desde el traslado a la empresa operadora hasta su respuesta, por "
                "subcategoría (problemas ya respondidos). " + SOURCE
            ),
            columns=TIME_COLUMNS,
            rows=rows.resolution_times,
            jurisdiction=jurisdiction,
        ),
        Report(
            slug="sgu-operadores",
            title="SGU: problemas por empresa operadora",
            description=(
                "Empresas con más problemas primero: respondidos a tiempo y tarde, vencidos sin "
                "respuesta y convertidos en reclamo. " + SOURCE
            ),
            columns=OPERATOR_COLUMNS,
            rows=rows.operators,
            jurisdiction=jurisdiction,
        ),
        Report(
            slug="sgu-satisfaccion",
            title="SGU: satisfacción de los usuarios",
            description=(
                "Calificación de los usuarios a las respuestas de cada empresa operadora: "
                "satisfechos y puntaje de 1 a 5. " + SOURCE
            ),
            columns=SATISFACTION_COLUMNS,
            rows=rows.satisfaction,
            jurisdiction=jurisdiction,
        ),
    ]


def sgu_web(handler: SguHandler) -> WebRoutes:
    """The status page at /sgu/consulta, the confirmation page at /sgu/confirmar and the four
    statistics reports."""
    view_of = _view_of(handler)
    page = _lookup_page(handler, view_of)
    return WebRoutes(
        pages=[page],
        reports=_reports(handler),
        routes=_confirmation_routes(handler, page, view_of),
        templates=TEMPLATES,
    )
