"""Regulator reports: one table per report, as HTML, CSV or JSON from the same rows.

Access: the caller's API token, sent either as ``Authorization: Bearer <token>`` (scripts) or as
the password of HTTP Basic authentication with any user name (a browser asks for it by itself).
The regulator's token reads every report and every operator; an operator's token reads only the
reports marked ``operators_see_own``, restricted to its own rows.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from npc.api.identity import TokenAuthenticator
from npc.core.calendar import calendar_for
from npc.core.errors import Unauthenticated
from npc.core.identity import Caller
from npc.core.runtime import Core
from npc.store.operators import operator_list
from npc.web.charts import render_bar_chart
from npc.web.render import render
from npc.web.site import Column, Report, ReportQuery

MAX_PERIOD_DAYS = 366
MAX_PERIOD_MONTHS = 12
HTML_ROW_LIMIT = 2000
REALM = 'Basic realm="npc reportes", charset="UTF-8"'
PRIVATE = {"Cache-Control": "private, no-store"}
SEVERITY_LABELS = {"leve": "leve", "grave": "grave", "muy_grave": "muy grave"}
# Who set a compliance rule (npc.core.compliance.SourceKind), as the page names it.
SOURCE_LABELS = {
    "regulation": "norma del regulador",
    "operator_procedure": "procedimiento del operador",
    "clearinghouse": "elección del administrador",
}


def bearer_token(request: web.Request) -> str | None:
    """The API token of a request: a Bearer token, or the password of Basic authentication."""
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    if scheme.lower() == "basic" and credential.strip():
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


async def identify(request: web.Request, authenticator: TokenAuthenticator) -> Caller | None:
    """The caller presenting a known token, or None."""
    token = bearer_token(request)
    if token is None:
        return None
    try:
        return await authenticator.authenticate((("authorization", f"Bearer {token}"),))
    except Unauthenticated:
        return None


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def months_between(first: date, last: date) -> int:
    """How many calendar months the dates from `first` to `last` touch."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def cell_json(value: Any, column: Column) -> Any:
    """A value as JSON: instants and dates in ISO 8601 (UTC for instants)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def cell_csv(value: Any, column: Column) -> str:
    """A value as a CSV cell. Text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if column.kind == "json":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if column.kind in ("text", "prose") and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def cell_html(
    value: Any,
    column: Column,
    core: Core,
    jurisdiction: str,
    names: Mapping[str, str] | None = None,
    processes: Mapping[str, str] | None = None,
) -> str:
    """A value as the HTML table shows it (escaped by the template): local times, labels,
    operators by the `names` the public pages give them, flows by their `processes` labels."""
    if value is None:
        return "—"
    if column.kind == "operator":
        return (names or {}).get(str(value), str(value))
    if column.kind == "flow":
        return (processes or {}).get(str(value), str(value))
    if column.kind == "instant" and isinstance(value, datetime):
        local = core.calendar(jurisdiction).local(value)
        return f"{local:%d/%m/%Y %H:%M:%S}"
    if column.kind == "date" and isinstance(value, date):
        return f"{value:%d/%m/%Y}"
    if column.kind == "json":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if column.key in ("gravedad", "severity"):
        return SEVERITY_LABELS.get(str(value), str(value))
    if column.key == "source":
        return SOURCE_LABELS.get(str(value), str(value))
    return str(value)


def to_csv(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV with a header of column keys, UTF-8 with a BOM (spreadsheets need it)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in columns])
    for row in rows:
        writer.writerow([cell_csv(row.get(c.key), c) for c in columns])
    return out.getvalue()


