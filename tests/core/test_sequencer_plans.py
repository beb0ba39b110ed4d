"""The sequencer's and the event hub's statements are planned for the log as it is, not as it
was when the process started: generic plans made while the log was small kept joining every
batch to a sequential scan of the whole log (a fifth of a core at saturation, and growing with
the log), and sorting one for every read of what follows the hub's head (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from npc.core.fanout import _FOLLOWING
from npc.core.sequencer import _POSITION
from npc.store.database import Database

# The statements as SQL-level prepared statements, whose plans EXPLAIN EXECUTE shows: PostgreSQL
# caches and chooses them as it does those asyncpg prepares through the protocol.
_PREPARE_POSITION = f"""
PREPARE npc_position_plan (bigint[], bigint[], bytea[], bigint, bigint, bytea, integer, bigint)
AS {_POSITION}"""
_EXPLAIN_POSITION = (
    "EXPLAIN EXECUTE npc_position_plan("
    "ARRAY[1, 2, 3], ARRAY[1, 2, 3], ARRAY['\\x01', '\\x02', '\\x03']::bytea[], 0, 3, '\\x03',"
    " 2000, 0)"
)
_PREPARE_FOLLOWING = f"PREPARE npc_following_plan (bigint) AS {_FOLLOWING}"
_EXPLAIN_FOLLOWING = "EXPLAIN EXECUTE npc_following_plan(0)"

# Past the five plans made for their arguments, after which PostgreSQL may keep a generic one.
_EXECUTIONS = 10


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(
        database_url, min_size=1, max_size=1, sequencing=1, log_reads=1
    )
    try:
        yield database
    finally:
        await database.close()


async def _log(conn: asyncpg.Connection, events: int, *, positioned: bool = False) -> None:
    await conn.execute(
        "INSERT INTO events (occurred_at, flow, type, sender, payload)"
        " SELECT now(), 'test', 'test.logged', 'claro', '{\"n\": 1}'"
        " FROM generate_series(1, $1)",
        events,
    )
    if positioned:  # as the sequencer would (the log's guard allows only this update)
        await conn.execute("UPDATE events SET position = id, hash = '\\x00' WHERE position IS NULL")


async def _plan(conn: asyncpg.Connection, explain: str) -> str:
    return "\n".join(row[0] for row in await conn.fetch(explain))


@dataclass(frozen=True)
class _Statement:
    """A statement of the log's connections, and what it should use on a log grown large."""

    prepare: str
    explain: str
    # Its read is of positioned events (the hub's) rather than of events waiting for one.
    positioned: bool
    index: str
    connections: Callable[[Database], Database]


_STATEMENTS = {
    "the sequencer's positioning": _Statement(
        _PREPARE_POSITION, _EXPLAIN_POSITION, False, "events_pkey", Database.sequencing
    ),
    "the hub's read of what follows its head": _Statement(
        _PREPARE_FOLLOWING, _EXPLAIN_FOLLOWING, True, "events_position", Database.log_reads
    ),
}


@pytest.mark.parametrize("name", list(_STATEMENTS))
async def test_a_statement_of_the_log_uses_its_index_once_the_log_has_grown(
    db: Database, name: str
) -> None:
    """Run the statement often on a ten-event log, on a command connection and on the one it
    runs on, grow the log to 50,010 events and compare the plans each then uses."""
    statement = _STATEMENTS[name]
    async with (
        db.pool.acquire() as pooled,
        statement.connections(db).pool.acquire() as planned_afresh,
    ):
        await _log(pooled, 10, positioned=statement.positioned)
        for conn in (pooled, planned_afresh):
            await conn.execute(statement.prepare)
            for _ in range(_EXECUTIONS):
                await _plan(conn, statement.explain)
        await _log(pooled, 50_000, positioned=statement.positioned)
        kept = await _plan(pooled, statement.explain)
        fresh = await _plan(planned_afresh, statement.explain)
    # What a command connection keeps: the plan of a ten-event log, which reads the whole log
    # each time. Shown so that this test fails if PostgreSQL stops keeping it, rather than pass
    # without showing anything.
    assert "Seq Scan on events" in kept
    assert "Seq Scan on events" not in fresh
    assert f"Index Scan using {statement.index} on events" in fresh


async def test_only_the_log_s_connections_plan_every_statement_afresh(db: Database) -> None:
    """Planning each time costs little for the sequencer's and the hub's few statements, but
    would for every command's: the other pools keep PostgreSQL's default."""
    async with (
        db.pool.acquire() as pooled,
        db.sequencing().pool.acquire() as sequencing,
        db.log_reads().pool.acquire() as hub,
    ):
        assert await pooled.fetchval("SHOW plan_cache_mode") == "auto"
        for conn in (sequencing, hub):
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            assert await conn.fetchval("SHOW jit") == "off"
