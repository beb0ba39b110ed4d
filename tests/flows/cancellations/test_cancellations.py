"""Daily reports of cancellations and plan migrations: replacement, deadlines at their boundary
(every day of the week, holidays included), the subscriber's lookup and the regulator's report."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.api.errors import MAX_VIOLATIONS
from npc.core.errors import InvalidArgument
from npc.flows.cancellations import convert
from npc.flows.cancellations.handler import (
    end_reporting_operator,
    register_reporting_operator,
)
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import common_pb2
from tests.helpers import (
    Handlers,
    advance,
    advance_to,
    around_instant,
    day,
    field_violations,
    rid,
    settle,
    ts,
)

# Sunday 22 November 2026 is the first report date; its report is due on Monday 23 at 23:59 Lima
# (Tuesday 24, 04:59 UTC). The clock starts on Monday 23, 10:00 Lima.
FIRST = date(2026, 11, 22)
DUE_FIRST = datetime(2026, 11, 24, 4, 59, tzinfo=UTC)
ON_SUNDAY = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # 10:00 Lima


def record(code: str = "BJ-0001", **overrides) -> pb.RequestRecord:
    """A pending cancellation of a mobile line, presented on Sunday at a store."""
    fields: dict[str, Any] = {
        "request_code": code,
        "kind": pb.REQUEST_KIND_CANCELLATION,
        "service": pb.TRACKED_SERVICE_MOBILE_TELEPHONY,
        "channel": pb.ATTENTION_CHANNEL_STORE,
        "requested_at": ts(ON_SUNDAY),
        "subscriber_document": common_pb2.IdentityDocument(
            type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
        ),
        "service_number": "910000001",
        "service_status": pb.SERVICE_STATUS_ACTIVE,
        "scheduled_date": "2026-11-25",
        "state": pb.TRACKED_REQUEST_STATE_PENDING,
    }
    fields.update(overrides)
    scheduled = fields["scheduled_date"]
    if isinstance(scheduled, str):  # YYYY-MM-DD, or "" for none
        fields["scheduled_date"] = day(scheduled) if scheduled else None
    return pb.RequestRecord(**fields)


def executed(code: str, at: datetime, **overrides) -> pb.RequestRecord:
    """The request `code`, executed at `at`."""
    fields = {
        "state": pb.TRACKED_REQUEST_STATE_EXECUTED,
        "executed_at": ts(at),
        "execution_reason": "Baja a solicitud del abonado",
        "service_status": pb.SERVICE_STATUS_CANCELLED,
    }
    fields.update(overrides)
    return record(code, **fields)


def migration(code: str = "MG-0001", **overrides) -> pb.RequestRecord:
    """A pending migration of a fixed internet service, asked on the web."""
    fields = {
        "kind": pb.REQUEST_KIND_PLAN_MIGRATION,
        "service": pb.TRACKED_SERVICE_INTERNET,
        "channel": pb.ATTENTION_CHANNEL_WEB,
        "target_plan": "Plan Hogar 100 Mbps",
        "scheduled_date": "2026-12-01",
    }
    fields.update(overrides)
    return record(code, **fields)


async def submit(client, report_date: date, records, request_id: str | None = None):
    return await client.cancellations.SubmitDailyReport(
        pb.SubmitDailyReportRequest(
            request_id=request_id or rid(), report_date=day(report_date), records=records
        ),
        metadata=client.metadata,
    )


async def get(client, code: str, operator: str = ""):
    return await client.cancellations.GetTrackedRequest(
        pb.GetTrackedRequestRequest(operator=operator, request_code=code),
        metadata=client.metadata,
    )


async def ledger(app, rule: str | None = None) -> list[tuple[str, str]]:
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, case_id FROM compliance_records WHERE flow = 'cancellations'"
            " AND ($1::text IS NULL OR rule = $1) ORDER BY id",
            rule,
        )
    return [(r["operator_id"], r["case_id"]) for r in rows]


def handler(app):
    return app.core.flows["cancellations"].handler


@pytest.fixture
async def reporting(app, clock):
    """claro and movistar report daily from Sunday 22 November."""
    for operator in ("claro", "movistar"):
        await register_reporting_operator(
            app.core.db,
            app.settings.cancellations,
            operator=operator,
            since=FIRST,
            subscribers=12_000_000,
            now=clock.now(),
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_reporting(module_handlers: Handlers) -> Handlers:
    """`reporting` on the module's shared clearinghouse (for the refusals, which store nothing)."""
    for operator in ("claro", "movistar"):
        await register_reporting_operator(
            module_handlers.core.db,
            module_handlers.flow("cancellations").settings,  # type: ignore[attr-defined]
            operator=operator,
            since=FIRST,
            subscribers=12_000_000,
            now=module_handlers.clock.now(),
        )
    return module_handlers


