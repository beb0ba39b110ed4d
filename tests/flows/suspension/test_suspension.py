"""Suspension for debt and reactivation, each deadline at its boundary (fake clock, Peruvian
business days with holidays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.v1 import common_pb2, suspension_pb2
from tests.helpers import (
    advance,
    advance_to,
    block,
    day,
    field_violations,
    port_end_to_end,
    rid,
    ts,
)

# The port executes at the window opening on Tuesday 24 November 2026, 00:00 Lima (05:00 UTC).
EXECUTED = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def _ask(port_id: str, **overrides) -> suspension_pb2.RequestSuspensionRequest:
    fields: dict[str, Any] = {
        "request_id": rid(),
        "port_request_id": port_id,
        "number": "940000001",
        "bill_number": "B001-000123",
        "due_date": day("2026-11-15"),
        "owed": common_pb2.Money(amount="89.90", currency="PEN"),
    }
    fields.update(overrides)
    return suspension_pb2.RequestSuspensionRequest(**fields)


async def _call(client, method, request):
    return await getattr(client.suspension, method)(request, metadata=client.metadata)


async def _records(app, case_id):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, infraction FROM compliance_records WHERE case_id = $1 ORDER BY id",
            case_id,
        )
    return [(r["operator_id"], r["infraction"]) for r in rows]


@pytest.fixture
async def ported(app, operators, clock):
    """940000001 ported from movistar (donor) to claro (recipient), both confirmations in time."""
    filed = await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001")]
    )
    assert clock.now() == EXECUTED
    return filed.id


async def test_asked_on_day_29_is_refused_and_on_day_30_accepted(app, operators, clock, ported):
    movistar = operators["movistar"]
    await advance_to(app, clock, EXECUTED + timedelta(days=29, hours=23, minutes=59))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(movistar, "RequestSuspension", _ask(ported))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "30 calendar days" in refused.value.details()
    await advance(app, clock, timedelta(minutes=1))
    asked = await _call(movistar, "RequestSuspension", _ask(ported))
    assert asked.state == suspension_pb2.SUSPENSION_STATE_REQUESTED
    assert (asked.donor, asked.recipient) == ("movistar", "claro")
    assert asked.due_date == day("2026-11-15")


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"bill_number": ""}, {"bill_number"}),
        ({"due_date": day("2026-02-30")}, {"due_date"}),
        ({"due_date": None}, {"due_date"}),
        ({"due_date": Date(year=2026, month=11), "bill_number": ""}, {"bill_number", "due_date"}),
        ({"owed": common_pb2.Money(amount="", currency="PEN")}, {"owed.amount"}),
        ({"owed": common_pb2.Money(amount="10", currency="soles")}, {"owed.currency"}),
    ],
)
async def test_suspension_needs_bill_due_date_and_amount(
    app, operators, clock, ported, overrides, fields
):
    await advance_to(app, clock, EXECUTED + timedelta(days=31))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["movistar"], "RequestSuspension", _ask(ported, **overrides))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == fields


@pytest.mark.parametrize(
    ("caller", "code"),
    [
        ("claro", grpc.StatusCode.PERMISSION_DENIED),
        ("entel", grpc.StatusCode.NOT_FOUND),  # no party of the port
        ("osiptel", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_only_the_donor_asks_for_a_suspension(app, operators, clock, ported, caller, code):
    await advance_to(app, clock, EXECUTED + timedelta(days=31))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators[caller], "RequestSuspension", _ask(ported))
    assert refused.value.code() == code


async def test_recipient_suspends_within_two_business_days_across_christmas(
    app, operators, clock, ported
):
    # Asked on Thursday 24 December 2026 00:00 Lima: Friday 25 is Christmas, then the weekend, so
    # the two business days are Monday 28 and Tuesday 29; the limit is Wednesday 30, 00:00 Lima.
    await advance_to(app, clock, EXECUTED + timedelta(days=30))
    asked = await _call(operators["movistar"], "RequestSuspension", _ask(ported))
    limit = datetime(2026, 12, 30, 5, 0, tzinfo=UTC)
    assert asked.suspend_deadline.ToDatetime(tzinfo=UTC) == limit
    await advance_to(app, clock, limit - timedelta(seconds=1))
    assert await _records(app, asked.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, asked.id) == [("claro", 13)]
    late = await _call(
        operators["claro"],
        "ConfirmSuspension",
        suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=asked.id),
    )
    assert late.state == suspension_pb2.SUSPENSION_STATE_SUSPENDED
    assert await _records(app, asked.id) == [("claro", 13)]  # recorded once


async def test_reactivation_in_time_leaves_no_record(app, operators, clock, ported):
    movistar, claro = operators["movistar"], operators["claro"]
    await advance_to(app, clock, EXECUTED + timedelta(days=30))
    asked = await _call(movistar, "RequestSuspension", _ask(ported))
    await advance(app, clock, timedelta(hours=3))
    await _call(
        claro,
        "ConfirmSuspension",
        suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=asked.id),
    )
    await advance(app, clock, timedelta(days=3))
    paid = clock.now() - timedelta(hours=2)
    due = await _call(
        movistar,
        "RequestReactivation",
        suspension_pb2.RequestReactivationRequest(
            request_id=rid(), suspension_id=asked.id, paid_at=ts(paid)
        ),
    )
    assert due.state == suspension_pb2.SUSPENSION_STATE_REACTIVATION_DUE
    assert due.reactivation_deadline.ToDatetime(tzinfo=UTC) == clock.now() + timedelta(hours=24)
    await advance(app, clock, timedelta(hours=23, minutes=59))
    done = await _call(
        claro,
        "ConfirmReactivation",
        suspension_pb2.ConfirmReactivationRequest(request_id=rid(), suspension_id=asked.id),
    )
    assert done.state == suspension_pb2.SUSPENSION_STATE_REACTIVATED
    await advance(app, clock, timedelta(days=40))
    assert await _records(app, asked.id) == []


async def test_late_reactivation_request_and_late_reactivation_are_recorded(
    app, operators, clock, ported
):
    movistar, claro = operators["movistar"], operators["claro"]
    await advance_to(
        app, clock, datetime(2027, 1, 4, 15, 0, tzinfo=UTC)
    )  # Monday 4 January, 10:00 Lima
    asked = await _call(movistar, "RequestSuspension", _ask(ported))
    await _call(
        claro,
        "ConfirmSuspension",
        suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=asked.id),
    )
    # Paid Monday 10:00; one business day ends Tuesday 24:00. Asked on Wednesday: infraction 14.
    paid = clock.now()
    await advance_to(app, clock, datetime(2027, 1, 6, 15, 0, tzinfo=UTC))
    due = await _call(
        movistar,
        "RequestReactivation",
        suspension_pb2.RequestReactivationRequest(
            request_id=rid(), suspension_id=asked.id, paid_at=ts(paid)
        ),
    )
    assert await _records(app, asked.id) == [("movistar", 14)]
    await advance(app, clock, timedelta(hours=23, minutes=59, seconds=59))
    assert await _records(app, asked.id) == [("movistar", 14)]
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, asked.id) == [("movistar", 14), ("claro", 15)]
    assert due.reactivation_deadline.ToDatetime(tzinfo=UTC) == clock.now()


async def _deadline_rules(app, case_id):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, rule FROM deadlines WHERE case_id = $1 ORDER BY id", case_id
        )
    return [(r["kind"], r["rule"]) for r in rows]


async def test_reactivation_without_a_readable_payment_instant_is_refused_and_the_notes_keep_their_terms(
    app, operators, clock, ported
):
    # The terms live once in suspension/rules.py; the notes stored with the deadlines say them as
    # operators and auditors have always read them.
    movistar, claro = operators["movistar"], operators["claro"]
    await advance_to(app, clock, EXECUTED + timedelta(days=30))
    asked = await _call(movistar, "RequestSuspension", _ask(ported))
    await _call(
        claro,
        "ConfirmSuspension",
        suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=asked.id),
    )
    unset = suspension_pb2.RequestReactivationRequest(request_id=rid(), suspension_id=asked.id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(movistar, "RequestReactivation", unset)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {"paid_at": "required"}
    # Nanos beyond a second: no datetime holds it; refused with the request's other mistakes in
    # the order of the checks, and the refusal is kept under its request id like any other.
    unreadable = suspension_pb2.RequestReactivationRequest(
        request_id=rid(), suspension_id="SU1", paid_at=Timestamp(seconds=1, nanos=10**9)
    )
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(movistar, "RequestReactivation", unreadable)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(field_violations(refused.value).items()) == [
            ("suspension_id", "required: a SU number issued by the clearinghouse (SU0000000001)"),
            ("paid_at", "not a valid instant"),
        ]
    await _call(
        movistar,
        "RequestReactivation",
        suspension_pb2.RequestReactivationRequest(
            request_id=rid(), suspension_id=asked.id, paid_at=ts(clock.now())
        ),
    )
    assert await _deadline_rules(app, asked.id) == [
        ("suspend", "recipient suspends within 2 business days (art. 13 (iii), infraction 13)"),
        ("max_duration", "a suspension lasts at most 30 calendar days"),
        ("reactivate", "recipient reactivates within 24 hours (art. 13 (v), infraction 15)"),
    ]
