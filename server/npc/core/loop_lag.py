"""How late the process's event loop runs what is ready.

Everything of a server process shares one event loop: commands, deadline firings, the sequencer
and the streams. At saturation a callback that became ready (a PostgreSQL answer, a due
deadline) waits behind every other one the loop has queued, and that wait is much of a
deadline's lateness and a broadcast's latency (README, Benchmarks). A sleep that wakes late by
`x` seconds measures it: the loop had `x` seconds of other work queued when it was due.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

from npc.core.supervision import passed

LOOP_LAG = Histogram(
    "npc_event_loop_lag_seconds",
    "How much later than due the event loop woke a short sleep: how long ready work waited "
    "for the loop.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class LoopLag:
    """Wakes every `interval` seconds and records how late it woke (`LOOP_LAG`)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval

    async def run(self) -> None:
        """Background loop, under the process's supervisor. Wall time on purpose: it measures
        the loop, not a regulated clock."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            LOOP_LAG.observe(max(0.0, loop.time() - due))
            passed()
