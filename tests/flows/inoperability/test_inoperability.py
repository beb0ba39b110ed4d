"""Inoperability registry (seed 002, Peru): attention points, one open event per request type,
correlative numbering without gaps under concurrency, closing reasons per scenario, the report
deadline at its boundary across Peruvian holidays, and the regulator's report rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from npc.v1 import inoperability_pb2 as pb
from tests.helpers import advance, advance_to, field_violations, live_case, rid, settle, ts

# Friday 4 December 2026, 10:00 Lima. The three business days after it skip the weekend and the
# holidays of 8 (Immaculate Conception) and 9 December (Battle of Ayacucho): 7, 10 and 11
# December, so the report is due at Saturday 12 December, 00:00 Lima (05:00 UTC).
DEC_4 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
DUE_AFTER_DEC_4 = datetime(2026, 12, 12, 5, 0, tzinfo=UTC)
# Wednesday 23 December 2026, 10:00 Lima: 24, (25 is Christmas, weekend) 28 and 29 December, so
# the report is due at Wednesday 30 December, 00:00 Lima.
DEC_23 = datetime(2026, 12, 23, 15, 0, tzinfo=UTC)
DUE_AFTER_DEC_23 = datetime(2026, 12, 30, 5, 0, tzinfo=UTC)

POINTS = ("CAC-LIMA-01", "CAC-AQP-02", "CC-123", "CC-135")


async def _call(client, method, request):
    return await getattr(client.inoperability, method)(request, metadata=client.metadata)


async def _point(client, code="CAC-LIMA-01", **overrides):
    fields = {
        "request_id": rid(),
        "code": code,
        "name": f"Punto {code}",
        "type": pb.ATTENTION_POINT_TYPE_CALL_CENTRE
        if code.startswith("CC")
        else pb.ATTENTION_POINT_TYPE_STORE,
        "address": "Av. Javier Prado Este 123",
        "location": "San Isidro, Lima, Lima",
    }
    fields.update(overrides)
    return await _call(client, "RegisterAttentionPoint", pb.RegisterAttentionPointRequest(**fields))


def _open(clock, point="CAC-LIMA-01", request_type=pb.REQUEST_TYPE_CLAIMS, **overrides):
    fields = {
        "request_id": rid(),
        "attention_point_code": point,
        "request_type": request_type,
        "scenario": pb.SCENARIO_MASS_FAILURE,
        "started_at": ts(clock.now()),
        "detail": "SIAC ÚNICO sin respuesta",
    }
    fields.update(overrides)
    return pb.RegisterInoperabilityRequest(**fields)


def _close(number, ended, reason=pb.CLOSING_REASON_MASS_APPLICATION_FAILURE, **overrides):
    fields = {
        "request_id": rid(),
        "number": number,
        "ended_at": ts(ended),
        "closing_reason": reason,
    }
    fields.update(overrides)
    return pb.CloseInoperabilityRequest(**fields)


def _report(*numbers):
    return pb.SubmitInoperabilityReportRequest(request_id=rid(), numbers=list(numbers))


async def _records(app, operator="claro"):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT case_id, rule, due_at FROM compliance_records"
            " WHERE flow = 'inoperability' AND operator_id = $1 ORDER BY id",
            operator,
        )
    return [(r["case_id"], r["rule"], r["due_at"]) for r in rows]


async def _stored(app, operator="claro"):
    async with app.core.db.pool.acquire() as conn:
        numbers = await conn.fetch(
            "SELECT number FROM inoperability_events WHERE operator_id = $1 ORDER BY number",
            operator,
        )
        counter = await conn.fetchval(
            "SELECT last_number FROM inoperability_counters WHERE operator_id = $1", operator
        )
    return [r["number"] for r in numbers], counter


def _handler(app):
    return app.core.flows["inoperability"].handler


@pytest.fixture
async def claro(operators):
    """Claro with its four attention points registered."""
    client = operators["claro"]
    for code in POINTS:
        await _point(client, code)
    return client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_claro(module_operators):
    """`claro` on the module's shared clearinghouse (`module_app`), for cases that store
    nothing."""
    client = module_operators["claro"]
    for code in POINTS:
        await _point(client, code)
    return client


# -- Attention points ---------------------------------------------------------------------------


async def test_operator_registers_and_updates_its_attention_points(app, operators):
    claro = operators["claro"]
    point = await _point(claro, "CC-123")
    assert (point.operator, point.code, point.type) == (
        "claro",
        "CC-123",
        pb.ATTENTION_POINT_TYPE_CALL_CENTRE,
    )
    moved = await _point(claro, "CC-123", address="Jr. Cusco 456", location="Cercado, Lima, Lima")
    assert moved.address == "Jr. Cusco 456"
    await _point(operators["movistar"], "CC-123")
    assert await _handler(app).attention_points("claro") == [
        {
            "code": "CC-123",
            "name": "Punto CC-123",
            "kind": "call_centre",
            "address": "Jr. Cusco 456",
            "location": "Cercado, Lima, Lima",
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": ""}, "code"),
        ({"code": "CAC LIMA"}, "code"),
        ({"name": "  "}, "name"),
        ({"type": pb.ATTENTION_POINT_TYPE_UNSPECIFIED}, "type"),
        ({"address": ""}, "address"),
        ({"location": "Lima\n"}, "location"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_attention_point_needs_code_name_type_address_location(
    module_app, module_operators, overrides, field
):
    app, operators = module_app, module_operators
    # The shared clearinghouse may hold claro's points already (`module_claro`): none is added.
    before = await _handler(app).attention_points("claro")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _point(operators["claro"], **overrides)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    assert await _handler(app).attention_points("claro") == before


async def test_the_regulator_keeps_no_registry(app, operators, clock, claro):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _point(operators["osiptel"])
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["osiptel"], "RegisterInoperability", _open(clock))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- Registration: one open event per request type, numbering without gaps -----------------------


async def test_events_are_numbered_per_operator(app, operators, clock, claro):
    first = await _call(claro, "RegisterInoperability", _open(clock))
    second = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_ACTIVATIONS)
    )
    await _point(operators["movistar"], "CAC-LIMA-01")
    other = await _call(operators["movistar"], "RegisterInoperability", _open(clock))
    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert (first.id, other.id) == ("claro-000001", "movistar-000001")
    assert first.reportable and not first.HasField("ended_at")


async def test_unknown_attention_point_is_not_found(app, operators, clock, claro):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "RegisterInoperability", _open(clock, point="CAC-NOWHERE"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    # Another operator's point is not the caller's.
    await _point(operators["movistar"], "CAC-MOV-9")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "RegisterInoperability", _open(clock, point="CAC-MOV-9"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert await _stored(app) == ([], None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"attention_point_code": ""}, "attention_point_code"),
        ({"request_type": pb.REQUEST_TYPE_UNSPECIFIED}, "request_type"),
        ({"scenario": pb.SCENARIO_UNSPECIFIED}, "scenario"),
        ({"started_at": None}, "started_at"),
        ({"detail": "x" * 501}, "detail"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_registration_input_is_checked(
    module_app, module_clock, module_claro, overrides, field
):
    app, clock, claro = module_app, module_clock, module_claro
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "RegisterInoperability", _open(clock, **overrides))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    assert await _stored(app) == ([], None)


async def test_an_unreadable_instant_is_refused_with_the_other_violations_in_order(
    app, clock, claro
):
    # Nanos beyond a second, a year past 9999: no datetime holds them.
    opening = _open(
        clock,
        scenario=pb.SCENARIO_UNSPECIFIED,
        started_at=Timestamp(seconds=1, nanos=10**9),
        detail="x" * 501,
    )
    closing = _close(
        0, clock.now(), pb.CLOSING_REASON_UNSPECIFIED, ended_at=Timestamp(seconds=253402300800)
    )
    refusals = []
    for method, request in (("RegisterInoperability", opening), ("CloseInoperability", closing)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(claro, method, request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        refusals.append(list(field_violations(refused.value).items()))
    assert refusals == [
        [
            ("scenario", "required: MASS_FAILURE, UNFORESEEN_EVENT or ERROR_OR_TEST"),
            ("started_at", "not a valid instant"),
            ("detail", "up to 500 printable characters"),
        ],
        [
            ("number", "required: the event's correlative number (1, 2, ...)"),
            ("ended_at", "not a valid instant"),
            ("closing_reason", "required: one of the closing reasons"),
        ],
    ]
    assert await _stored(app) == ([], None)


async def test_start_may_be_regularised_up_to_30_days_late_but_not_in_the_future(app, clock, claro):
    for started in (clock.now() - timedelta(days=30, seconds=1), clock.now() + timedelta(hours=1)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(claro, "RegisterInoperability", _open(clock, started_at=ts(started)))
        assert "started_at" in field_violations(refused.value)
    late = await _call(
        claro,
        "RegisterInoperability",
        _open(clock, started_at=ts(clock.now() - timedelta(days=30))),
    )
    assert late.number == 1


async def test_second_open_event_of_the_same_type_is_refused_until_closed(app, clock, claro):
    first = await _call(claro, "RegisterInoperability", _open(clock))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "RegisterInoperability", _open(clock))
    assert live_case(refused.value) == ("claro-000001", "CAC-LIMA-01/claims")
    # Up to four open events at one point, one per request type.
    for request_type in (
        pb.REQUEST_TYPE_ACTIVATIONS,
        pb.REQUEST_TYPE_CANCELLATIONS,
        pb.REQUEST_TYPE_INQUIRIES,
    ):
        await _call(claro, "RegisterInoperability", _open(clock, request_type=request_type))
    # The same type elsewhere is another record.
    await _call(claro, "RegisterInoperability", _open(clock, point="CC-123"))
    await advance(app, clock, timedelta(minutes=30))
    await _call(claro, "CloseInoperability", _close(first.number, clock.now()))
    again = await _call(claro, "RegisterInoperability", _open(clock))
    # The refused registration did not consume a number.
    assert again.number == 6
    assert await _stored(app) == ([1, 2, 3, 4, 5, 6], 6)


async def test_concurrent_registrations_of_one_type_store_exactly_one(app, clock, claro):
    requests = [_open(clock) for _ in range(12)]
    results = await asyncio.gather(
        *(_call(claro, "RegisterInoperability", r) for r in requests), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, pb.InoperabilityEvent)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 11
    assert {e.code() for e in lost} <= {
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
    assert won[0].number == 1
    assert await _stored(app) == ([1], 1)
    async with app.core.db.pool.acquire() as conn:
        answered = await conn.fetchval(
            "SELECT count(*) FROM command_results"
            " WHERE method = 'RegisterInoperability' AND status_code = 0"
        )
        logged = await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'inoperability.registered'"
        )
    assert (answered, logged) == (1, 1)
    following = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_INQUIRIES)
    )
    assert following.number == 2


async def test_concurrent_writers_with_conflicts_leave_no_gaps(app, clock, claro):
    # 16 distinct (point, type) pairs, each sent three times at once: 16 succeed, 32 are refused.
    requests = [
        _open(clock, point=point, request_type=request_type)
        for point in POINTS
        for request_type in (
            pb.REQUEST_TYPE_CLAIMS,
            pb.REQUEST_TYPE_ACTIVATIONS,
            pb.REQUEST_TYPE_CANCELLATIONS,
            pb.REQUEST_TYPE_INQUIRIES,
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(
        *(_call(claro, "RegisterInoperability", r) for r in requests), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, pb.InoperabilityEvent)]
    assert len(won) == 16
    assert sorted(e.number for e in won) == list(range(1, 17))
    assert len({(e.attention_point_code, e.request_type) for e in won}) == 16
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.ALREADY_EXISTS
        for r in results
        if not isinstance(r, pb.InoperabilityEvent)
    )
    assert await _stored(app) == (list(range(1, 17)), 16)


async def test_a_retried_registration_answers_the_same_event(app, clock, claro):
    request = _open(clock)
    first = await _call(claro, "RegisterInoperability", request)
    retried = await _call(claro, "RegisterInoperability", request)
    assert retried == first
    assert await _stored(app) == ([1], 1)


# -- Closing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "reason", "allowed"),
    [
        (pb.SCENARIO_MASS_FAILURE, pb.CLOSING_REASON_CONNECTIVITY, True),
        (pb.SCENARIO_MASS_FAILURE, pb.CLOSING_REASON_INTERMITTENCY, True),
        (pb.SCENARIO_MASS_FAILURE, pb.CLOSING_REASON_MAINTENANCE, True),
        (pb.SCENARIO_MASS_FAILURE, pb.CLOSING_REASON_NO_POWER, False),
        (pb.SCENARIO_UNFORESEEN_EVENT, pb.CLOSING_REASON_NO_POWER, True),
        (pb.SCENARIO_UNFORESEEN_EVENT, pb.CLOSING_REASON_POINT_INFRASTRUCTURE, True),
        (pb.SCENARIO_UNFORESEEN_EVENT, pb.CLOSING_REASON_MAINTENANCE, False),
        (pb.SCENARIO_ERROR_OR_TEST, pb.CLOSING_REASON_CONNECTIVITY, False),
    ],
)
async def test_closing_reason_must_fit_the_scenario(app, clock, claro, scenario, reason, allowed):
    opened = await _call(claro, "RegisterInoperability", _open(clock, scenario=scenario))
    await advance(app, clock, timedelta(minutes=20))
    close = _close(opened.number, clock.now(), reason)
    if allowed:
        closed = await _call(claro, "CloseInoperability", close)
        assert closed.closing_reason == reason and closed.duration_seconds == 20 * 60
        return
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "CloseInoperability", close)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "closing_reason" in field_violations(refused.value)
    still = await _call(claro, "GetInoperability", pb.GetInoperabilityRequest(number=1))
    assert not still.HasField("ended_at")


async def test_closing_checks_end_note_and_state(app, operators, clock, claro):
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    await advance(app, clock, timedelta(minutes=10))
    for request, field in [
        (_close(opened.number, clock.now() - timedelta(minutes=10)), "ended_at"),
        (_close(opened.number, clock.now() + timedelta(hours=1)), "ended_at"),
        (_close(0, clock.now()), "number"),
        (_close(opened.number, clock.now(), pb.CLOSING_REASON_UNSPECIFIED), "closing_reason"),
        (_close(opened.number, clock.now(), pb.CLOSING_REASON_USER_ERROR), "closing_note"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(claro, "CloseInoperability", request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(refused.value)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["movistar"], "CloseInoperability", _close(1, clock.now()))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    await _call(claro, "CloseInoperability", _close(1, clock.now()))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "CloseInoperability", _close(1, clock.now()))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_over_one_hour_is_highlighted_strictly_after_sixty_minutes(app, clock, claro):
    start = clock.now()
    exactly = await _call(claro, "RegisterInoperability", _open(clock))
    longer = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_INQUIRIES)
    )
    await advance(app, clock, timedelta(hours=2))
    one_hour = await _call(
        claro, "CloseInoperability", _close(exactly.number, start + timedelta(hours=1))
    )
    past_hour = await _call(
        claro,
        "CloseInoperability",
        _close(longer.number, start + timedelta(hours=1, seconds=1)),
    )
    assert (one_hour.over_one_hour, past_hour.over_one_hour) == (False, True)
    report = await _call(claro, "SubmitInoperabilityReport", _report(1, 2))
    assert report.over_one_hour_count == 1
    assert [e.over_one_hour for e in report.events] == [False, True]


# -- Critical transactions --------------------------------------------------------------------------


async def test_critical_transactions_are_recorded_during_the_event(app, clock, claro):
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    for kind, reference in [
        (pb.CRITICAL_TRANSACTION_BLOCK_STOLEN_OR_LOST, "BLQ-1"),
        (pb.CRITICAL_TRANSACTION_BLOCK_STOLEN_OR_LOST, "BLQ-2"),
        (pb.CRITICAL_TRANSACTION_CLAIM_FILING, "REC-2026-0001"),
    ]:
        served = await _call(
            claro,
            "RecordCriticalTransaction",
            pb.RecordCriticalTransactionRequest(
                request_id=rid(), number=opened.number, kind=kind, reference=reference
            ),
        )
    assert (served.critical_block_stolen_or_lost, served.critical_claim_filing) == (2, 1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            claro,
            "RecordCriticalTransaction",
            pb.RecordCriticalTransactionRequest(
                request_id=rid(), number=opened.number, kind=pb.CRITICAL_TRANSACTION_UNSPECIFIED
            ),
        )
    assert set(field_violations(refused.value)) == {"kind", "reference"}
    await advance(app, clock, timedelta(minutes=5))
    await _call(claro, "CloseInoperability", _close(opened.number, clock.now()))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            claro,
            "RecordCriticalTransaction",
            pb.RecordCriticalTransactionRequest(
                request_id=rid(),
                number=opened.number,
                kind=pb.CRITICAL_TRANSACTION_CLAIM_FILING,
                reference="REC-2026-0002",
            ),
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    rows = await _handler(app).report("claro", date(2026, 11, 23), date(2026, 11, 23))
    assert (rows[0].critical_block_stolen_or_lost, rows[0].critical_claim_filing) == (2, 1)


# -- The report deadline ---------------------------------------------------------------------------


async def test_missed_report_is_recorded_at_the_boundary_across_december_holidays(
    app, clock, claro
):
    await advance_to(app, clock, DEC_4 - timedelta(hours=3))
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    await advance_to(app, clock, DEC_4)
    closed = await _call(claro, "CloseInoperability", _close(opened.number, clock.now()))
    assert closed.report_due_at.ToDatetime(tzinfo=UTC) == DUE_AFTER_DEC_4
    await advance_to(app, clock, DUE_AFTER_DEC_4 - timedelta(seconds=1))
    assert await _records(app) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app) == [(opened.id, "report_inoperability", DUE_AFTER_DEC_4)]
    # The term is the operator's own procedure (seed 002: the report goes to its regulatory
    # department), never an infraction of the regulator's table.
    async with app.core.db.pool.acquire() as conn:
        source = await conn.fetchrow(
            "SELECT infraction, severity, source_kind FROM compliance_records WHERE case_id = $1",
            opened.id,
        )
    assert tuple(source) == (None, None, "operator_procedure")
    # Reporting late is still accepted; the breach is recorded once.
    report = await _call(claro, "SubmitInoperabilityReport", _report(opened.number))
    assert report.events[0].report_id == report.id
    await settle(app)
    assert len(await _records(app)) == 1


async def test_report_on_the_last_second_before_christmas_deadline_is_in_time(app, clock, claro):
    await advance_to(app, clock, DEC_23 - timedelta(hours=1))
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    await advance_to(app, clock, DEC_23)
    closed = await _call(claro, "CloseInoperability", _close(opened.number, clock.now()))
    assert closed.report_due_at.ToDatetime(tzinfo=UTC) == DUE_AFTER_DEC_23
    await advance_to(app, clock, DUE_AFTER_DEC_23 - timedelta(seconds=1))
    report = await _call(claro, "SubmitInoperabilityReport", _report(opened.number))
    assert report.events[0].reported_at.ToDatetime(tzinfo=UTC) == clock.now()
    await advance(app, clock, timedelta(days=3))
    assert await _records(app) == []


async def test_report_submitted_at_the_deadline_is_late(app, clock, claro):
    await advance_to(app, clock, DEC_23 - timedelta(hours=1))
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    await advance_to(app, clock, DEC_23)
    await _call(claro, "CloseInoperability", _close(opened.number, DEC_23 - timedelta(minutes=1)))
    # Submitted at the due instant, before the core fired the deadline: the late report records it.
    clock.set(DUE_AFTER_DEC_23)
    await _call(claro, "SubmitInoperabilityReport", _report(opened.number))
    assert await _records(app) == [(opened.id, "report_inoperability", DUE_AFTER_DEC_23)]


async def test_report_needs_closed_reportable_unreported_own_events(app, operators, clock, claro):
    open_one = await _call(claro, "RegisterInoperability", _open(clock))
    test_one = await _call(
        claro,
        "RegisterInoperability",
        _open(clock, request_type=pb.REQUEST_TYPE_INQUIRIES, scenario=pb.SCENARIO_ERROR_OR_TEST),
    )
    mistaken = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_ACTIVATIONS)
    )
    real = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_CANCELLATIONS)
    )
    await advance(app, clock, timedelta(minutes=15))
    note = {"closing_note": "registro de prueba del supervisor"}
    for event in (test_one, mistaken):
        closed = await _call(
            claro,
            "CloseInoperability",
            _close(event.number, clock.now(), pb.CLOSING_REASON_USER_ERROR, **note),
        )
        assert not closed.reportable and not closed.HasField("report_due_at")
    await _call(claro, "CloseInoperability", _close(real.number, clock.now()))
    for numbers in ([open_one.number], [test_one.number], [mistaken.number]):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(claro, "SubmitInoperabilityReport", _report(*numbers))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for numbers, field in [
        ([], "numbers"),
        ([real.number, real.number], "numbers"),
        ([0], "numbers[0]"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(claro, "SubmitInoperabilityReport", _report(*numbers))
        assert field in field_violations(refused.value)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["movistar"], "SubmitInoperabilityReport", _report(real.number))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    # A refused report changed nothing: the event still can be reported once.
    await _call(claro, "SubmitInoperabilityReport", _report(real.number))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "SubmitInoperabilityReport", _report(real.number))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Error/test records never fall due.
    await advance(app, clock, timedelta(days=20))
    assert await _records(app) == []


# -- Reading ---------------------------------------------------------------------------------------


async def test_an_event_is_read_by_its_operator_and_the_regulator(app, operators, clock, claro):
    opened = await _call(claro, "RegisterInoperability", _open(clock))
    by_regulator = await _call(
        operators["osiptel"],
        "GetInoperability",
        pb.GetInoperabilityRequest(operator="claro", number=1),
    )
    assert by_regulator == opened
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            operators["movistar"],
            "GetInoperability",
            pb.GetInoperabilityRequest(operator="claro", number=1),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(claro, "GetInoperability", pb.GetInoperabilityRequest(number=2))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_regulator_report_rows_exclude_error_and_test_records(app, operators, clock, claro):
    # Monday 23 November 2026 10:00 Lima: a 90-minute mass failure on claims at the store, a
    # 20-minute power cut at the call centre 123, a test record, and one closed as a user error.
    monday = clock.now()
    mass = await _call(claro, "RegisterInoperability", _open(clock))
    power = await _call(
        claro,
        "RegisterInoperability",
        _open(
            clock,
            point="CC-123",
            request_type=pb.REQUEST_TYPE_ACTIVATIONS,
            scenario=pb.SCENARIO_UNFORESEEN_EVENT,
            detail="corte de luz",
        ),
    )
    test_one = await _call(
        claro,
        "RegisterInoperability",
        _open(clock, point="CC-135", scenario=pb.SCENARIO_ERROR_OR_TEST),
    )
    mistaken = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_INQUIRIES)
    )
    await advance(app, clock, timedelta(hours=2))
    await _call(
        claro,
        "CloseInoperability",
        _close(mass.number, monday + timedelta(minutes=90), pb.CLOSING_REASON_CONNECTIVITY),
    )
    await _call(
        claro,
        "CloseInoperability",
        _close(power.number, monday + timedelta(minutes=20), pb.CLOSING_REASON_NO_POWER),
    )
    for event in (test_one, mistaken):
        await _call(
            claro,
            "CloseInoperability",
            _close(
                event.number,
                clock.now(),
                pb.CLOSING_REASON_USER_ERROR,
                closing_note="prueba",
            ),
        )
    # Tuesday 24 November, 23:30 Lima is still the 24th locally (04:30 UTC on the 25th).
    late_night = datetime(2026, 11, 25, 4, 30, tzinfo=UTC)
    await advance_to(app, clock, late_night)
    still_open = await _call(
        claro, "RegisterInoperability", _open(clock, request_type=pb.REQUEST_TYPE_CANCELLATIONS)
    )
    await _point(operators["movistar"], "CAC-LIMA-01")
    await _call(operators["movistar"], "RegisterInoperability", _open(clock))

    handler = _handler(app)
    rows = await handler.report("claro", date(2026, 11, 23), date(2026, 11, 24))
    assert [(r.number, r.scenario, r.closing_reason) for r in rows] == [
        (mass.number, "mass_failure", "connectivity"),
        (power.number, "unforeseen_event", "no_power"),
        (still_open.number, "mass_failure", None),
    ]
    first = rows[0]
    assert (first.attention_point_name, first.attention_point_type, first.request_type) == (
        "Punto CAC-LIMA-01",
        "store",
        "claims",
    )
    assert [(r.duration_minutes, r.over_one_hour) for r in rows] == [
        (90, True),
        (20, False),
        (None, False),
    ]
    assert rows[1].detail == "corte de luz"
    assert [
        r.number for r in await handler.report("claro", date(2026, 11, 23), date(2026, 11, 23))
    ] == [
        mass.number,
        power.number,
    ]
    assert await handler.report("claro", date(2026, 11, 25), date(2026, 11, 30)) == []
    assert await handler.summary("claro", date(2026, 11, 23), date(2026, 11, 24)) == {
        "operator": "claro",
        "start": date(2026, 11, 23),
        "end": date(2026, 11, 24),
        "events": 3,
        "closed": 2,
        "open": 1,
        "total_minutes": 110,
        "over_one_hour": 1,
        "by_scenario": {"mass_failure": 2, "unforeseen_event": 1},
        "by_closing_reason": {"connectivity": 1, "no_power": 1},
        "by_request_type": {"claims": 1, "activations": 1, "cancellations": 1},
    }
