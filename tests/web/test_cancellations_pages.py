"""The cancellations and plan migrations status page and the daily-report compliance report over
HTTP, with the operators' daily reports sent through the gRPC API."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta

import aiohttp

from npc.flows.cancellations.handler import register_reporting_operator
from tests.flows.cancellations.test_cancellations import (
    FIRST,
    executed,
    migration,
    record,
    reporting,
    submit,
)
from tests.helpers import advance, advance_to
from tests.web.three_formats import three_formats

__all__ = ["reporting"]  # claro and movistar report daily from Sunday 22 November

PAGE = "/bajas-migraciones/consulta"
GENERIC = "No encontramos una solicitud con esos datos. Revise el operador"
REPORT = "bajas-reporte-diario"
CLARO = "América Móvil Perú (Claro)"


def basic(operator: str) -> dict[str, str]:
    token = base64.b64encode(f"{operator}:dev-token-{operator}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def lookup(
    http: aiohttp.ClientSession, operator: str, code: str, document: str
) -> tuple[int, str]:
    async with http.post(
        PAGE, data={"operador": operator, "codigo": code, "documento": document}
    ) as response:
        return response.status, await response.text()


async def test_a_subscriber_follows_a_cancellation_to_its_execution(
    app, operators, clock, reporting, http
):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001"), migration("MG-0001")])
    status, body = await lookup(http, "claro", "BJ-0001", "44556677")
    assert status == 200
    page = text_of(body)
    assert "Solicitud de baja BJ-0001" in page
    assert "Estado: En trámite" in page
    assert (
        f"{CLARO} registró su solicitud y tiene programada la baja de su servicio para el "
        "miércoles 25 de noviembre de 2026." in page
    )
    assert "Servicio Telefonía móvil" in page
    assert "Canal de atención Presencial (centro de atención)" in page
    assert "Presentada domingo 22 de noviembre de 2026, 10:00" in page  # Lima time
    assert "Información del reporte diario del domingo 22 de noviembre de 2026" in page
    assert "Zona horaria hora de Perú" in page
    assert "910000001" not in page  # the line is not shown to whoever holds the code

    executed_at = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    await advance_to(app, clock, executed_at + timedelta(hours=1))
    await submit(claro, date(2026, 11, 24), [executed("BJ-0001", executed_at)])
    _, body = await lookup(http, "claro", "BJ-0001", "44556677")
    page = text_of(body)
    assert "Estado: Ejecutada" in page
    assert (
        "Su servicio fue dado de baja el martes 24 de noviembre de 2026, 11:30. El trámite "
        "terminó." in page
    )
    assert "Estado del servicio Dado de baja" in page

    _, body = await lookup(http, "claro", "MG-0001", "44556677")
    page = text_of(body)
    assert "Solicitud de migración de plan MG-0001" in page
    assert "Nuevo plan Plan Hogar 100 Mbps" in page
    assert "el cambio a su nuevo plan para el martes 1 de diciembre de 2026" in page


async def test_a_missed_scheduled_date_is_told_to_the_subscriber(
    app, operators, clock, reporting, http
):
    await submit(operators["claro"], FIRST, [record("BJ-0002")])
    # The end of Wednesday 25 November in Lima: Thursday 26, 05:00 UTC.
    await advance_to(app, clock, datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
    _, body = await lookup(http, "claro", "BJ-0002", "44556677")
    page = text_of(body)
    assert "Estado: En trámite" in page
    assert (
        f"{CLARO} debía ejecutar su solicitud a más tardar el miércoles 25 de noviembre de 2026 "
        "y no lo hizo a tiempo" in page
    )
    assert 'class="status warning"' in body


def without_echo(body: str) -> str:
    """A form page without what it echoes back (typed values and the chosen option)."""
    return re.sub(r' value="[^"]*"| selected', "", body)


async def test_every_miss_gets_the_same_generic_page(app, operators, clock, reporting, http):
    await submit(operators["claro"], FIRST, [record("BJ-0001")])
    misses = [
        ("claro", "BJ-0001", "11112222"),  # another person's document
        ("movistar", "BJ-0001", "44556677"),  # the right code at another operator
        ("claro", "BJ-9999", "44556677"),  # a code never reported
        ("claro", "bj-0001", "44556677"),  # codes are the operator's, letter case included
    ]
    pages = []
    for operator, code, document in misses:
        status, body = await lookup(http, operator, code, document)
        assert status == 200
        assert GENERIC in body
        assert "Estado:" not in body and "25 de noviembre" not in body
        pages.append(without_echo(body))
    assert all(page == pages[0] for page in pages)


async def test_the_operator_list_is_the_reporting_operators(app, operators, clock, http):
    async with http.get(PAGE) as response:
        before = await response.text()
    # No operator reports yet: every operator is offered, so the form is never empty.
    assert re.findall(r'<option value="([a-z-]+)"', before) == [
        "claro",
        "entel",
        "movistar",
        "bitel",
    ]
    await register_reporting_operator(
        app.core.db,
        app.settings.cancellations,
        operator="movistar",
        since=FIRST,
        subscribers=9_000_000,
        now=clock.now(),
    )
    async with http.get(PAGE) as response:
        after = await response.text()
    assert re.findall(r'<option value="([a-z-]+)"', after) == ["movistar"]
    # A value outside the list (a hand-made form) is refused as a form error.
    status, body = await lookup(http, "entel", "BJ-0001", "44556677")
    assert status == 400
    assert "Elija de la lista el operador" in body
    status, body = await lookup(http, "movistar", "BJ 0001;", "44556677")
    assert status == 400
    assert "Escriba el código de la solicitud" in body


async def _a_week_of_reports(app, operators, clock) -> None:
    """claro reports Sunday 22 on time and Monday 23 late; movistar reports neither."""
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001")])
    # Monday 23's report was due Tuesday 24 at 23:59 Lima (Wednesday 25, 04:59 UTC).
    await advance_to(app, clock, datetime(2026, 11, 25, 4, 59, tzinfo=UTC))
    await submit(claro, date(2026, 11, 23), [record("BJ-0003")])
    await advance(app, clock, timedelta(hours=1))


async def test_the_regulator_reads_daily_report_compliance_in_three_formats(
    app, operators, clock, reporting, http
):
    await _a_week_of_reports(app, operators, clock)
    params = {"desde": "2026-11-22", "hasta": "2026-11-30"}
    rows = await three_formats(http, REPORT, params, basic("osiptel"))
    assert rows == [
        {
            "operator": "claro",
            "days_due": 2,
            "received": 2,
            "on_time": 1,
            "late": 1,
            "missing": 0,
            "late_dates": "2026-11-23",
            "missing_dates": "",
        },
        {
            "operator": "movistar",
            "days_due": 2,
            "received": 0,
            "on_time": 0,
            "late": 0,
            "missing": 2,
            "late_dates": "",
            "missing_dates": "2026-11-22, 2026-11-23",
        },
    ]
    # The same figures as the flow's own query.
    handler = app.core.flows["cancellations"].handler
    [claro] = await handler.daily_report_compliance(date(2026, 11, 22), date(2026, 11, 30), "claro")
    assert (claro["on_time"], claro["late"], claro["missing"]) == (1, 1, 0)
    only_movistar = await three_formats(
        http, REPORT, {**params, "operador": "movistar"}, basic("osiptel")
    )
    assert [r["operator"] for r in only_movistar] == ["movistar"]


async def test_an_operator_reads_only_its_own_compliance(app, operators, clock, reporting, http):
    await _a_week_of_reports(app, operators, clock)
    params = {"desde": "2026-11-22", "hasta": "2026-11-30", "operador": "movistar"}
    rows = await three_formats(http, REPORT, params, basic("claro"))
    assert [(r["operator"], r["missing"]) for r in rows] == [("claro", 0)]
    rows = await three_formats(http, REPORT, params, basic("movistar"))
    assert [(r["operator"], r["missing"]) for r in rows] == [("movistar", 2)]
    async with http.get(f"/reportes/{REPORT}") as response:
        assert response.status == 401
