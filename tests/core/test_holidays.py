"""Holidays the regulator decrees at run time: pure calendar arithmetic with decrees applied, then
`npc admin holidays add|list|remove` against a running core, whose calendars follow the log (a
deadline computed after the decree uses it, one set before keeps its instant)."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays as holidays_package
import pytest

from npc.api.event_bodies.holidays import holiday_decreed
from npc.core import holidays
from npc.core.calendar import PERU, BusinessCalendar
from npc.flows.registry import convert
from npc.v1 import registry_pb2 as pb
from tests.helpers import Handlers, block, port_through_handlers, rid, run_npc

DECREED = date(2026, 12, 10)  # a Thursday
# Wednesday 2 December 2026, 10:00 Lima.
NOTIFIED = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _lima() -> BusinessCalendar:
    """A calendar of its own: decrees applied here never reach the process's shared ones."""
    return BusinessCalendar("PE", "America/Lima")


def test_a_decreed_holiday_is_skipped_and_a_removed_one_counted():
    calendar = _lima()
    # From Wednesday 2 December: 3, 4, 7, (8 and 9 are holidays), 10 and 11.
    assert calendar.add_business_days(date(2026, 12, 2), 5) == date(2026, 12, 11)
    calendar.apply_decrees({DECREED: "Feriado decretado", date(2026, 12, 9): None})
    assert calendar.holiday_name(DECREED) == "Feriado decretado"
    assert not calendar.is_holiday(date(2026, 12, 9)) and calendar.is_holiday_by_package(
        date(2026, 12, 9)
    )
    # Now 3, 4, 7, 9, (10 is decreed), 11.
    assert calendar.add_business_days(date(2026, 12, 2), 5) == date(2026, 12, 11)
    assert calendar.add_business_days(date(2026, 12, 2), 4) == date(2026, 12, 9)
    december = [(d, source) for d, _, source in calendar.holidays_in(2026) if d.month == 12]
    assert december == [
        (date(2026, 12, 8), "package"),
        (date(2026, 12, 9), "removed"),
        (DECREED, "decreed"),
        (date(2026, 12, 25), "package"),
    ]
    calendar.apply_decrees({})
    assert not calendar.is_holiday(DECREED) and calendar.is_holiday(date(2026, 12, 9))


def test_the_calendars_read_the_pinned_holidays_package():
    """The package's data changes between versions: the tests assert the pinned version's."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [d for d in project["project"]["dependencies"] if d.startswith("holidays")]
    assert pins == [f"holidays=={holidays_package.__version__}"]


@pytest.mark.parametrize(
    ("instant", "end"),
    [
        # 1 January 00:00 Lima is 05:00 UTC: one second before it is still 31 December there.
        # 31 December is the first day, 29 January the 30th.
        (datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC), datetime(2027, 1, 30, 5, 0, tzinfo=UTC)),
        (datetime(2027, 1, 1, 5, 0, tzinfo=UTC), datetime(2027, 1, 31, 5, 0, tzinfo=UTC)),
    ],
)
def test_calendar_days_count_lima_dates(instant, end):
    assert _lima().end_of_calendar_days(instant, 30) == end


async def _npc(handlers: Handlers, *args: str):
    """`npc admin holidays ARGS` as the command runs it (`run_npc`: its own connection and event
    loop, in a thread), then the server settles."""
    assert handlers.core.db.dsn is not None
    done = await run_npc("admin", "--database-url", handlers.core.db.dsn, "holidays", *args)
    await handlers.core.settle()  # the log reaches the hub, which reloads the decrees
    return done.returncode, done.stdout


async def _ask_return(handlers: Handlers, port_id: str):
    consent = handlers.flow("registry").consent  # type: ignore[attr-defined]
    request = pb.RequestReturnRequest(request_id=rid(), port_request_id=port_id, resolution="R-1")
    return await handlers.perform(
        "test.return",
        lambda txn: consent.request_return(
            txn, handlers.caller("movistar"), convert.request_return(request)
        ),
    )


async def _answer_due(handlers: Handlers, case_id: str) -> datetime:
    async with handlers.core.db.pool.acquire() as conn:
        due: datetime = await conn.fetchval(
            "SELECT due_at FROM deadlines WHERE case_id = $1 AND kind = 'return.answer'", case_id
        )
    return due


async def test_admin_decrees_a_holiday_that_running_servers_apply_to_new_deadlines(
    handlers: Handlers, restored_calendars: None
):
    first = await port_through_handlers(handlers, "claro", "movistar", [block("940000001")])
    second = await port_through_handlers(handlers, "claro", "movistar", [block("940000002")])
    handlers.clock.set(NOTIFIED)
    before = await _ask_return(handlers, first)
    end_of_friday = datetime(2026, 12, 12, 5, 0, tzinfo=UTC)
    assert before["answer_deadline"] == end_of_friday

    code, out = await _npc(handlers, "add", "PE", DECREED.isoformat(), "Feriado decretado")
    assert (code, out.strip()) == (0, "PE 2026-12-10: holiday Feriado decretado")
    assert PERU.holiday_name(DECREED) == "Feriado decretado"  # this process follows the log
    code, out = await _npc(handlers, "list", "PE", "--year", "2026")
    assert code == 0
    assert "2026-12-10  Feriado decretado  (decreed)" in out.splitlines()
    assert "2026-12-08  Immaculate Conception" in out.splitlines()

    after = await _ask_return(handlers, second)
    assert after["answer_deadline"] == end_of_friday + timedelta(days=3)  # Monday 14 ends it
    assert await _answer_due(handlers, before["id"]) == end_of_friday  # set before: kept
    assert await _answer_due(handlers, after["id"]) == end_of_friday + timedelta(days=3)

    code, out = await _npc(handlers, "remove", "PE", DECREED.isoformat())
    assert (code, out.strip()) == (0, "PE 2026-12-10: no longer a holiday (was Feriado decretado)")
    assert not PERU.is_holiday(DECREED)
    with pytest.raises(holidays.DecreeRefused):
        await holidays.decree(handlers.core.db, "PE", DECREED, None, now=NOTIFIED)
    async with handlers.core.db.pool.acquire() as conn:
        audit = await conn.fetch(
            "SELECT payload FROM events WHERE type = $1 ORDER BY position", holidays.HOLIDAY_DECREED
        )
        stored = await conn.fetchval("SELECT count(*) FROM decreed_holidays")
    assert [(e["payload"]["holiday"], e["payload"]["date"]) for e in audit] == [
        (True, "2026-12-10"),
        (False, "2026-12-10"),
    ]
    assert stored == 0
    body = holiday_decreed(audit[0]["payload"])  # what operators read on their streams
    assert (body.country, body.date.day, body.holiday, body.name) == (
        "PE",
        10,
        True,
        "Feriado decretado",
    )
