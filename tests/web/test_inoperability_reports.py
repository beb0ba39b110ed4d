"""The inoperability registry in the regulator's reports: events per operator and period without
error/test records, events over one hour flagged, totals per operator, the same rows as HTML, CSV
and JSON, and an operator reading only its own."""

from __future__ import annotations

import base64
from datetime import timedelta

from npc.v1 import inoperability_pb2 as pb
from tests.helpers import rid, ts
from tests.web.reporting import html_rows, report_in_three_formats

REGULATOR = {"Authorization": "Basic " + base64.b64encode(b"osiptel:dev-token-osiptel").decode()}
EVENTS = "inoperatividad-eventos"
SUMMARY = "inoperatividad-resumen"
PERIOD = {"desde": "2026-11-23", "hasta": "2026-11-23"}


async def call(client, method, request):
    return await getattr(client.inoperability, method)(request, metadata=client.metadata)


async def point(client, code: str, kind=pb.ATTENTION_POINT_TYPE_STORE) -> None:
    await call(
        client,
        "RegisterAttentionPoint",
        pb.RegisterAttentionPointRequest(
            request_id=rid(),
            code=code,
            name=f"Punto {code}",
            type=kind,
            address="Av. Javier Prado Este 123",
            location="San Isidro, Lima, Lima",
        ),
    )


async def event(client, clock, code, request_type, scenario, started_ago, lasted=None, reason=0):
    """An event at `code` that started `started_ago` before now and, with `lasted`, is closed."""
    started = clock.now() - started_ago
    opened = await call(
        client,
        "RegisterInoperability",
        pb.RegisterInoperabilityRequest(
            request_id=rid(),
            attention_point_code=code,
            request_type=request_type,
            scenario=scenario,
            started_at=ts(started),
            detail="SIAC ÚNICO sin respuesta",
        ),
    )
    if lasted is not None:
        await call(
            client,
            "CloseInoperability",
            pb.CloseInoperabilityRequest(
                request_id=rid(),
                number=opened.number,
                ended_at=ts(started + lasted),
                closing_reason=reason,
                closing_note="Registrado por prueba del sistema",
            ),
        )
    return opened


async def registry(operators, clock) -> None:
    """Claro: 90 minutes of mass failure, 30 minutes without power, one still open, one test and
    one closed as a user error. Movistar: 61 minutes of connectivity failure. All on 23 November
    (Lima), from 07:00."""
    claro, movistar = operators["claro"], operators["movistar"]
    await point(claro, "CAC-LIMA-01")
    await point(claro, "CC-123", pb.ATTENTION_POINT_TYPE_CALL_CENTRE)
    await point(movistar, "CAC-SURCO")
    hours = timedelta(hours=3)  # now is 10:00 in Lima
    await event(
        claro,
        clock,
        "CAC-LIMA-01",
        pb.REQUEST_TYPE_CLAIMS,
        pb.SCENARIO_MASS_FAILURE,
        hours,
        timedelta(minutes=90),
        pb.CLOSING_REASON_MASS_APPLICATION_FAILURE,
    )
    await event(
        claro,
        clock,
        "CAC-LIMA-01",
        pb.REQUEST_TYPE_ACTIVATIONS,
        pb.SCENARIO_UNFORESEEN_EVENT,
        hours,
        timedelta(minutes=30),
        pb.CLOSING_REASON_NO_POWER,
    )
    await event(claro, clock, "CC-123", pb.REQUEST_TYPE_INQUIRIES, pb.SCENARIO_MASS_FAILURE, hours)
    await event(
        claro,
        clock,
        "CC-123",
        pb.REQUEST_TYPE_CLAIMS,
        pb.SCENARIO_ERROR_OR_TEST,
        hours,
        timedelta(minutes=120),
        pb.CLOSING_REASON_USER_ERROR,
    )
    await event(
        claro,
        clock,
        "CC-123",
        pb.REQUEST_TYPE_CANCELLATIONS,
        pb.SCENARIO_MASS_FAILURE,
        hours,
        timedelta(minutes=150),
        pb.CLOSING_REASON_USER_ERROR,
    )
    await event(
        movistar,
        clock,
        "CAC-SURCO",
        pb.REQUEST_TYPE_CLAIMS,
        pb.SCENARIO_MASS_FAILURE,
        hours,
        timedelta(minutes=61),
        pb.CLOSING_REASON_CONNECTIVITY,
    )


