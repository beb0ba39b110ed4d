"""Art. 13 counted in calendar days of Lima: the 30 days before a suspension may be asked run from
the disabling date (not 720 hours from the disabling instant), and a suspension never outlasts
its 30th day (the recipient's 24 hours to reactivate end with it). Pure terms, then the handler
at each boundary across the December-January month end (Lima keeps UTC-5 all year)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


async def _request(handlers: Handlers, port_id: str):
    handler = handlers.flow("suspension").handler  # type: ignore[attr-defined]
    request = suspension_pb2.RequestSuspensionRequest(
        request_id=rid(),
        port_request_id=port_id,
        number="940000001",
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
