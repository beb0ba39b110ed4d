"""The sampled gauges on real PostgreSQL and Redis: the oldest overdue deadline on every pass,
the counts that grow with the backlog on slow passes only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from npc.core.clock import FakeClock
from npc.core.sampler import Sampler
from npc.store.database import Database
from tests.conftest import DEFAULT_START


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
async def sampled(database_url, redis_server):
    db = await Database.connect(database_url, min_size=1, max_size=4)
    redis = aioredis.Redis.from_url(redis_server.url)
    clock = FakeClock(DEFAULT_START)
    yield db, Sampler(db, redis, clock), clock
    await redis.aclose()
    await db.close()


async def test_counts_on_slow_passes_and_the_oldest_overdue_on_every_pass(sampled):
    db, sampler, clock = sampled
    now = clock.now()
    async with db.transaction("test", now) as txn:
        for case in ("c1", "c2", "c3"):
            txn.set_deadline("sampled_a", "answer", case, now + timedelta(minutes=5), "r")
        txn.set_deadline("sampled_a", "confirm", "c1", now + timedelta(hours=1), "r")
        txn.set_deadline("sampled_b", "answer", "x1", now + timedelta(minutes=1), "r")
        txn.set_deadline("sampled_b", "answer", "x2", now + timedelta(minutes=2), "r")
    async with db.transaction("test", now) as txn:
        txn.cancel_deadlines("sampled_b", "x2")

    await sampler.sample()  # a slow pass: every count
    assert _gauge("npc_deadlines_pending", flow="sampled_a", kind="answer") == 3
    assert _gauge("npc_deadlines_pending", flow="sampled_a", kind="confirm") == 1
    assert _gauge("npc_deadlines_pending", flow="sampled_b", kind="answer") == 1
    assert _gauge("npc_cases_open", flow="sampled_a") == 3  # c1 counts once for two deadlines
    assert _gauge("npc_cases_open", flow="sampled_b") == 1
    assert _gauge("npc_deadline_oldest_overdue_seconds") == 0.0

    async with db.transaction("test", now) as txn:
        txn.cancel_deadlines("sampled_a", "c3")
    clock.advance(timedelta(minutes=3))
    await sampler._pass(slow=False)
    # The earliest pending deadline (x1, due a minute in) is two minutes overdue...
    assert _gauge("npc_deadline_oldest_overdue_seconds") == 120.0
    # ...while the counts wait for the next slow pass.
    assert _gauge("npc_deadlines_pending", flow="sampled_a", kind="answer") == 3
    await sampler._pass(slow=True)
    assert _gauge("npc_deadlines_pending", flow="sampled_a", kind="answer") == 2
    assert _gauge("npc_cases_open", flow="sampled_a") == 2

    async with db.transaction("test", clock.now()) as txn:
        txn.cancel_deadlines("sampled_b", "x1")
    await sampler._pass(slow=True)
    # A flow without pending deadlines leaves no stale series behind.
    assert _gauge("npc_deadlines_pending", flow="sampled_b", kind="answer") is None
    assert _gauge("npc_cases_open", flow="sampled_b") is None
    assert _gauge("npc_deadline_oldest_overdue_seconds") == 0.0
