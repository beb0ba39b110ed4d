"""Whether this process can serve: the truth behind gRPC health and `/healthz`.

A supervised loop probes PostgreSQL every `period` seconds on a connection of its own (outside the
pool, so a pool busy with calls is not mistaken for an unreachable server), each probe bounded by
`timeout`; the probe reads the oldest overdue deadline, which proves the storage answers queries.
Redis is pinged alongside: without it every path falls back to PostgreSQL, so it only degrades.

The process serves while PostgreSQL answers and no background loop is dead; listeners (the gRPC
health service) hear each change of that verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Gauge

from npc.core.clock import Clock
from npc.core.deadlines import oldest_overdue_seconds
from npc.core.supervision import LoopState, Supervisor, passed
from npc.store.database import Database

log = logging.getLogger(__name__)

SERVING = Gauge(
    "npc_serving", "1 while this process reports SERVING (PostgreSQL answers, no loop is dead)."
)

ServingListener = Callable[[bool], Awaitable[None]]


class HealthMonitor:
    """Probes the storage periodically and judges whether this process serves."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        clock: Clock,
        supervisor: Supervisor,
        *,
        period: float = 1.0,
        timeout: float = 2.0,
        overdue_alarm: float = 60.0,
    ) -> None:
        self.db = db
        self.redis = redis
        self.clock = clock
        self.supervisor = supervisor
        self.period = period
        self.timeout = timeout
        # Past this (domain seconds) the oldest overdue deadline makes the report "degraded".
        self.overdue_alarm = overdue_alarm
        self.postgres_error: str | None = "not probed yet"
        self.redis_error: str | None = "not probed yet"
        self.oldest_overdue: float | None = None
        self.probed_at: float | None = None
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._listeners: list[ServingListener] = []
        self._published: bool | None = None
        supervisor.on_death(self._loop_died)

    # ------------------------------------------------------------------ verdict

    @property
    def serving(self) -> bool:
        """PostgreSQL answered the last probe and no background loop is dead."""
        return self.postgres_error is None and not self.supervisor.dead

    def report(self) -> dict[str, Any]:
        """The facts behind the verdict, for `/healthz`."""
        loops = self.supervisor.report()
        overdue = self.oldest_overdue
        if not self.serving:
            status = "unavailable"
        elif (
            self.redis_error is not None
            or any(loop["failing"] for loop in loops.values())
            or (overdue is not None and overdue > self.overdue_alarm)
        ):
            status = "degraded"
        else:
            status = "ok"
        return {
            "status": status,
            "serving": self.serving,
            "checks": {
                "postgres": "ok"
                if self.postgres_error is None
                else f"error: {self.postgres_error}",
                "redis": "ok" if self.redis_error is None else f"degraded: {self.redis_error}",
            },
            "oldest_overdue_deadline_seconds": overdue,
            "probed_seconds_ago": (
                None if self.probed_at is None else round(time.monotonic() - self.probed_at, 3)
            ),
            "dead_loops": [state.name for state in self.supervisor.dead],
            "loops": loops,
        }

    def on_change(self, listener: ServingListener) -> None:
        """Call `listener(serving)` now (from the probe loop) and whenever the verdict changes."""
        self._listeners.append(listener)
        self._published = None
        self._changed.set()

    def clear_listeners(self) -> None:
        """Stop telling anyone (the server is stopping and says NOT_SERVING itself)."""
        self._listeners.clear()

    # ------------------------------------------------------------------ probing

    async def probe(self) -> None:
        """Probe PostgreSQL and Redis once (each within `timeout` seconds)."""
        async with self._lock:
            await asyncio.gather(self._probe_postgres(), self._probe_redis())
            self.probed_at = time.monotonic()

    async def fresh(self) -> None:
        """Probe now unless the loop did within the last two periods (it may not run: tests
        without background loops, or a loop restarting)."""
        if self.probed_at is None or time.monotonic() - self.probed_at > 2 * self.period:
            await self.probe()

    async def _probe_postgres(self) -> None:
        was = self.postgres_error
        try:
            async with asyncio.timeout(self.timeout):
                self.oldest_overdue = await self._read_overdue()
            self.postgres_error = None
        except Exception as exc:  # whatever stops the probe, PostgreSQL is not answering
            self.postgres_error = type(exc).__name__
            self._drop_connection()
            if was is None:
                log.warning("PostgreSQL unreachable (%s: %s)", type(exc).__name__, exc)
            return
        if was is not None and was != "not probed yet":
            log.info("PostgreSQL reachable again")
            self.supervisor.retry_now()  # the loops backing off need not wait any longer

    async def _read_overdue(self) -> float:
        if self.db.dsn is None:  # a database opened on a pool of its own: probe through it
            async with self.db.pool.acquire() as conn:
                return await oldest_overdue_seconds(conn, self.clock.now())
        if self._conn is not None and not self._conn.is_closed():
            try:
                return await oldest_overdue_seconds(self._conn, self.clock.now())
            except Exception:
                # A restart or a terminated session breaks this connection, not PostgreSQL:
                # only a fresh connection failing says it is unreachable.
                self._drop_connection()
        try:
            return await self._read_on_fresh_connection()
        except ConnectionRefusedError:
            raise  # nothing listens: PostgreSQL is down, asking again would not help
        except Exception:
            # A session terminated while it was being opened (pg_terminate_backend sweeping
            # every session) is not an unreachable server either: one more fresh connection
            # decides, within the same probe timeout.
            self._drop_connection()
            return await self._read_on_fresh_connection()

    async def _read_on_fresh_connection(self) -> float:
        self._conn = await asyncpg.connect(self.db.dsn)
        return await oldest_overdue_seconds(self._conn, self.clock.now())

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()  # its protocol state is unknown after a failure
            self._conn = None

    async def _probe_redis(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.ping()
            self.redis_error = None
        except Exception as exc:  # Redis only degrades the process: report, never raise
            self.redis_error = type(exc).__name__

    # ------------------------------------------------------------------ the loop

    def _loop_died(self, state: LoopState) -> None:
        self._changed.set()  # tell the listeners now, not at the next probe

    async def run(self) -> None:
        """Background loop: probe, tell listeners when the verdict changed, wait a period."""
        while True:
            self._changed.clear()
            await self.probe()
            passed()
            await self._publish()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period):
                    await self._changed.wait()

    async def _publish(self) -> None:
        serving = self.serving
        SERVING.set(1 if serving else 0)
        if serving == self._published:
            return
        if self._published is not None or not serving:
            log.warning(
                "health: %s (postgres: %s, dead loops: %s)",
                "SERVING" if serving else "NOT_SERVING",
                self.postgres_error or "ok",
                ", ".join(s.name for s in self.supervisor.dead) or "none",
            )
        self._published = serving
        for listener in list(self._listeners):
            await listener(serving)

    async def close(self) -> None:
        """Close the probe's connection."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), self.timeout)
            self._conn = None
