"""The event loop's lag: a loop kept busy shows in `npc_event_loop_lag_seconds`."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from npc.core.loop_lag import LoopLag


def _lag() -> tuple[float, float, float]:
    """The histogram's count, sum, and count of wake-ups later than 0.1 s."""
    count = REGISTRY.get_sample_value("npc_event_loop_lag_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("npc_event_loop_lag_seconds_sum") or 0.0
    within = REGISTRY.get_sample_value("npc_event_loop_lag_seconds_bucket", {"le": "0.1"}) or 0.0
    return count, total, count - within


async def test_work_that_holds_the_loop_shows_as_lag() -> None:
    probe = asyncio.ensure_future(LoopLag(interval=0.01).run())
    try:
        await asyncio.sleep(0.05)  # a few wake-ups on an idle loop
        count, total, late = _lag()
        assert count >= 1
        # A callback that holds the loop for 0.3 s, as a burst of commands does.
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        await asyncio.sleep(0.05)
        count_after, total_after, late_after = _lag()
    finally:
        probe.cancel()
    assert count_after > count
    assert total_after - total >= 0.25
    assert late_after - late >= 1  # one wake-up at least 0.25 s late
