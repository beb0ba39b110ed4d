"""Art. 13 counted in calendar days of Lima: the 30 days before a suspension may be asked run from
the disabling date (not 720 hours from the disabling instant), and a suspension never outlasts
its 30th day (the recipient's 24 hours to reactivate end with it). Pure terms, then the handler
at each boundary across the December-January month end (Lima keeps UTC-5 all year)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from npc.core.calendar import PERU
from npc.core.errors import AlreadyExists, FailedPrecondition
from npc.flows.portability import convert as port_convert
from npc.flows.suspension import convert
from npc.flows.suspension.rules import (
    reactivation_due_from,
    suspension_allowed_from,
    suspension_ends_at,
)
from npc.v1 import common_pb2, portability_pb2, suspension_pb2
from tests.helpers import Handlers, block, day, port_through_handlers, rid, ts

LIMA = timedelta(hours=5)  # UTC-5, no daylight saving time
SECOND = timedelta(seconds=1)


def lima(year: int, month: int, dom: int, hour: int = 0, minute: int = 0, second: int = 0):
    """A Lima wall time as its UTC instant."""
    return datetime(year, month, dom, hour, minute, second, tzinfo=UTC) + LIMA


@pytest.mark.parametrize(
    ("disabled_at", "allowed_from"),
    [
        (lima(2026, 11, 24, 2, 30), lima(2026, 12, 24)),  # 720 hours would say 02:30
        (lima(2026, 11, 24, 23, 59, 59), lima(2026, 12, 24)),  # 04:59:59 UTC on the 25th
        (lima(2027, 1, 31, 1, 0), lima(2027, 3, 2)),  # across February's 28 days
    ],
)
def test_a_suspension_may_be_asked_from_the_midnight_after_the_30th_day(disabled_at, allowed_from):
    assert suspension_allowed_from(PERU, disabled_at) == allowed_from


@pytest.mark.parametrize(
    ("suspended_at", "ends_at"),
    [
        (lima(2026, 12, 24, 10, 0), lima(2027, 1, 23)),  # across the year's end
        (lima(2026, 12, 2, 0, 0), lima(2027, 1, 1)),  # begun at midnight: exactly 30 days
        (lima(2026, 12, 2, 23, 59, 59), lima(2027, 1, 1)),
    ],
)
def test_a_suspension_ends_with_its_30th_calendar_day_and_never_lasts_31(suspended_at, ends_at):
    ends = suspension_ends_at(PERU, suspended_at)
    assert ends == ends_at
    assert ends - suspended_at <= timedelta(days=30)
    assert reactivation_due_from(ends) == ends - timedelta(hours=24)


async def _request(handlers: Handlers, port_id: str, number: str = "940000001"):
    handler = handlers.flow("suspension").handler  # type: ignore[attr-defined]
    request = suspension_pb2.RequestSuspensionRequest(
        request_id=rid(),
        port_request_id=port_id,
        number=number,
        bill_number="B001-000123",
        due_date=day("2026-11-15"),
        owed=common_pb2.Money(amount="89.90", currency="PEN"),
    )
    return await handlers.perform(
        "test.suspend",
        lambda txn: handler.request_suspension(
            txn, handlers.caller("movistar"), convert.suspension_request(request)
        ),
    )


async def _state(handlers: Handlers, case_id: str):
    async with handlers.core.db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM suspensions WHERE id = $1", case_id)
        records = await conn.fetch(
            "SELECT operator_id, infraction FROM compliance_records WHERE case_id = $1", case_id
        )
    return row, [(r["operator_id"], r["infraction"]) for r in records]


async def test_the_30_days_are_lima_dates_and_the_30th_day_ends_the_suspension(
    handlers: Handlers,
):
    port_id = await port_through_handlers(handlers, "claro", "movistar", [block("940000001")])
    portability = handlers.flow("portability").handler  # type: ignore[attr-defined]
    disabled = portability_pb2.ConfirmPortExecutionRequest(
        request_id=rid(),
        port_request_id=port_id,
        step=portability_pb2.EXECUTION_STEP_DONOR_DISABLED,
        done_at=ts(lima(2026, 11, 24, 2, 30)),
    )
    handlers.clock.set(lima(2026, 11, 24, 2, 30))
    await handlers.perform(
        "test.disabled",
        lambda txn: portability.confirm_port_execution(
            txn, handlers.caller("movistar"), port_convert.execution_confirmation(disabled)
        ),
    )
    # Disabled on 24 November at 02:30: asked one second before 24 December, refused; at
    # midnight, two and a half hours before 720 hours would have allowed it, accepted.
    handlers.clock.set(lima(2026, 12, 23, 23, 59, 59))
    with pytest.raises(FailedPrecondition) as early:
        await _request(handlers, port_id)
    assert (early.value.reason, early.value.subject) == ("TOO_EARLY", "number")
    handlers.clock.set(lima(2026, 12, 24))
    asked = await _request(handlers, port_id)
    handlers.clock.set(lima(2026, 12, 24, 10, 0))
    suspension = handlers.flow("suspension").handler  # type: ignore[attr-defined]
    ref = convert.suspension_ref(suspension_pb2.ConfirmSuspensionRequest(suspension_id=asked["id"]))
    await handlers.perform(
        "test.suspended",
        lambda txn: suspension.confirm_suspension(txn, handlers.caller("claro"), ref),
    )
    row, _ = await _state(handlers, asked["id"])
    # Suspended on 24 December at 10:00: its 30th day is 22 January, over by 23 January 00:00.
    assert row["suspension_ends_at"] == lima(2027, 1, 23)
    handlers.clock.set(lima(2027, 1, 21, 23, 59, 59))
    await handlers.core.settle()
    row, _ = await _state(handlers, asked["id"])
    assert row["state"] == "suspended"
    await handlers.advance(timedelta(seconds=1))  # the 30th day begins: 24 hours to reactivate
    row, records = await _state(handlers, asked["id"])
    assert (row["state"], row["reactivation_deadline"]) == ("reactivation_due", lima(2027, 1, 23))
    handlers.clock.set(lima(2027, 1, 22, 23, 59, 59))
    await handlers.core.settle()
    assert (await _state(handlers, asked["id"]))[1] == []
    await handlers.advance(timedelta(seconds=1))
    assert (await _state(handlers, asked["id"]))[1] == [("claro", 15)]
    with pytest.raises(AlreadyExists):
        await _request(handlers, port_id)


async def _disabled(handlers: Handlers, number: str) -> str:
    """A port of `number` whose donor confirmed the disabling at its execution."""
    port_id = await port_through_handlers(handlers, "claro", "movistar", [block(number)])
    portability = handlers.flow("portability").handler  # type: ignore[attr-defined]
    disabled = portability_pb2.ConfirmPortExecutionRequest(
        request_id=rid(),
        port_request_id=port_id,
        step=portability_pb2.EXECUTION_STEP_DONOR_DISABLED,
    )
    await handlers.perform(
        "test.disabled",
        lambda txn: portability.confirm_port_execution(
            txn, handlers.caller("movistar"), port_convert.execution_confirmation(disabled)
        ),
    )
    return port_id


async def _step(handlers: Handlers, method: str, operator: str, request: Any) -> Any:
    """A suspension handler's `method` called by `operator` at the clock's instant, before any
    deadline falling due at that instant fires."""
    handler = handlers.flow("suspension").handler  # type: ignore[attr-defined]
    return await handlers.perform(
        method, lambda txn: getattr(handler, method)(txn, handlers.caller(operator), request)
    )


async def test_each_step_at_its_deadline_is_late_and_one_second_before_in_time(
    handlers: Handlers,
):
    """Infractions 13, 14 and 15: the suspension, the reactivation request and the reactivation
    one second before their limits leave no record (`early`); at the limit's instant, before its
    timer fires, each is recorded once (`late`)."""
    port_early = await _disabled(handlers, "940000001")
    port_late = await _disabled(handlers, "940000002")
    handlers.clock.set(lima(2026, 12, 28, 10))  # both may be suspended from Christmas on
    early = await _request(handlers, port_early)
    late = await _request(handlers, port_late, number="940000002")
    limit = early["suspend_deadline"]
    assert late["suspend_deadline"] == limit == lima(2026, 12, 31)

    for row, instant in ((early, limit - SECOND), (late, limit)):
        handlers.clock.set(instant)
        ref = convert.suspension_ref(
            suspension_pb2.ConfirmSuspensionRequest(suspension_id=row["id"])
        )
        await _step(handlers, "confirm_suspension", "claro", ref)
    paid = handlers.clock.now()
    limit = PERU.end_of_business_days(paid, 1)
    due = {}
    for row, instant in ((early, limit - SECOND), (late, limit)):
        handlers.clock.set(instant)
        ask = suspension_pb2.RequestReactivationRequest(suspension_id=row["id"], paid_at=ts(paid))
        asked = await _step(
            handlers, "request_reactivation", "movistar", convert.reactivation_request(ask)
        )
        due[row["id"]] = asked["reactivation_deadline"]
    assert due[late["id"]] == limit + timedelta(hours=24)
    for row, instant in ((early, due[early["id"]] - SECOND), (late, due[late["id"]])):
        handlers.clock.set(instant)
        ref = convert.suspension_ref(
            suspension_pb2.ConfirmReactivationRequest(suspension_id=row["id"])
        )
        assert (await _step(handlers, "confirm_reactivation", "claro", ref))["state"] == (
            "reactivated"
        )

    assert (await _state(handlers, early["id"]))[1] == []
    assert (await _state(handlers, late["id"]))[1] == [
        ("claro", 13),
        ("movistar", 14),
        ("claro", 15),
    ]
