"""Art. 30 terms of a return for lack of consent, through the handlers: the recipient's 5 business
days run from the notification the clearinghouse itself sends (never from an instant the donor
types), across a weekend and a holiday; the disabling instant falls within them (or, once no
change window opens before their end, within the next window); a denial names its typed reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.errors import InvalidArgument, OutOfRange
from npc.flows.registry import convert
from npc.flows.registry.rules import answered_late, disabling_limit
from npc.v1 import registry_pb2 as pb
from tests.helpers import Handlers, block, port_through_handlers, rid, ts

LIMA = timedelta(hours=5)  # UTC-5 all year


def lima(year: int, month: int, dom: int, hour: int = 0, minute: int = 0, second: int = 0):
    """A Lima wall time as its UTC instant."""
    return datetime(year, month, dom, hour, minute, second, tzinfo=UTC) + LIMA


# Notified Wednesday 2 December 2026 at 10:00: Thursday 3, Friday 4, (the weekend), Monday 7,
# (Tuesday 8 and Wednesday 9 are holidays: the Immaculate Conception, the Battle of Ayacucho),
# Thursday 10 and Friday 11; the term ends when Saturday 12 begins.
NOTIFIED = lima(2026, 12, 2, 10, 0)
TERM_END = lima(2026, 12, 12)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(("answered_at", "late"), [(TERM_END - SECOND, False), (TERM_END, True)])
def test_an_answer_at_the_end_of_the_term_is_late(answered_at, late):
    assert answered_late(answered_at, TERM_END) is late


@pytest.mark.parametrize(
    ("next_window_end", "limit"),
    [
        (lima(2026, 12, 3, 6), TERM_END),  # windows open before the end: the term bounds it
        (lima(2026, 12, 12, 6), lima(2026, 12, 12, 6)),  # answered on the last day, or late
    ],
)
def test_the_disabling_comes_before_the_end_of_the_term_or_of_the_next_window(
    next_window_end, limit
):
    assert disabling_limit(TERM_END, next_window_end) == limit


@pytest.fixture
async def night(settings: Settings, clock: FakeClock):
    """The handlers with a change window from 23:00 to 03:00, across the midnight that ends
    the term, so that both sides of that instant lie in a window."""
    portability = replace(
        settings.portability, change_window_start=time(23), change_window_end=time(3)
    )
    house = Clearinghouse(replace(settings, portability=portability), clock)
    await house.start(listen=False)
    try:
        assert house.core is not None
        await house.core.settle()
        yield Handlers(house.core, clock)
    finally:
        await house.stop()


async def _ask(handlers: Handlers, port_id: str):
    consent = handlers.flow("registry").consent  # type: ignore[attr-defined]
    # A notified_at the donor might still send is no field any more: nothing it types counts.
    request = pb.RequestReturnRequest(
        request_id=rid(), port_request_id=port_id, resolution="RES-123-2026"
    )
    return await handlers.perform(
        "test.return",
        lambda txn: consent.request_return(
            txn, handlers.caller("movistar"), convert.request_return(request)
        ),
    )


async def _answer(handlers: Handlers, return_id: str, **fields):
    consent = handlers.flow("registry").consent  # type: ignore[attr-defined]
    request = pb.AnswerReturnRequest(request_id=rid(), return_id=return_id, **fields)
    return await handlers.perform(
        "test.answer",
        lambda txn: consent.answer_return(
            txn, handlers.caller("claro"), convert.answer_return(request)
        ),
    )


async def _records(handlers: Handlers, case_id: str):
    async with handlers.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, infraction FROM compliance_records WHERE case_id = $1", case_id
        )
    return [(r["operator_id"], r["infraction"]) for r in rows]


async def test_the_term_runs_from_the_clearinghouse_s_notice_and_bounds_the_disabling(
    night: Handlers,
):
    port_id = await port_through_handlers(night, "claro", "movistar", [block("940000001")])
    night.clock.set(NOTIFIED)
    asked = await _ask(night, port_id)
    assert (asked["notified_at"], asked["answer_deadline"]) == (NOTIFIED, TERM_END)
    async with night.core.db.pool.acquire() as conn:
        notice = await conn.fetchrow(
            "SELECT occurred_at, audience, payload FROM events"
            " WHERE type = 'registry.return.requested' AND case_id = $1",
            asked["id"],
        )
    assert (notice["occurred_at"], list(notice["audience"])) == (NOTIFIED, ["claro"])
    assert notice["payload"]["answer_deadline"] == TERM_END.isoformat()
    with pytest.raises(OutOfRange) as beyond:
        await _answer(night, asked["id"], accept=True, disable_at=ts(TERM_END))
    assert beyond.value.reason == "BEYOND_TERM"
    assert [v.field for v in beyond.value.violations] == ["disable_at"]
    accepted = await _answer(night, asked["id"], accept=True, disable_at=ts(TERM_END - SECOND))
    assert (accepted["state"], accepted["disable_at"]) == ("scheduled", TERM_END - SECOND)
    assert await _records(night, asked["id"]) == []


async def test_a_late_answer_is_recorded_and_may_only_name_the_next_window(handlers: Handlers):
    port_id = await port_through_handlers(handlers, "claro", "movistar", [block("940000001")])
    handlers.clock.set(NOTIFIED)
    asked = await _ask(handlers, port_id)
    handlers.clock.set(TERM_END - SECOND)
    await handlers.core.settle()
    assert await _records(handlers, asked["id"]) == []
    await handlers.advance(SECOND)
    assert await _records(handlers, asked["id"]) == [("claro", 30)]
    # Saturday 12 at 10:00: the next window is Sunday's, 00:00 to 06:00; Monday's is too far.
    await handlers.advance(timedelta(hours=10))
    with pytest.raises(OutOfRange) as beyond:
        await _answer(handlers, asked["id"], accept=True, disable_at=ts(lima(2026, 12, 14, 1)))
    assert beyond.value.reason == "BEYOND_TERM"
    accepted = await _answer(
        handlers, asked["id"], accept=True, disable_at=ts(lima(2026, 12, 13, 5, 59, 59))
    )
    assert accepted["state"] == "scheduled"
    assert await _records(handlers, asked["id"]) == [("claro", 30)]  # recorded once


async def test_a_denial_records_its_typed_reason(handlers: Handlers):
    port_id = await port_through_handlers(handlers, "claro", "movistar", [block("940000001")])
    asked = await _ask(handlers, port_id)
    with pytest.raises(InvalidArgument) as untyped:
        await _answer(handlers, asked["id"], accept=False, denial_reason="not final yet")
    assert [v.field for v in untyped.value.violations] == ["denial"]
    with pytest.raises(InvalidArgument) as unexplained:
        await _answer(handlers, asked["id"], accept=False, denial=pb.RETURN_DENIAL_REASON_OTHER)
    assert [v.field for v in unexplained.value.violations] == ["denial_reason"]
    denied = await _answer(
        handlers, asked["id"], accept=False, denial=pb.RETURN_DENIAL_REASON_RESOLUTION_NOT_FINAL
    )
    assert (denied["state"], denied["denial"], denied["denial_reason"]) == (
        "denied",
        "resolution_not_final",
        "",
    )
    assert convert.return_message(denied).denial == pb.RETURN_DENIAL_REASON_RESOLUTION_NOT_FINAL
