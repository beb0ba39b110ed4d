"""Per-operator rate limits: a token bucket per caller in each server process.

An operator that goes over its rate gets RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying
when to retry; the others are not slowed. The buckets live in each process: with N workers behind
one address, an operator's total is at most N times the configured rate (set it accordingly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import Counter

from npc.core.errors import ResourceExhausted

THROTTLED = Counter(
    "npc_rpc_throttled_total",
    "Calls refused because the operator went over its rate.",
    ["operator"],
)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """`rate` calls per second per caller, with bursts of up to `burst` calls. rate 0: no limit."""

    rate: float
    burst: float
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def acquire(self, caller: str, now: float | None = None) -> None:
        """Take one call from `caller`'s bucket, or raise ResourceExhausted."""
        if self.rate <= 0:
            return
        instant = time.monotonic() if now is None else now
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(self.burst, instant)
        bucket.tokens = min(self.burst, bucket.tokens + (instant - bucket.updated) * self.rate)
        bucket.updated = instant
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        THROTTLED.labels(caller).inc()
        raise ResourceExhausted(
            f"{caller} is over its limit of {self.rate:g} calls per second; retry later",
            retry_after=(1 - bucket.tokens) / self.rate,
        )
