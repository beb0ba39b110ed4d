"""The sequencer's statements are planned for the log as it is, not as it was when the process
started: a generic plan made while the log was small kept joining every batch to a sequential
scan of the whole log (a fifth of a core at saturation, and growing with the log; issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from npc.core.sequencer import _POSITION
from npc.store.database import Database

# `_POSITION` as an SQL-level prepared statement, whose plans EXPLAIN EXECUTE shows: PostgreSQL
# caches and chooses them as it does those asyncpg prepares through the protocol.
_PREPARE = f"""
PREPARE npc_position_plan (bigint[], bigint[], bytea[], bigint, bigint, bytea, integer, bigint)
AS {_POSITION}"""
_EXPLAIN = (
    "EXPLAIN EXECUTE npc_position_plan("
    "ARRAY[1, 2, 3], ARRAY[1, 2, 3], ARRAY['\\x01', '\\x02', '\\x03']::bytea[], 0, 3, '\\x03',"
    " 2000, 0)"
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(
        database_url, min_size=1, max_size=1, sequencing=1, log_reads=1
    )
    try:
        yield database
    finally:
        await database.close()


async def _log(conn: asyncpg.Connection, events: int) -> None:
    await conn.execute(
        "INSERT INTO events (occurred_at, flow, type, sender, payload)"
        " SELECT now(), 'test', 'test.logged', 'claro', '{\"n\": 1}'"
        " FROM generate_series(1, $1)",
        events,
    )


async def _plan(conn: asyncpg.Connection) -> str:
    return "\n".join(row[0] for row in await conn.fetch(_EXPLAIN))


async def test_the_positioning_statement_finds_its_batch_by_id_once_the_log_has_grown(
    db: Database,
) -> None:
    async with db.pool.acquire() as pooled, db.sequencing().pool.acquire() as sequencing:
        await _log(pooled, 10)
        for conn in (pooled, sequencing):
            await conn.execute(_PREPARE)
            for _ in range(10):  # past the five custom plans after which one may be kept
                await _plan(conn)
        await _log(pooled, 50_000)
        kept, fresh = await _plan(pooled), await _plan(sequencing)
    # What a connection of the commands' pool keeps: the plan of a ten-event log, which reads
    # the whole log for every batch. Shown so that this test fails if PostgreSQL stops keeping
    # it, rather than pass without showing anything.
    assert "Seq Scan on events" in kept
    assert "Seq Scan on events" not in fresh
    assert "Index Scan using events_pkey on events" in fresh


async def test_the_hub_reads_what_follows_its_head_by_position_once_the_log_has_grown(
    db: Database,
) -> None:
    """The hub's refresh (`EventHub.refresh`): a kept plan sorted a sequential scan of the log."""
    query = (
        "EXPLAIN EXECUTE npc_follow_plan(0)",
        "PREPARE npc_follow_plan (bigint) AS SELECT * FROM events WHERE position > $1"
        " ORDER BY position LIMIT 2000",
    )
    async with db.pool.acquire() as pooled, db.log_reads().pool.acquire() as hub:
        await _log(pooled, 10)
        await pooled.execute("UPDATE events SET position = id, hash = '\\x00'")
        plans: dict[asyncpg.Connection, str] = {}
        for conn in (pooled, hub):
            await conn.execute(query[1])
            for _ in range(10):
                await conn.fetch(query[0])
        await _log(pooled, 50_000)
        await pooled.execute(
            "UPDATE events SET position = id, hash = '\\x00' WHERE position IS NULL"
        )
        for conn in (pooled, hub):
            plans[conn] = "\n".join(row[0] for row in await conn.fetch(query[0]))
    assert "Seq Scan on events" in plans[pooled]  # what a kept plan does, shown as above
    assert "Seq Scan on events" not in plans[hub]
    assert "Index Scan using events_position on events" in plans[hub]


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
