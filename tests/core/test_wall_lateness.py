"""Deadline lateness is measured in wall seconds whatever the clock: the accelerated clock of
demos and benchmarks must not multiply it (at 60x, 17 ms of real delay read as a second)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from npc.core.clock import SharedClock, wall_seconds_since
from npc.core.deadlines import DEADLINE_LATENESS, Deadline
from npc.core.runtime import Core
from npc.embedded import EmbeddedRedis
from npc.store.database import Database, Txn
from npc_tools.demo import DemoClock
from tests.conftest import DEFAULT_START


@pytest.fixture
async def fast_core(database_url: str, redis_server: EmbeddedRedis) -> AsyncIterator[Core]:
    """A core on a clock 60 times faster than the wall clock (NPC_CLOCK's)."""
    clock = SharedClock(DEFAULT_START, time.time(), 60.0)
    db = await Database.connect(database_url, min_size=1, max_size=4)
    core = Core(db, aioredis.Redis.from_url(redis_server.url), clock, redis_prefix="lateness")
    await core.start(background=False)
    try:
        yield core
    finally:
        await core.stop()
        await core.redis.aclose()
        await db.close()


def observed(flow: str) -> tuple[float, float]:
    """(count, sum) of the lateness histogram of `flow`."""
    samples = {
        sample.name: sample.value
        for family in DEADLINE_LATENESS.collect()
        for sample in family.samples
        if sample.labels.get("flow") == flow
    }
    name = "npc_deadline_lateness_seconds"
    return samples.get(f"{name}_count", 0.0), samples.get(f"{name}_sum", 0.0)


async def test_lateness_on_an_accelerated_clock_is_in_wall_seconds(fast_core: Core) -> None:
    async def handler(txn: Txn, deadline: Deadline) -> None:
        pass

    fast_core.deadlines.register("lateness", "tick", handler)
    # Due two simulated minutes ago: two wall seconds at 60x (the clock's seconds would say 120).
    due = fast_core.clock.now() - timedelta(minutes=2)
    async with fast_core.db.transaction("test", fast_core.clock.now()) as txn:
        txn.set_deadline("lateness", "tick", "case1", due, "test rule")
    count, total = observed("lateness")
    assert await fast_core.deadlines.fire_due() == 1
    new_count, new_total = observed("lateness")
    assert new_count == count + 1
    # 2 s plus the firing's own wall time; generous for a slow shared machine, far below 120.
    assert 1.9 <= new_total - total < 20


def test_an_instant_a_demo_jump_skipped_fell_due_at_the_jump() -> None:
    clock = DemoClock(DEFAULT_START, speed=60)
    start = clock.now()
    skipped = start + timedelta(hours=3)
    clock.jump_to(start + timedelta(hours=18))
    # Reached at the jump, an instant ago; the clock's seconds since it are 15 hours.
    assert 0 <= wall_seconds_since(clock, skipped) < 5
    before = start - timedelta(minutes=1)  # a simulated minute before the jump left: 1 s
    assert 1 <= wall_seconds_since(clock, before) < 6