def to_json(
    report: Report, query: ReportQuery, rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The rows as a JSON document with the report's identity, filter and columns: English
    keys; the Spanish title and column labels are values, for whoever shows them."""
    return {
        "report": report.slug,
        "title": report.title,
        "operator": query.operator,
        "from": query.first_day.isoformat(),
        "to": query.last_day.isoformat(),
        "columns": [{"key": c.key, "label": c.label, "type": c.kind} for c in report.columns],
        "rows": [{c.key: cell_json(row.get(c.key), c) for c in report.columns} for row in rows],
    }


class ReportSite:
    """Serves /reportes and /reportes/<slug> for the reports it is given."""

    def __init__(
        self,
        core: Core,
        authenticator: TokenAuthenticator,
        reports: Sequence[Report],
        jurisdiction: str,
    ) -> None:
        self.core = core
        self.authenticator = authenticator
        self.jurisdiction = jurisdiction
        self.reports: dict[str, Report] = {}
        for report in reports:
            if report.slug in self.reports:
                raise ValueError(f"report {report.slug!r} registered twice")
            self.reports[report.slug] = report

    def add_routes(self, app: web.Application) -> None:
        """Add the index and one route per report."""
        app.router.add_get("/reportes", self.index)
        app.router.add_get("/reportes/{slug}", self.show)

    def _visible(self, caller: Caller) -> list[Report]:
        # Only the reports of the caller's own country: the SIC reads no Peruvian report.
        return [
            r
            for r in self.reports.values()
            if (r.jurisdiction or self.jurisdiction) == caller.country
            and (caller.is_regulator or r.operators_see_own)
        ]

    async def _caller(self, request: web.Request) -> Caller:
        caller = await identify(request, self.authenticator)
        if caller is None:
            raise web.HTTPUnauthorized(
                text=render(
                    request,
                    "error.html",
                    title="Acceso restringido",
                    message=(
                        "Los reportes son para el regulador y los operadores. Ingrese como "
                        "contraseña su token de acceso (cualquier nombre de usuario)."
                    ),
                ).text,
                content_type="text/html",
                headers={"WWW-Authenticate": REALM, **PRIVATE},
            )
        return caller

    async def index(self, request: web.Request) -> web.Response:
        """The reports the caller may read."""
        caller = await self._caller(request)
        return render(
            request,
            "reports_index.html",
            headers=PRIVATE,
            title="Reportes",
            reports=self._visible(caller),
            caller=caller,
            # The caller's country's header and footer: the SIC's pages are Colombia's.
            jurisdiction=caller.country or self.jurisdiction,
        )

    async def _operators(self, country: str) -> list[tuple[str, str]]:
        async with self.core.db.pool.acquire() as conn:
            return await operator_list(conn, country=country, by="name")

    def _default_period(self, report: Report) -> tuple[date, date]:
        today = calendar_for(report.jurisdiction or self.jurisdiction).local_date(
            self.core.clock.now()
        )
        if report.period == "month":
            return today.replace(day=1), month_end(today)
        return today.replace(day=1), today

    async def show(self, request: web.Request) -> web.StreamResponse:
        """One report, in the format asked for (``formato=html|csv|json``)."""
        report = self.reports.get(request.match_info["slug"])
        caller = await self._caller(request)
        if report is None or report not in self._visible(caller):
            raise web.HTTPNotFound()
        operators = await self._operators(caller.country)
        params = request.query
        errors: dict[str, str] = {}
        fmt = params.get("formato", "html")
        if fmt not in ("html", "csv", "json"):
            errors["formato"] = "Formato desconocido: use html, csv o json."
            fmt = "html"
        operator: str | None = params.get("operador", "") or None
        if not report.by_operator:
            operator = None
        elif caller.is_regulator:
            if operator is not None and operator not in {o for o, _ in operators}:
                errors["operador"] = "Operador desconocido."
        else:
            operator = caller.operator
        first_default, last_default = self._default_period(report)
        monthly = report.period == "month"
        first_day = self._date(params, "desde", first_default, errors, monthly=monthly)
        last_day = self._date(params, "hasta", last_default, errors, monthly=monthly)
        if monthly:
            first_day, last_day = first_day.replace(day=1), month_end(last_day)
        if "desde" not in errors and "hasta" not in errors:
            if first_day > last_day:
                errors["hasta"] = (
                    "El mes final no puede ser anterior al inicial."
                    if monthly
                    else "La fecha final no puede ser anterior a la inicial."
                )
            elif monthly and months_between(first_day, last_day) > MAX_PERIOD_MONTHS:
                errors["hasta"] = f"El periodo puede abarcar como máximo {MAX_PERIOD_MONTHS} meses."
            elif not monthly and (last_day - first_day).days + 1 > MAX_PERIOD_DAYS:
                errors["hasta"] = f"El periodo puede abarcar como máximo {MAX_PERIOD_DAYS} días."
        calendar = calendar_for(report.jurisdiction or self.jurisdiction)
        query = ReportQuery(
            operator=operator,
            first_day=first_day,
            last_day=last_day,
            start=calendar.at(first_day, time(0, 0)),
            end=calendar.at(last_day + timedelta(days=1), time(0, 0)),
        )
        rows = [] if errors else list(await report.rows(query))
        if not errors and fmt != "html":
            name = f"{report.slug}_{operator or 'todos'}_{first_day}_{last_day}.{fmt}"
            disposition = {"Content-Disposition": f'attachment; filename="{name}"', **PRIVATE}
            if fmt == "csv":
                return web.Response(
                    text=to_csv(report.columns, rows),
                    content_type="text/csv",
                    charset="utf-8",
                    headers=disposition,
                )
            return web.json_response(
                to_json(report, query, rows),
                headers=disposition,
                dumps=lambda d: json.dumps(d, ensure_ascii=False),
            )
        jurisdiction = report.jurisdiction or self.jurisdiction
        names = dict(operators)
        processes = {f.name: f.label or f.name for f in self.core.flows.values()}
        table = [
            [
                cell_html(row.get(c.key), c, self.core, jurisdiction, names, processes)
                for c in report.columns
            ]
            for row in rows[:HTML_ROW_LIMIT]
        ]
        chart = (
            render_bar_chart(report.chart(query, rows, names))
            if report.chart is not None and not errors
            else None
        )
        shown_format = "%Y-%m" if monthly else "%Y-%m-%d"
        # The caption says the period as the table says dates; the fields keep ISO (HTML inputs).
        period = (
            f"de {first_day:%m/%Y} a {last_day:%m/%Y}"
            if monthly
            else f"del {first_day:%d/%m/%Y} al {last_day:%d/%m/%Y}"
        )
        base = {
            "desde": first_day.strftime(shown_format),
            "hasta": last_day.strftime(shown_format),
            **({"operador": operator} if operator and caller.is_regulator else {}),
        }
        return render(
            request,
            "report.html",
            status=400 if errors else 200,
            headers=PRIVATE,
            title=report.title,
            report=report,
            jurisdiction=jurisdiction,
            caller=caller,
            operators=operators,
            operator=operator,
            operator_name=names.get(operator or "", operator),
            caller_name=names.get(caller.operator, caller.operator),
            chart=chart,
            period=period,
            first_day=params.get("desde", first_default.strftime(shown_format)),
            last_day=params.get("hasta", last_default.strftime(shown_format)),
            errors=errors,
            table=table,
            total=len(rows),
            shown=len(table),
            csv_query={**base, "formato": "csv"},
            json_query={**base, "formato": "json"},
        )

    @staticmethod
    def _date(
        params: Mapping[str, str],
        name: str,
        default: date,
        errors: dict[str, str],
        *,
        monthly: bool = False,
    ) -> date:
        """A date parameter; for monthly reports a month AAAA-MM (a full date names its month)."""
        raw = params.get(name, "")
        if not raw:
            return default
        try:
            if monthly and len(raw) == 7:
                raw += "-01"
            value = date.fromisoformat(raw)
        except ValueError:
            errors[name] = (
                "Mes no válido: use el formato AAAA-MM."
                if monthly
                else "Fecha no válida: use el formato AAAA-MM-DD."
            )
            return default
        if not 2000 <= value.year <= 2100:
            errors[name] = "Fecha fuera del rango admitido (años 2000 a 2100)."
            return default
        return value
