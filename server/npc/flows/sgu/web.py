"""The user management system (SGU) on the public site: the subscriber's status page, the page
the confirmation e-mail links to, and the regulator's statistics. Plain Spanish for the
subscriber; the rules stay in the handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from npc.flows.sgu.handler import CONFIRM_PATH, SguHandler
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
STATES: dict[str, tuple[str, str, str]] = {
    "awaiting_confirmation": (
        "Pendiente de confirmar su correo",
        "warning",
        "Registramos su problema, pero todavía no se envía a {operator}: confirme su correo "
        "electrónico con el enlace que le enviamos. Si no lo confirma dentro de las 72 horas, el "
        "registro vence.",
    ),
    "in_tray": (
        "En atención por su empresa operadora",
        "info",
        "Su problema fue trasladado a {operator}, que debe responderle a más tardar en el plazo "
        "indicado abajo. Le avisaremos por correo cuando responda.",
    ),
    "overdue": (
        "Sin respuesta en el plazo",
        "warning",
        "{operator} no respondió dentro del plazo. El incumplimiento quedó registrado; la "
        "empresa todavía debe responderle.",
    ),
    "answered": (
        "Respondido",
        "ok",
        "{operator} respondió su problema. Califique la respuesta indicando si quedó satisfecho.",
    ),
    "closed": ("Cerrado", "ok", "El trámite terminó."),
    "escalation_open": (
        "Respondido, sin su conformidad",
        "warning",
        "Usted indicó que la respuesta de {operator} no lo dejó satisfecho.",
    ),
    "claim_requested": (
        "Reclamo en trámite",
        "info",
        "Usted pidió convertir su problema en reclamo. {operator} debe asignarle de inmediato un "
        "código de reclamo, que le enviaremos por correo.",
    ),
    "claimed": (
        "Reclamo registrado",
        "ok",
        "Su reclamo fue registrado ante {operator} con el código indicado abajo; la empresa debe "
        "resolverlo dentro del plazo.",
    ),
    "expired": (
        "Registro vencido",
        "error",
        "El correo no se confirmó dentro de las 72 horas y el registro venció. Puede registrar "
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
    Column("subcategoria", "Subcategoría"),
    Column("problema", "Problema", "prose"),
    Column("problemas", "Problemas", "number"),
)
TIME_COLUMNS = (
    Column("subcategoria", "Subcategoría"),
    Column("problema", "Problema", "prose"),
    Column("respondidos", "Respondidos", "number"),
    Column("horas_promedio", "Horas en responder (promedio)", "number"),
    Column("horas_maximo", "Horas en responder (máximo)", "number"),
)
OPERATOR_COLUMNS = (
    Column("operador", "Operador"),
    Column("problemas", "Problemas", "number"),
    Column("respondidos_a_tiempo", "Respondidos a tiempo", "number"),
    Column("respondidos_tarde", "Respondidos tarde", "number"),
    Column("vencidos_sin_respuesta", "Vencidos sin respuesta", "number"),
    Column("reclamos", "Convertidos en reclamo", "number"),
)
SATISFACTION_COLUMNS = (
    Column("operador", "Operador"),
    Column("calificados", "Respuestas calificadas", "number"),
    Column("satisfechos", "Usuarios satisfechos", "number"),
    Column("porcentaje_satisfechos", "Satisfechos (%)", "number"),
    Column("puntaje_promedio", "Puntaje promedio (1 a 5)", "number"),
)
SOURCE = (
    "Instructivo Técnico del SGU (Res. 00170-2020-CD/OSIPTEL), reportes estadísticos; problemas "
    "registrados en el periodo y trasladados a la empresa operadora."
)


def problem_view(
    status: Mapping[str, Any], operator_name: str, subcategory_name: str, handler: SguHandler
) -> StatusView:
    """The subscriber's view of a problem, in plain Spanish."""
    zone = handler.calendar.zone

    def when(instant: datetime) -> str:
        return spanish_instant(instant, zone)

    label, tone, text = STATES[status["state"]]
    explanation = text.format(operator=operator_name)
    if status["escalable"]:
        explanation += CAN_CLAIM
    problem = f"{subcategory_name} ({status['subcategory']})" if subcategory_name else ""
    details: list[tuple[str, str]] = [
        ("Código del problema", status["problem_id"]),
        ("Empresa operadora", operator_name),
        ("Línea", mask_number(status["number"])),
        ("Problema", problem or status["subcategory"]),
        ("Registrado", when(status["registered_at"])),
    ]
    if status["answer_deadline"] and status["state"] in ("in_tray", "overdue"):
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
        details.append(("Su calificación", f"{status['score']} de 5, {feeling}"))
    if status["claim_code"]:
        details.append(("Código de reclamo", status["claim_code"]))
    if status["claim_deadline"]:
        # The deadline is the midnight that ends its last business day: show that day.
        last_day = (status["claim_deadline"] - timedelta(seconds=1)).astimezone(zone).date()
        details.append(("Plazo para resolver el reclamo", spanish_date(last_day)))
    details.append(("Zona horaria", "hora de Perú"))
    return StatusView(
        heading=f"Problema {status['problem_id']}",
        state=label,
        explanation=explanation,
        details=details,
        tone=tone,
    )


