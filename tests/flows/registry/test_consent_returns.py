"""Returns for lack of consent (article 30): SR → AR/DR, execution in a change window, broadcast,
and the deadlines of infractions 30, 32 and 33 at their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.v1 import events_pb2
from npc.v1 import registry_pb2 as pb
from tests.helpers import (
    advance,
    advance_to,
    block,
    collect,
    error_info,
    field_violations,
    head,
    live_case,
    port_end_to_end,
    rid,
    settle,
    ts,
)

NOTIFIED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 30 November, 10:00 Lima
# Five business days: Tue 1 .. Mon 7 December; the limit is the end of Monday 7, 00:00 Lima on the 8th.
ANSWER_LIMIT = datetime(2026, 12, 8, 5, 0, tzinfo=UTC)
WINDOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # Wednesday 2 December, 00:00 Lima


@pytest.fixture
async def ported(app, operators, clock):
    filed = await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001", "940000002")]
    )
    await advance_to(app, clock, NOTIFIED)
    return filed.id


async def _ask(client, port_id, **fields):
    # Asked at NOTIFIED: the clearinghouse notifies the recipient then, and its term starts.
    request = pb.RequestReturnRequest(
        request_id=rid(), port_request_id=port_id, resolution="RES-123-2026", **fields
    )
    return await client.returns.RequestReturn(request, metadata=client.metadata)


async def _answer(client, return_id, **fields):
    return await client.returns.AnswerReturn(
        pb.AnswerReturnRequest(request_id=rid(), return_id=return_id, **fields),
        metadata=client.metadata,
    )


async def _confirm(client, return_id, step):
    return await client.returns.ConfirmReturnExecution(
        pb.ConfirmReturnExecutionRequest(request_id=rid(), return_id=return_id, step=step),
        metadata=client.metadata,
    )


async def _records(app, case_id):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, infraction FROM compliance_records WHERE case_id = $1 ORDER BY id",
            case_id,
        )
    return [(r["operator_id"], r["infraction"]) for r in rows]


async def test_return_in_time_moves_the_numbers_back_and_everyone_is_told(
    app, operators, clock, ported
):
    movistar, claro, entel = operators["movistar"], operators["claro"], operators["entel"]
    asked = await _ask(movistar, ported)
    assert asked.state == pb.RETURN_STATE_REQUESTED
    assert list(asked.numbers) == ["940000001", "940000002"]
    assert asked.answer_deadline.ToDatetime(tzinfo=UTC) == ANSWER_LIMIT
    assert asked.notified_at.ToDatetime(tzinfo=UTC) == NOTIFIED
    accepted = await _answer(
        claro, asked.id, accept=True, disable_at=ts(WINDOW + timedelta(hours=1))
    )
    assert accepted.state == pb.RETURN_STATE_SCHEDULED
    await settle(app)
    start = head(app)
    await advance_to(app, clock, WINDOW + timedelta(hours=1))
    lookup = await entel.registry.LookupNumbers(
        pb.LookupNumbersRequest(numbers=["940000001", "940000002"]), metadata=entel.metadata
    )
    assert [(r.serving_operator, r.ported) for r in lookup.results] == [("movistar", False)] * 2
    changes = [
        e for e in await collect(entel, start, head(app)) if e.type == "registry.numbers_changed"
    ]
    assert len(changes) == 1
    assert changes[0].numbers_changed.reason == events_pb2.NUMBERS_CHANGE_REASON_RETURN
    await _confirm(claro, asked.id, pb.RETURN_STEP_RECIPIENT_DISABLED)
    done = await _confirm(movistar, asked.id, pb.RETURN_STEP_DONOR_ENABLED)
    assert done.state == pb.RETURN_STATE_COMPLETED
    await advance(app, clock, timedelta(days=10))
    assert await _records(app, asked.id) == []


async def test_recipient_silent_for_five_business_days_is_recorded(app, operators, clock, ported):
    asked = await _ask(operators["movistar"], ported)
    await advance_to(app, clock, ANSWER_LIMIT - timedelta(seconds=1))
    assert await _records(app, asked.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, asked.id) == [("claro", 30)]


async def test_missed_confirmations_are_recorded_at_their_deadlines(app, operators, clock, ported):
    asked = await _ask(operators["movistar"], ported)
    disable_at = WINDOW + timedelta(hours=1)  # 01:00 Lima; the window closes at 06:00
    await _answer(operators["claro"], asked.id, accept=True, disable_at=ts(disable_at))
    await advance_to(app, clock, disable_at + timedelta(hours=3) - timedelta(seconds=1))
    assert await _records(app, asked.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, asked.id) == [("movistar", 33)]
    await advance_to(app, clock, WINDOW + timedelta(hours=6))
    assert await _records(app, asked.id) == [("movistar", 33), ("claro", 32)]


async def test_denied_return_tells_the_donor(app, operators, clock, ported):
    movistar = operators["movistar"]
    asked = await _ask(movistar, ported)
    await settle(app)
    start = head(app)
    denied = await _answer(
        operators["claro"],
        asked.id,
        accept=False,
        denial=pb.RETURN_DENIAL_REASON_RESOLUTION_NOT_FINAL,
        denial_reason="an appeal is pending",
    )
    assert (denied.state, denied.denial) == (
        pb.RETURN_STATE_DENIED,
        pb.RETURN_DENIAL_REASON_RESOLUTION_NOT_FINAL,
    )
    await settle(app)
    events = [
        e for e in await collect(movistar, start, head(app)) if e.type == "registry.return.denied"
    ]
    assert [(e.number_return.denial, e.number_return.denial_reason) for e in events] == [
        (pb.RETURN_DENIAL_REASON_RESOLUTION_NOT_FINAL, "an appeal is pending")
    ]


@pytest.mark.parametrize(
    ("caller", "numbers", "code"),
    [
        ("claro", [], grpc.StatusCode.PERMISSION_DENIED),
        ("entel", [], grpc.StatusCode.NOT_FOUND),  # no party: the port is not there for it
        ("movistar", ["940000003"], grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_wrong_returns_are_refused(app, operators, clock, ported, caller, numbers, code):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _ask(operators[caller], ported, numbers=numbers)
    assert refused.value.code() == code


async def test_a_second_return_of_a_port_names_the_one_under_way(app, operators, ported):
    first = await _ask(operators["movistar"], ported)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await _ask(operators["movistar"], ported)
    assert live_case(twice.value) == (first.id, ported)


async def test_disabling_instant_must_be_in_a_change_window(app, operators, clock, ported):
    asked = await _ask(operators["movistar"], ported)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(
            operators["claro"], asked.id, accept=True, disable_at=ts(WINDOW + timedelta(hours=8))
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A window after the end of the recipient's 5 business days: on the wire, OUT_OF_RANGE with
    # its stable reason and the field's path.
    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        await _answer(
            operators["claro"],
            asked.id,
            accept=True,
            disable_at=ts(ANSWER_LIMIT + timedelta(hours=1)),
        )
    assert beyond.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_info(beyond.value).reason == "BEYOND_TERM"
    assert list(field_violations(beyond.value)) == ["disable_at"]


async def test_an_unreadable_instant_is_refused_with_the_request_s_other_faults(operators):
    """An instant no datetime holds is reported on its field, beside every other fault, before
    anything is read."""
    unreadable = Timestamp(seconds=10**12)  # year 33658
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await operators["movistar"].returns.RequestReturn(
            pb.RequestReturnRequest(request_id=rid(), port_request_id="SP1", resolution=""),
            metadata=operators["movistar"].metadata,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {
        "port_request_id": "required: a SP number issued by the clearinghouse (SP0000000001)",
        "resolution": "required: the resolution that upheld the claim",
    }
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(operators["claro"], "RT0000000001", accept=False, disable_at=unreadable)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {
        "disable_at": "not a valid instant",
        "denial": "required when denying: a RETURN_DENIAL_REASON_* value",
    }
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(operators["claro"], "RT0000000001", accept=True)
    assert field_violations(refused.value) == {"disable_at": "required"}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _confirm(operators["claro"], "RT0000000001", 7)  # a step this server does not know
    assert field_violations(refused.value) == {
        "step": "RETURN_STEP_RECIPIENT_DISABLED or RETURN_STEP_DONOR_ENABLED"
    }
