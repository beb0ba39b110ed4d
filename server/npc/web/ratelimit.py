"""A per-client fixed-window rate limit for the public lookups.

Counters live in Redis, so every server process behind the same port counts together; each key is
(bucket, window number, client address) and expires on its own. When Redis does not answer, the
process counts in memory instead: the limit then holds per process rather than for the whole
cluster, which is weaker but never lets a lookup flood through unmetered. Windows are numbered
from the injected clock, so tests move through them with the fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from npc.core.clock import Clock

log = logging.getLogger(__name__)

# Redis is asked with a short leash: a lookup should not wait on a sick cache.
REDIS_TIMEOUT = 0.5


@dataclass(frozen=True)
class Verdict:
    """Whether one more request is allowed, and when the current window ends (seconds)."""

    allowed: bool
    count: int
    retry_after: int


class RateLimiter:
    """Counts requests per (bucket, client) in fixed windows of `window`, allowing `limit`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        clock: Clock,
        *,
        limit: int,
        window: timedelta,
    ) -> None:
        if limit < 1 or window.total_seconds() < 1:
            raise ValueError("a rate limit needs at least one request per window of 1 s or more")
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self.limit = limit
        self.window = window
        self._local: dict[str, tuple[int, int]] = {}  # key -> (window number, count)
        self._warned_window = -1

    async def hit(self, bucket: str, client: str) -> Verdict:
        """Count one request of `client` in `bucket` and judge it."""
        seconds = self.window.total_seconds()
        now = self.clock.now().timestamp()
        number = int(now // seconds)
        retry_after = max(1, math.ceil((number + 1) * seconds - now))
        key = f"{self.prefix}:web:ratelimit:{bucket}:{number}:{client}"
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                pipe = self.redis.pipeline(transaction=True)
                pipe.incr(key)
                pipe.expire(key, int(seconds) * 2 + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            if self._warned_window != number:
                self._warned_window = number
                log.warning("rate limit counted in memory: Redis unavailable (%s)", exc)
            count = self._count_locally(key, number)
        return Verdict(int(count) <= self.limit, int(count), retry_after)

    def _count_locally(self, key: str, number: int) -> int:
        if len(self._local) > 10_000:
            self._local = {k: v for k, v in self._local.items() if v[0] >= number}
        _, count = self._local.get(key, (number, 0))
        self._local[key] = (number, count + 1)
        return count + 1