def sgu_web(handler: SguHandler) -> WebRoutes:
    """The status page at /sgu/consulta, the confirmation page at /sgu/confirmar and the four
    statistics reports."""
    db = handler.core.db

    async def names(operator: str, subcategory: str) -> tuple[str, str]:
        async with db.pool.acquire() as conn:
            operator_name = await name_of(conn, operator)
            subcategory_name = await conn.fetchval(
                "SELECT name FROM sgu_subcategories WHERE code = $1", subcategory
            )
        return operator_name or operator, subcategory_name or ""

    async def view_of(status: Mapping[str, Any]) -> StatusView:
        operator_name, subcategory_name = await names(status["operator"], status["subcategory"])
        return problem_view(status, operator_name, subcategory_name, handler)

    async def lookup(values: dict[str, str]) -> StatusView | None:
        status = await handler.public_status(values["codigo"], values["documento"])
        return await view_of(status) if status is not None else None

    page = LookupPage(
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

    def confirm_form(
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

    async def show_confirmation(request: web.Request) -> web.Response:
        # Showing the page changes nothing: mail scanners and link previews open links too.
        return confirm_form(request, TOKEN.normalise(request.query.get("token", "")))

    async def confirm(request: web.Request) -> web.Response:
        if cross_site(request):
            return render(
                request, "error.html", status=403, title="Solicitud rechazada", message=FOREIGN_FORM
            )
        posted = await request.post()
        token = TOKEN.normalise(str(posted.get("token", "")))
        if TOKEN.check(token) is not None:
            return confirm_form(request, token, message=BAD_LINK, status=400)
        status = await handler.confirm_email_token(token)
        if status is None:
            return confirm_form(request, token, message=BAD_LINK)
        view = await view_of(status)
        if status["state"] not in ("awaiting_confirmation", "expired"):
            view = StatusView(
                heading=view.heading,
                state=view.state,
                explanation=CONFIRMED + view.explanation,
                details=view.details,
                tone=view.tone,
            )
        return render(request, "status.html", headers=NO_STORE, page=page, view=view)

    async def most_frequent(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await handler.report(query.start, query.end, operator=query.operator)
        return [
            {"subcategoria": p.subcategory, "problema": p.name, "problemas": p.problems}
            for p in report.most_frequent
        ]

    async def resolution_times(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await handler.report(query.start, query.end, operator=query.operator)
        subcategories = {
            row["code"]: row["name"] for row in await handler.catalogue(include_inactive=True)
        }
        return [
            {
                "subcategoria": t.subcategory,
                "problema": subcategories.get(t.subcategory, ""),
                "respondidos": t.answered,
                "horas_promedio": round(t.average_hours, 1),
                "horas_maximo": round(t.max_hours, 1),
            }
            for t in report.resolution_times
        ]

    async def operators(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await handler.report(query.start, query.end, operator=query.operator)
        return [
            {
                "operador": o.operator,
                "problemas": o.problems,
                "respondidos_a_tiempo": o.answered_in_time,
                "respondidos_tarde": o.answered_late,
                "vencidos_sin_respuesta": o.unanswered_overdue,
                "reclamos": o.claims,
            }
            for o in report.operators
        ]

    async def satisfaction(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        report = await handler.report(query.start, query.end, operator=query.operator)
        return [
            {
                "operador": s.operator,
                "calificados": s.rated,
                "satisfechos": s.satisfied,
                "porcentaje_satisfechos": round(100 * s.satisfied / s.rated, 1),
                "puntaje_promedio": round(s.average_score, 2),
            }
            for s in report.satisfaction
        ]

    jurisdiction = handler.calendar.country
    # Statistics are the regulator's, as over gRPC (GetReport): operators do not read them here.
    reports = [
        Report(
            slug="sgu-problemas-frecuentes",
            title="SGU: problemas más frecuentes",
            description="Problemas por subcategoría, de la más frecuente a la menos. " + SOURCE,
            columns=FREQUENT_COLUMNS,
            rows=most_frequent,
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
            rows=resolution_times,
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
            rows=operators,
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
            rows=satisfaction,
            jurisdiction=jurisdiction,
        ),
    ]
    return WebRoutes(
        pages=[page],
        reports=reports,
        routes=[web.get(CONFIRM_PATH, show_confirmation), web.post(CONFIRM_PATH, confirm)],
        templates=TEMPLATES,
    )