async def test_events_report_leaves_out_tests_and_flags_events_over_one_hour(
    app, operators, clock, http
):
    await registry(operators, clock)
    keys, rows = await report_in_three_formats(http, EVENTS, PERIOD, REGULATOR)
    assert "over_one_hour" in keys
    assert [
        (
            r["operator"],
            r["number"],
            r["request_type"],
            r["scenario"],
            r["duration_minutes"],
            r["over_one_hour"],
            r["closing_reason"],
        )
        for r in rows
    ] == [
        ("claro", 1, "Reclamos", "Falla masiva", 90, "Sí", "Falla masiva de aplicativo"),
        (
            "claro",
            2,
            "Altas",
            "Evento no previsto",
            30,
            "No",
            "Sin fluido eléctrico en el punto de atención",
        ),
        ("claro", 3, "Consultas", "Falla masiva", None, "No", None),
        ("movistar", 1, "Reclamos", "Falla masiva", 61, "Sí", "Inconveniente de conectividad"),
    ]
    first = rows[0]
    assert first["attention_point_type"] == "Centro de atención (CAC)"
    assert first["started_at"] == "2026-11-23T12:00:00+00:00"
    assert first["ended_at"] == "2026-11-23T13:30:00+00:00"
    # Reported at most 3 business days after it ended: Thursday 26 November ends at midnight.
    assert first["report_due_at"] == "2026-11-27T05:00:00+00:00"
    assert rows[2]["attention_point_type"] == "Atención telefónica (123/135)"

    async with http.get(f"/reportes/{EVENTS}", params=PERIOD, headers=REGULATOR) as response:
        table = html_rows(await response.text())
    assert table[0][8:12] == ["23/11/2026 07:00:00", "23/11/2026 08:30:00", "90", "Sí"]

    # Only movistar, by the regulator's filter; the day before holds nothing.
    _, rows = await report_in_three_formats(
        http, EVENTS, {**PERIOD, "operador": "movistar"}, REGULATOR
    )
    assert [(r["operator"], r["number"]) for r in rows] == [("movistar", 1)]
    _, rows = await report_in_three_formats(
        http, EVENTS, {"desde": "2026-11-22", "hasta": "2026-11-22"}, REGULATOR
    )
    assert rows == []


async def test_summary_totals_per_operator(app, operators, clock, http):
    await registry(operators, clock)
    _, rows = await report_in_three_formats(http, SUMMARY, PERIOD, REGULATOR)
    by_operator = {r["operator"]: r for r in rows}
    assert set(by_operator) == {"bitel", "claro", "entel", "movistar"}
    assert by_operator["claro"] == {
        "operator": "claro",
        "events": 3,
        "closed": 2,
        "open": 1,
        "total_minutes": 120,
        "over_one_hour": 1,
        "scenario_mass_failure": 2,
        "scenario_unforeseen_event": 1,
        "request_type_claims": 1,
        "request_type_activations": 1,
        "request_type_cancellations": 0,
        "request_type_inquiries": 1,
        "closing_reasons": (
            "Falla masiva de aplicativo: 1; Sin fluido eléctrico en el punto de atención: 1"
        ),
    }
    assert (by_operator["movistar"]["events"], by_operator["movistar"]["over_one_hour"]) == (
        1,
        1,
    )
    assert by_operator["entel"]["events"] == 0 and by_operator["entel"]["closing_reasons"] is None


async def test_an_operator_reads_only_its_own_events(app, operators, clock, http):
    await registry(operators, clock)
    movistar = {"Authorization": "Bearer dev-token-movistar"}
    for slug in (EVENTS, SUMMARY):
        # Asking for claro's rows gives movistar's own.
        _, rows = await report_in_three_formats(
            http, slug, {**PERIOD, "operador": "claro"}, movistar
        )
        assert rows and {r["operator"] for r in rows} == {"movistar"}
    async with http.get("/reportes", headers=movistar) as response:
        listing = await response.text()
    assert f"/reportes/{EVENTS}" in listing and f"/reportes/{SUMMARY}" in listing
    async with http.get(f"/reportes/{EVENTS}", params=PERIOD) as response:
        assert response.status == 401
