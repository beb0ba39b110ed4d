"""The suspension flow's SQL (the case table's locking and updates are `CASES`)."""

from __future__ import annotations

from dataclasses import asdict

from asyncpg import Connection, Record

from npc.core.cases import CaseTable
from npc.flows.suspension.model import NewSuspension
from npc.flows.suspension.rules import FLOW, State

CASES = CaseTable(FLOW, "suspensions", "suspension", ("donor", "recipient"))


async def next_suspension_id(conn: Connection) -> str:
    """The next case id: ``SU0000000001``."""
    number: int = await conn.fetchval("SELECT nextval('suspension_seq')")
    return f"SU{number:010d}"


async def insert_suspension(conn: Connection, suspension: NewSuspension) -> Record:
    """Store a requested suspension; asyncpg's UniqueViolationError when the number has one."""
    values = asdict(suspension) | {"state": State.REQUESTED.value}
    columns = list(values)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(columns)))
    row: Record | None = await conn.fetchrow(
        f"INSERT INTO suspensions ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


async def open_suspension_of(conn: Connection, number: str) -> str:
    """The id of the suspension under way for a number ('' if none)."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM suspensions WHERE number = $1 AND state <> 'reactivated'", number
    )
    return found or ""