async def test_a_report_is_stored_and_each_request_can_be_looked_up(
    app, operators, clock, reporting
):
    claro = operators["claro"]
    receipt = await submit(claro, FIRST, [record("BJ-0001"), migration("MG-0001")])
    assert (receipt.operator, receipt.report_date, receipt.records, receipt.version) == (
        "claro",
        day(FIRST),
        2,
        1,
    )
    assert receipt.on_time
    assert receipt.due_at.ToDatetime(tzinfo=UTC) == DUE_FIRST
    mine = await get(claro, "BJ-0001")
    assert mine.id.startswith("BM") and mine.operator == "claro"
    assert mine.record.state == pb.TRACKED_REQUEST_STATE_PENDING
    assert mine.record.scheduled_date == day("2026-11-25")
    # End of the scheduled day in Lima: Thursday 26, 00:00 Lima.
    assert mine.scheduled_deadline.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 26, 5, 0, tzinfo=UTC
    )
    regulator_view = await get(operators["osiptel"], "MG-0001", operator="claro")
    assert regulator_view.record.target_plan == "Plan Hogar 100 Mbps"
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await get(operators["movistar"], "BJ-0001", operator="claro")
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await get(claro, "BJ-9999")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_subscriber_sees_the_state_only_with_the_document(
    app, operators, clock, reporting
):
    await submit(operators["claro"], FIRST, [record("BJ-0001"), migration("MG-0001")])
    status = await handler(app).public_status("claro", "MG-0001", "44556677")
    assert status is not None
    assert (status["operator_name"], status["kind"], status["service"], status["state"]) == (
        "América Móvil Perú (Claro)",
        "migration",
        "internet",
        "pending",
    )
    assert status["scheduled_date"] == date(2026, 12, 1)
    assert status["scheduled_date_missed"] is False
    assert await handler(app).public_status("claro", "MG-0001", "11112222") is None
    assert await handler(app).public_status("movistar", "MG-0001", "44556677") is None
    assert await handler(app).public_status("claro", "MG-0001", "' OR 1=1 --") is None


async def test_a_resent_report_replaces_the_previous_one(app, operators, clock, reporting):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001"), record("BJ-0002"), migration("MG-0001")])
    await advance(app, clock, timedelta(hours=2))
    done = clock.now() - timedelta(hours=1)
    again = await submit(
        claro, FIRST, [executed("BJ-0001", done), migration("MG-0001"), record("BJ-0003")]
    )
    assert (again.version, again.records) == (2, 3)
    assert again.on_time  # the first version came in time
    assert (await get(claro, "BJ-0001")).record.state == pb.TRACKED_REQUEST_STATE_EXECUTED
    assert (await get(claro, "BJ-0003")).record.state == pb.TRACKED_REQUEST_STATE_PENDING
    with pytest.raises(grpc.aio.AioRpcError) as dropped:
        await get(claro, "BJ-0002")
    assert dropped.value.code() == grpc.StatusCode.NOT_FOUND
    async with app.core.db.pool.acquire() as conn:
        reports = await conn.fetchval("SELECT count(*) FROM cancellation_reports")
        rows = await conn.fetchval("SELECT count(*) FROM cancellation_report_records")
        tracked = await conn.fetchval("SELECT count(*) FROM tracked_requests")
    assert (reports, rows, tracked) == (1, 3, 3)


