"""Holidays the regulator decrees at run time, applied by every process.

`decree` stores the change and appends a `calendar.holiday_decreed` broadcast in one
transaction: the log is the audit trail, and it is also how running servers learn of it. Every
process's event hub hands each new batch to `HolidayDecrees.on_events`, which reloads the decrees
from PostgreSQL when the batch holds one; a process starting loads them before serving. The log
rather than a LISTEN/NOTIFY or a poll: every process already follows it in order and durably, so
a process that was down or cut off catches up with the rest of the log, and no new channel or
timer is needed. Deadlines already stored keep their instants; only the ones computed afterwards
see the new calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from npc.core.calendar import CALENDARS, BusinessCalendar, calendar_for
from npc.core.events import CLEARINGHOUSE, LoggedEvent
from npc.store.database import Database, Txn

HOLIDAY_DECREED = "calendar.holiday_decreed"


def calendar_flow(country: str) -> str:
    """The log's flow for one jurisdiction's calendar (`calendar_pe`): a flow per country, so a
    decree reaches only the operators and the regulator of its country, as every other flow."""
    return f"calendar_{country.lower()}"


# Longest holiday name accepted, in characters.
NAME_LIMIT = 100


class DecreeRefused(ValueError):
    """The decree would change nothing: the date already is (or is not) a holiday."""


async def decrees_of(conn: asyncpg.Connection) -> dict[str, dict[date, str | None]]:
    """Every stored decree by country: date -> name (None: the package's holiday removed)."""
    found: dict[str, dict[date, str | None]] = {country: {} for country in CALENDARS}
    for row in await conn.fetch("SELECT country, day, name FROM decreed_holidays"):
        found.setdefault(row["country"], {})[row["day"]] = row["name"]
    return found


async def load(db: Database) -> None:
    """Apply the stored decrees to every calendar of this process."""
    async with db.pool.acquire() as conn:
        decrees = await decrees_of(conn)
    for country, calendar in CALENDARS.items():
        calendar.apply_decrees(decrees.get(country, {}))


async def decree(
    db: Database, country: str, day: date, name: str | None, *, now: datetime
) -> str | None:
    """Make `day` a holiday of `country` called `name`, or (None) not a holiday; return the
    holiday's name before the change. Raises DecreeRefused when nothing would change."""
    shared = calendar_for(country)
    # A copy: what this process's calendars say changes only when the log says so.
    calendar = BusinessCalendar(shared.country, shared.timezone)
    async with db.transaction("admin.decree_holiday", now) as txn:
        # One decree at a time per country: the check below reads what the last one left.
        await txn.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"holidays:{country}")
        calendar.apply_decrees((await decrees_of(txn.conn)).get(country, {}))
        before = calendar.holiday_name(day)
        if name is not None and before is not None:
            raise DecreeRefused(f"{day} is already a holiday of {country}: {before}")
        if name is None and before is None:
            raise DecreeRefused(f"{day} is not a holiday of {country}")
        await _store(txn, country, day, name, calendar.is_holiday_by_package(day))
        emit_decreed(txn, country, day, name, before)
    return before


async def _store(txn: Txn, country: str, day: date, name: str | None, by_package: bool) -> None:
    """Write the decree; a decreed holiday taken back needs no row (the package has none)."""
    if name is None and not by_package:
        await txn.conn.execute(
            "DELETE FROM decreed_holidays WHERE country = $1 AND day = $2", country, day
        )
        return
    await txn.conn.execute(
        """INSERT INTO decreed_holidays (country, day, name, decreed_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (country, day) DO UPDATE SET name = EXCLUDED.name,
               decreed_at = EXCLUDED.decreed_at""",
        country,
        day,
        name,
        txn.now,
    )


def emit_decreed(txn: Txn, country: str, day: date, name: str | None, before: str | None) -> None:
    """Tell everyone, and the audit trail, that a date's holiday changed."""
    txn.emit(
        calendar_flow(country),
        HOLIDAY_DECREED,
        case_id=None,
        sender=CLEARINGHOUSE,
        broadcast=True,
        payload={
            "country": country,
            "date": day.isoformat(),
            "holiday": name is not None,
            "name": name if name is not None else before,
        },
    )


class HolidayDecrees:
    """Keeps this process's calendars current with the decrees the log announces."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # A reload that failed (PostgreSQL away) is tried again with the next batch of the log.
        self._stale = False

    async def load(self) -> None:
        """Apply the stored decrees (at start, before anything computes a deadline)."""
        await load(self.db)

    async def on_events(self, events: Sequence[LoggedEvent]) -> None:
        """Reload the decrees when a batch of the log holds one (an event hub hook)."""
        if self._stale or any(event.type == HOLIDAY_DECREED for event in events):
            self._stale = True
            await load(self.db)  # a failure is logged by the hub, which goes on delivering
            self._stale = False
