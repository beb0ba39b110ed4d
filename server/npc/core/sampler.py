"""Gauges sampled from the outside world: the PostgreSQL pool, Redis, and a few cheap counts.

Counters and histograms are updated where things happen; what only exists as a state (rows
waiting, connections in use, whether Redis answers) is sampled here on a fixed period. A pass
reads an index's first entry and small tables; the counts that grow with the backlog and the
registry are taken on every fourth pass. Each process samples on its own: the database-wide gauges (pending deadlines,
open cases, ported numbers) are the same in every process of a deployment, so dashboards take
their ``max`` across instances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Gauge, Histogram
from redis.exceptions import RedisError

from npc.core.clock import Clock
from npc.core.deadlines import oldest_overdue_seconds
from npc.core.numbers import ported_counts, range_holders
from npc.core.supervision import failed, passed
from npc.store.database import Database

log = logging.getLogger(__name__)

DB_POOL_CONNECTIONS = Gauge(
    "npc_db_pool_connections",
    "Connections of this process's PostgreSQL pool, by state (idle, in_use) and the pool's max.",
    ["state"],
)
DB_UP = Gauge("npc_db_up", "1 when this process's last PostgreSQL probe succeeded.")
REDIS_UP = Gauge("npc_redis_up", "1 when this process's last Redis PING succeeded.")
REDIS_PING_SECONDS = Histogram(
    "npc_redis_ping_seconds",
    "Round trip of the sampler's Redis PING.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
DEADLINES_PENDING = Gauge(
    "npc_deadlines_pending",
    "Deadlines neither fired nor cancelled, by flow and kind (database-wide).",
    ["flow", "kind"],
)
DEADLINE_OLDEST_OVERDUE = Gauge(
    "npc_deadline_oldest_overdue_seconds",
    "Age of the oldest pending deadline past its next attempt instant (0 when none is overdue).",
)
CASES_OPEN = Gauge(
    "npc_cases_open",
    "Cases with a running regulated clock (at least one pending deadline), by flow.",
    ["flow"],
)
PORTED_NUMBERS = Gauge(
    "npc_registry_ported_numbers",
    "Numbers served by an operator other than their range holder, by serving operator and service.",
    ["operator", "service"],
)
SAMPLE_SECONDS = Histogram(
    "npc_sampler_pass_seconds",
    "Duration of one sampling pass.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# Pending deadlines by (flow, kind), and open cases by flow (kind NULL). Two hash aggregates: a
# `count(DISTINCT case_id)` sorts every pending deadline (2 s with a million pending, spilled to
# disk; these 0.7 s).
_PENDING_COUNTS = """
SELECT flow, kind, count(*) AS n
FROM deadlines WHERE fired_at IS NULL AND cancelled_at IS NULL
GROUP BY flow, kind
UNION ALL
SELECT flow, NULL, count(*)
FROM (SELECT DISTINCT flow, case_id
      FROM deadlines WHERE fired_at IS NULL AND cancelled_at IS NULL) AS open_cases
GROUP BY flow
"""


def _replace(
    gauge: Gauge, values: dict[tuple[str, ...], float], known: Iterable[tuple[str, ...]] = ()
) -> None:
    """Set a labelled gauge to exactly `values`, and the `known` label sets missing from them to
    zero: other label sets that vanished are dropped, so a flow whose last deadline fired shows
    no stale count, and one known in advance shows 0 rather than nothing."""
    values = {**dict.fromkeys(known, 0.0), **values}
    for labels in set(gauge._metrics) - set(values):
        gauge.remove(*labels)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


class Sampler:
    """Samples the gauges every `period` seconds (and what grows with the market, the pending
    deadlines and the registry size, every `slow_every` passes)."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        clock: Clock,
        *,
        period: float = 15.0,
        slow_every: int = 4,
    ) -> None:
        self.db = db
        self.redis = redis
        self.clock = clock
        self.period = period
        self.slow_every = slow_every
        self._passes = 0
        # Label sets known in advance, sampled as 0 when nothing counts them.
        self._kinds: set[tuple[str, str]] = set()
        self._flows: set[tuple[str]] = set()
        # Passes never interleave: the last one to start writes the gauges last.
        self._lock = asyncio.Lock()

    def declare(self, flow: str, kinds: Iterable[str]) -> None:
        """`flow` and its deadline kinds: their gauges read 0, not nothing, when none pend."""
        self._flows.add((flow,))
        self._kinds.update((flow, str(kind)) for kind in kinds)

    def sample_pool(self) -> None:
        """The pool's connections: idle, in use, and the maximum it may open."""
        pool = self.db.pool
        size, idle = pool.get_size(), pool.get_idle_size()
        DB_POOL_CONNECTIONS.labels("idle").set(idle)
        DB_POOL_CONNECTIONS.labels("in_use").set(size - idle)
        DB_POOL_CONNECTIONS.labels("max").set(pool.get_max_size())

    async def sample_redis(self) -> None:
        """PING Redis: up or down, and how long it took."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(2):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            REDIS_UP.set(0)
            log.debug("redis ping failed: %s", exc)
            return
        REDIS_PING_SECONDS.observe(time.perf_counter() - started)
        REDIS_UP.set(1)

    async def sample_database(self, *, slow: bool) -> None:
        """The oldest overdue deadline (the first entry of the pending-deadline index) on every
        pass; on slow passes the counts that read every pending deadline (by flow and kind, and
        the open cases) and the registry size.

        The counts grow with the backlog: with a million deadlines pending they take PostgreSQL
        most of a second, enough to delay the deadlines and broadcasts due meanwhile, so they
        are taken four times less often, on one core.
        """
        async with self.db.pool.acquire() as conn:
            DEADLINE_OLDEST_OVERDUE.set(await oldest_overdue_seconds(conn, self.clock.now()))
            if slow:
                async with conn.transaction():
                    # One core, not all of them: a scan shared with parallel workers finishes
                    # sooner but takes every core from the commands meanwhile.
                    await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    rows = await conn.fetch(_PENDING_COUNTS)
                _replace(
                    DEADLINES_PENDING,
                    {(r["flow"], r["kind"]): r["n"] for r in rows if r["kind"] is not None},
                    self._kinds,
                )
                _replace(
                    CASES_OPEN,
                    {(r["flow"],): r["n"] for r in rows if r["kind"] is None},
                    self._flows,
                )
                ported = await ported_counts(conn)
                _replace(
                    PORTED_NUMBERS,
                    {(serving, service): n for serving, service, n in ported},
                    await range_holders(conn),
                )

    async def sample(self) -> None:
        """One full pass (every count, the registry size included)."""
        await self._pass(slow=True)

    async def _pass(self, *, slow: bool) -> None:
        async with self._lock:
            started = time.perf_counter()
            self.sample_pool()
            await self.sample_redis()
            try:
                await self.sample_database(slow=slow)
                DB_UP.set(1)
                passed()
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ) as exc:
                DB_UP.set(0)
                failed(exc)  # logged once per failure streak
            SAMPLE_SECONDS.observe(time.perf_counter() - started)

    async def run(self) -> None:
        """Background loop, under the process's supervisor (any other exception is its to log and
        recover from). The period paces an operational probe, not a regulated clock, so it is
        wall time: a scrape every 15 s wants fresh values whatever the domain clock says."""
        while True:
            self._passes += 1
            await self._pass(slow=(self._passes - 1) % self.slow_every == 0)
            await asyncio.sleep(self.period)