async def test_a_later_report_date_wins_even_when_an_earlier_one_is_resent(
    app, operators, clock, reporting
):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001")])
    await advance_to(app, clock, datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    monday = date(2026, 11, 23)
    await submit(claro, monday, [executed("BJ-0001", clock.now() - timedelta(hours=20))])
    # A correction of Sunday's report does not undo what Monday's report says.
    await submit(claro, FIRST, [record("BJ-0001", service_number="910000002")])
    current = await get(claro, "BJ-0001")
    assert current.record.state == pb.TRACKED_REQUEST_STATE_EXECUTED
    assert current.last_report_date == day("2026-11-23")


async def test_a_retried_request_id_answers_the_first_receipt(app, operators, clock, reporting):
    claro = operators["claro"]
    request_id = rid()
    first = await submit(claro, FIRST, [record("BJ-0001")], request_id=request_id)
    retry = await submit(claro, FIRST, [record("BJ-0001")], request_id=request_id)
    assert retry == first
    assert retry.version == 1


async def test_a_streamed_report_in_chunks(app, operators, clock, reporting):
    claro = operators["claro"]
    request_id = rid()
    chunks = [
        pb.DailyReportChunk(
            request_id=request_id, report_date=day(FIRST), records=[record("BJ-0001")]
        ),
        pb.DailyReportChunk(records=[record("BJ-0002"), migration("MG-0001")]),
        pb.DailyReportChunk(records=[record("BJ-0003")]),
    ]

    async def stream(items):
        for item in items:
            yield item

    receipt = await claro.cancellations.StreamDailyReport(stream(chunks), metadata=claro.metadata)
    assert (receipt.records, receipt.version) == (4, 1)
    assert (await get(claro, "BJ-0003")).record.request_code == "BJ-0003"
    # The same report, retried as one message with the same request id: the same answer.
    unary = await submit(
        claro,
        FIRST,
        [record("BJ-0001"), record("BJ-0002"), migration("MG-0001"), record("BJ-0003")],
        request_id=request_id,
    )
    assert unary == receipt
    bad = [
        pb.DailyReportChunk(request_id=rid(), report_date=day(FIRST)),
        pb.DailyReportChunk(report_date=day("2026-11-23"), records=[record("BJ-0004")]),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as mixed:
        await claro.cancellations.StreamDailyReport(stream(bad), metadata=claro.metadata)
    assert mixed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "chunks[1]" in field_violations(mixed.value)


@pytest.mark.parametrize(
    ("report_date", "records", "field"),
    [
        (None, [], "report_date"),
        ("2026-11-31", [], "report_date"),
        (Date(year=2026, month=11), [], "report_date"),  # a month, not a day
        ("2026-11-24", [], "report_date"),  # a day that has not begun in Lima
        ("2026-11-22", [record(kind=pb.REQUEST_KIND_UNSPECIFIED)], "records[0].kind"),
        ("2026-11-22", [record(service=0)], "records[0].service"),
        ("2026-11-22", [record(channel=0)], "records[0].channel"),
        ("2026-11-22", [record(request_code="")], "records[0].request_code"),
        ("2026-11-22", [record(), record()], "records[1].request_code"),
        ("2026-11-22", [record(scheduled_date="")], "records[0].scheduled_date"),
        ("2026-11-22", [record(scheduled_date=day("2026-02-29"))], "records[0].scheduled_date"),
        (
            "2026-11-22",
            [record(), record("BJ-0002", scheduled_date=Date(month=11, day=25))],
            "records[1].scheduled_date",
        ),
        (
            "2026-11-22",
            [record(requested_at=ts(datetime(2026, 11, 23, 15, 0, tzinfo=UTC)))],
            "records[0].requested_at",
        ),
        (
            "2026-11-22",
            [record(state=pb.TRACKED_REQUEST_STATE_EXECUTED, execution_reason="x")],
            "records[0].executed_at",
        ),
        (
            "2026-11-22",
            [executed("BJ-1", datetime(2026, 11, 23, 15, 0, tzinfo=UTC), execution_reason="")],
            "records[0].execution_reason",
        ),
        ("2026-11-22", [migration(target_plan="")], "records[0].target_plan"),
        (
            "2026-11-22",
            [
                record(
                    subscriber_document=common_pb2.IdentityDocument(
                        type=common_pb2.DOCUMENT_TYPE_DNI, number="123"
                    )
                )
            ],
            "records[0].subscriber_document.number",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_reports_are_refused_and_store_nothing(
    module_reporting: Handlers, report_date, records, field
):
    # The handler as SubmitDailyReport runs it; the wire's INVALID_ARGUMENT and field paths are
    # shown by test_unreadable_instants_are_refused_with_the_other_violations_in_order.
    handlers = module_reporting
    request = pb.SubmitDailyReportRequest(
        request_id=rid(),
        report_date=day(report_date) if isinstance(report_date, str) else report_date,
        records=records,
    )
    reports = handlers.flow("cancellations").handler  # type: ignore[attr-defined]
    report = convert.daily_report(request, reports.settings.max_records)
    with pytest.raises(InvalidArgument) as refused:
        await handlers.perform(
            "SubmitDailyReport",
            lambda txn: reports.submit_report(txn, handlers.caller("claro"), report),
        )
    assert field in {violation.field for violation in refused.value.violations}
    async with handlers.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cancellation_reports") == 0


async def test_unreadable_instants_are_refused_with_the_other_violations_in_order(
    app, operators, clock, reporting
):
    # As before the flow took commands: each record's mistakes in the order of its fields.
    records = [
        record(
            "BJ-1",
            channel=99,
            requested_at=Timestamp(seconds=253402300800),  # year 10000
            scheduled_date=Date(year=2026, month=11, day=31),
        ),
        record("BJ-2", executed_at=Timestamp(seconds=1, nanos=10**9)),  # pending, nanos too many
        executed(
            "BJ-3", ON_SUNDAY, executed_at=Timestamp(seconds=0, nanos=-1), execution_reason=""
        ),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit(operators["claro"], FIRST, records)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value).items()) == [
        ("records[0].channel", "required: the attention channel"),
        ("records[0].requested_at", "not a valid instant"),
        ("records[0].scheduled_date", "not a valid date: a full year (1-9999), month and day"),
        ("records[1].executed_at", "not a valid instant"),
        ("records[2].executed_at", "not a valid instant"),
        ("records[2].execution_reason", "required: the reason of the execution or rejection"),
    ]
    async with app.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cancellation_reports") == 0


async def test_a_request_presented_by_local_midnight_belongs_to_the_report_date(
    app, operators, clock, reporting
):
    midnight = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Lima, the end of Sunday 22
    late = record("BJ-2", requested_at=ts(midnight))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit(operators["claro"], FIRST, [record("BJ-1"), late])
    assert list(field_violations(refused.value)) == ["records[1].requested_at"]
    just_in = record("BJ-2", requested_at=ts(midnight - timedelta(microseconds=1)))
    receipt = await submit(operators["claro"], FIRST, [record("BJ-1"), just_in])
    assert receipt.records == 2


async def test_only_reporting_operators_report_and_only_their_dates(
    app, operators, clock, reporting
):
    for caller in ("entel", "osiptel"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(operators[caller], FIRST, [record()])
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await submit(operators["claro"], FIRST - timedelta(days=1), [])
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_missing_daily_report_is_recorded_at_its_due_instant(
    app, operators, clock, reporting
):
    await submit(operators["claro"], FIRST, [])  # a day without requests is reported empty
    await advance_to(app, clock, DUE_FIRST - timedelta(seconds=1))
    assert await ledger(app) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await ledger(app) == [("movistar", "movistar/2026-11-22")]
    # The chain goes on: Monday's report is due on Tuesday at 23:59 Lima.
    await advance_to(app, clock, DUE_FIRST + timedelta(days=1) - timedelta(seconds=1))
    await submit(operators["movistar"], date(2026, 11, 23), [record()])
    await advance(app, clock, timedelta(seconds=1))
    assert await ledger(app) == [
        ("movistar", "movistar/2026-11-22"),
        ("claro", "claro/2026-11-23"),
    ]


async def test_reports_are_due_on_weekends_and_holidays(app, operators, clock, reporting):
    # Saturday 5, Sunday 6 and Tuesday 8 December 2026 (Inmaculada Concepción, a holiday in Peru)
    # are report dates like any other.
    claro = operators["claro"]
    skipped = (date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 8))
    day = FIRST
    while day <= date(2026, 12, 8):
        if day not in skipped:
            await submit(claro, day, [])
        day += timedelta(days=1)
        await advance_to(app, clock, datetime.combine(day, ON_SUNDAY.timetz()))
    holiday_due = datetime(2026, 12, 10, 4, 59, tzinfo=UTC)  # Wednesday 9, 23:59 Lima
    await advance_to(app, clock, holiday_due - timedelta(seconds=1))
    claro_missing = [c for o, c in await ledger(app) if o == "claro"]
    assert claro_missing == ["claro/2026-12-05", "claro/2026-12-06"]
    await advance(app, clock, timedelta(seconds=1))
    claro_missing = [c for o, c in await ledger(app) if o == "claro"]
    assert claro_missing == ["claro/2026-12-05", "claro/2026-12-06", "claro/2026-12-08"]


async def test_the_daily_report_compliance_report(app, operators, clock, reporting):
    claro = operators["claro"]
    await submit(claro, FIRST, [record()])  # on time
    await advance_to(app, clock, datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    await submit(claro, date(2026, 11, 23), [])  # due on Tuesday 23:59 Lima: late
    await advance_to(app, clock, datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    # Wednesday 25's report is not yet due: it does not count.
    items = await handler(app).daily_report_compliance(FIRST, date(2026, 11, 25))
    by_operator = {i["operator"]: i for i in items}
    assert by_operator["claro"] == {
        "operator": "claro",
        "days_due": 3,
        "received": 2,
        "on_time": 1,
        "late": 1,
        "missing": 1,
        "missing_dates": [date(2026, 11, 24)],
        "late_dates": [date(2026, 11, 23)],
    }
    assert by_operator["movistar"]["missing"] == 3
    request = pb.DailyReportComplianceRequest(from_date=day(FIRST), to_date=day("2026-11-25"))
    everyone = await operators["osiptel"].cancellations.GetDailyReportCompliance(
        request, metadata=operators["osiptel"].metadata
    )
    assert [(o.operator, o.on_time, o.late, o.missing) for o in everyone.operators] == [
        ("claro", 1, 1, 1),
        ("movistar", 0, 0, 3),
    ]
    own = await claro.cancellations.GetDailyReportCompliance(request, metadata=claro.metadata)
    assert [o.operator for o in own.operators] == ["claro"]
    assert list(own.operators[0].missing_dates) == [day("2026-11-24")]
    assert list(own.operators[0].late_dates) == [day("2026-11-23")]
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await claro.cancellations.GetDailyReportCompliance(
            pb.DailyReportComplianceRequest(
                operator="movistar", from_date=day(FIRST), to_date=day("2026-11-25")
            ),
            metadata=claro.metadata,
        )
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as backwards:
        await claro.cancellations.GetDailyReportCompliance(
            pb.DailyReportComplianceRequest(from_date=day("2026-11-25"), to_date=day(FIRST)),
            metadata=claro.metadata,
        )
    assert "to_date" in field_violations(backwards.value)
    with pytest.raises(grpc.aio.AioRpcError) as undated:
        await claro.cancellations.GetDailyReportCompliance(
            pb.DailyReportComplianceRequest(
                operator="Movistar", from_date=Date(year=2026, month=13, day=1)
            ),
            metadata=claro.metadata,
        )
    # Every mistake at once: the impossible date among the others, each under its own name.
    assert set(field_violations(undated.value)) == {"operator", "from_date", "to_date"}


async def test_a_scheduled_date_passed_without_execution_is_recorded_at_its_end(
    app, operators, clock, reporting
):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001"), record("BJ-0002", scheduled_date="2026-11-30")])
    late, later = await get(claro, "BJ-0001"), await get(claro, "BJ-0002")
    end_of_25th = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    await advance_to(app, clock, end_of_25th - timedelta(seconds=1))
    assert await ledger(app, "scheduled_date_not_executed") == []
    await advance(app, clock, timedelta(seconds=1))
    assert await ledger(app, "scheduled_date_not_executed") == [("claro", late.id)]
    status = await handler(app).public_status("claro", "BJ-0001", "44556677")
    assert status is not None and status["scheduled_date_missed"] is True
    assert later.id not in [c for _, c in await ledger(app)]


async def test_a_request_executed_on_its_date_leaves_no_record(app, operators, clock, reporting):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001")])
    on_the_day = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 18:00 Lima on the 25th
    await advance_to(app, clock, on_the_day + timedelta(hours=1))
    await submit(claro, date(2026, 11, 25), [executed("BJ-0001", on_the_day)])
    await advance_to(app, clock, datetime(2026, 11, 28, 5, 0, tzinfo=UTC))
    assert await ledger(app, "scheduled_date_not_executed") == []


async def test_a_request_reported_executed_after_its_date_is_recorded(
    app, operators, clock, reporting
):
    claro = operators["claro"]
    await advance_to(app, clock, datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    # First reported on Friday 27: asked on Sunday 22, scheduled for the 25th, executed the 26th.
    await submit(
        claro,
        date(2026, 11, 26),
        [executed("BJ-0007", datetime(2026, 11, 26, 14, 0, tzinfo=UTC))],
    )
    await settle(app)
    tracked = await get(claro, "BJ-0007")
    assert ("claro", tracked.id) in await ledger(app, "scheduled_date_not_executed")


async def test_rescheduling_moves_the_deadline(app, operators, clock, reporting):
    claro = operators["claro"]
    await submit(claro, FIRST, [record("BJ-0001")])
    await advance_to(app, clock, datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    await submit(claro, date(2026, 11, 23), [record("BJ-0001", scheduled_date="2026-11-27")])
    await advance_to(app, clock, datetime(2026, 11, 28, 5, 0, tzinfo=UTC) - timedelta(seconds=1))
    assert await ledger(app, "scheduled_date_not_executed") == []
    await advance(app, clock, timedelta(seconds=1))
    assert len(await ledger(app, "scheduled_date_not_executed")) == 1


async def test_an_operator_no_longer_reporting_is_not_recorded(app, operators, clock, reporting):
    await end_reporting_operator(app.core.db, operator="movistar", until=FIRST, now=clock.now())
    await submit(operators["claro"], FIRST, [])
    await advance_to(app, clock, DUE_FIRST + timedelta(days=3))
    recorded = await ledger(app)
    assert ("movistar", "movistar/2026-11-22") in recorded
    assert [c for o, c in recorded if o == "movistar"] == ["movistar/2026-11-22"]
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await submit(operators["movistar"], date(2026, 11, 23), [])
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_large_report_streamed_in_chunks_and_resent(app, operators, clock, reporting):
    claro = operators["claro"]
    count = 5000

    def chunks(request_id: str, state: int):
        for start in range(0, count, 1000):
            records = [
                record(
                    f"BJ-{n:06d}",
                    state=state,
                    **(
                        {
                            "executed_at": ts(ON_SUNDAY + timedelta(hours=1)),
                            "execution_reason": "Baja a solicitud del abonado",
                        }
                        if state == pb.TRACKED_REQUEST_STATE_EXECUTED
                        else {}
                    ),
                )
                for n in range(start, start + 1000)
            ]
            yield pb.DailyReportChunk(
                request_id=request_id if start == 0 else "",
                report_date=day(FIRST) if start == 0 else None,
                records=records,
            )

    async def stream(items):
        for item in items:
            yield item

    first = await claro.cancellations.StreamDailyReport(
        stream(chunks(rid(), pb.TRACKED_REQUEST_STATE_PENDING)), metadata=claro.metadata
    )
    second = await claro.cancellations.StreamDailyReport(
        stream(chunks(rid(), pb.TRACKED_REQUEST_STATE_EXECUTED)), metadata=claro.metadata
    )
    assert (first.records, second.records, second.version) == (count, count, 2)
    async with app.core.db.pool.acquire() as conn:
        states = await conn.fetch("SELECT state, count(*) AS n FROM tracked_requests GROUP BY 1")
        pending = await conn.fetchval(
            "SELECT count(*) FROM deadlines WHERE flow = 'cancellations' AND kind = 'scheduled'"
            " AND fired_at IS NULL AND cancelled_at IS NULL"
        )
    assert [(r["state"], r["n"]) for r in states] == [("executed", count)]
    assert pending == 0


async def test_a_report_with_thousands_of_bad_records_is_refused_readably(
    app, operators, clock, reporting
):
    # Every record names an unknown channel: one violation each. The answer must still fit in
    # the trailers a client accepts (found by the API fuzzing: the client got RESOURCE_EXHAUSTED).
    records = [record(f"BJ-{k:04d}", channel=99) for k in range(3000)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit(operators["claro"], FIRST, records)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(refused.value)
    assert "records[0].channel" in violations
    assert len(violations) == MAX_VIOLATIONS + 1
    assert re.fullmatch(
        r"and \d+ more violations", violations[f"records[{MAX_VIOLATIONS}].channel"]
    )
    assert len(refused.value.details().encode()) <= 400


async def test_a_daily_report_at_its_due_instant_is_late_whoever_comes_first(handlers: Handlers):
    """A first version one second before the due instant is on time; one at the instant is late
    and recorded once, whether it was stored before the deadline fired (claro) or after
    (movistar): the ledger agrees with the compliance query's count."""
    reports = handlers.flow("cancellations").handler  # type: ignore[attr-defined]
    operators = ("entel", "claro", "movistar")
    for operator in operators:
        await register_reporting_operator(
            handlers.core.db,
            reports.settings,
            operator=operator,
            since=FIRST,
            subscribers=12_000_000,
            now=handlers.clock.now(),
        )
    on_time: list[bool] = []

    async def send(by: Handlers, operator: str) -> None:
        request = pb.SubmitDailyReportRequest(report_date=day(FIRST))
        report = convert.daily_report(request, reports.settings.max_records)
        receipt = await by.perform(
            "SubmitDailyReport",
            lambda txn: reports.submit_report(txn, by.caller(operator), report),
        )
        on_time.append(receipt.on_time)

    await around_instant(handlers, DUE_FIRST, send, operators)
    assert on_time == [True, False, False]
    async with handlers.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, due_at, evidence FROM compliance_records"
            " WHERE flow = 'cancellations' ORDER BY operator_id"
        )
    assert [(r["operator_id"], r["due_at"]) for r in rows] == [
        ("claro", DUE_FIRST),
        ("movistar", DUE_FIRST),
    ]
    assert rows[0]["evidence"]["received_at"] == DUE_FIRST.isoformat()
    assert "received_at" not in rows[1]["evidence"]
