"""The loops that deliver committed work (deadline scheduler, sequencer, event hub) have
connections of their own (`Database.background`): at saturation commands hold every pooled
connection and hundreds more wait for one, and a deadline or a broadcast queued behind them was
most of their lateness (issue 14)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from npc.core.clock import SharedClock
from npc.core.deadlines import Deadline
from npc.core.runtime import Core
from npc.embedded import EmbeddedRedis
from npc.store.database import Database, Txn
from tests.conftest import DEFAULT_START

POOLED = 2


@pytest.fixture
async def core(database_url: str, redis_server: EmbeddedRedis) -> AsyncIterator[Core]:
    """A core whose command pool is small enough to exhaust."""
    db = await Database.connect(database_url, min_size=1, max_size=POOLED, background=3)
    clock = SharedClock(DEFAULT_START, time.time(), 1.0)
    core = Core(db, aioredis.Redis.from_url(redis_server.url), clock, redis_prefix="background")
    await core.start(background=False)
    try:
        yield core
    finally:
        await core.stop()
        await core.redis.aclose()
        await db.close()


async def test_deadlines_fire_and_events_reach_the_hub_while_commands_hold_every_connection(
    core: Core,
) -> None:
    async def handler(txn: Txn, deadline: Deadline) -> None:
        txn.emit("background", "background.fired", case_id="c1", sender="npc", payload={})

    core.deadlines.register("background", "tick", handler)
    async with core.db.transaction("test", core.clock.now()) as txn:
        txn.set_deadline("background", "tick", "c1", core.clock.now() - timedelta(minutes=1), "r")
    head = core.hub.head
    held = [await core.db.pool.acquire() for _ in range(POOLED)]  # the commands' connections
    try:
        async with asyncio.timeout(20):  # sharing the pool, both would wait for ever
            assert await core.deadlines.fire_due() == 1
            await core.sequencer.catch_up()
    finally:
        for conn in held:
            await core.db.pool.release(conn)
    delivered = [e for e in core.hub.window if e.position > head]
    assert [e.type for e in delivered] == ["background.fired"]
