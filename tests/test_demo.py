"""The demo's accelerated clock and the simulator's change-window arithmetic."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from npc.core.clock import Clock
from npc_clients.simulator import ChangeWindow, Delay, Market, OperatorProfile
from npc_tools.demo import DemoClock, demo_start, scaled_profile

LIMA = ZoneInfo("America/Lima")


def lima(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LIMA).astimezone(UTC)


def test_demo_clock_satisfies_the_clock_protocol() -> None:
    clock: Clock = DemoClock(lima(2026, 11, 23, 23, 59))
    assert clock.now().tzinfo is not None


async def test_demo_clock_runs_faster_than_the_wall() -> None:
    start = lima(2026, 11, 23, 23, 59)
    clock = DemoClock(start, speed=600)
    await asyncio.sleep(0.1)
    elapsed = (clock.now() - start).total_seconds()
    assert 50 <= elapsed <= 600  # about 0.1 s x 600; generous for slow machines


async def test_sleep_until_returns_at_the_accelerated_instant() -> None:
    clock = DemoClock(lima(2026, 11, 23, 23, 59), speed=600)
    target = clock.now() + timedelta(seconds=60)  # 0.1 wall seconds away
    started = time.monotonic()
    await asyncio.wait_for(clock.sleep_until(target, asyncio.Event()), 5)
    assert clock.now() >= target
    assert time.monotonic() - started < 2


async def test_sleep_until_wakes_on_wake_and_on_jumps() -> None:
    clock = DemoClock(lima(2026, 11, 23, 12, 0), speed=1)
    far = clock.now() + timedelta(hours=10)

    wake = asyncio.Event()
    sleeper = asyncio.ensure_future(clock.sleep_until(far, wake))
    await asyncio.sleep(0.01)
    wake.set()
    await asyncio.wait_for(sleeper, 1)

    sleeper = asyncio.ensure_future(clock.sleep_until(far, asyncio.Event()))
    await asyncio.sleep(0.01)
    assert not sleeper.done()
    clock.jump_to(far + timedelta(seconds=1))
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() >= far


def test_jumps_never_go_backwards() -> None:
    clock = DemoClock(lima(2026, 11, 23, 12, 0), speed=1)
    before = clock.now()
    clock.jump_to(before - timedelta(hours=1))
    assert clock.now() >= before


def test_demo_starts_a_minute_before_the_next_window() -> None:
    window = ChangeWindow()
    assert demo_start(lima(2026, 11, 23, 10, 0), window) == lima(2026, 11, 23, 23, 59)
    # Too late for tonight's lead-in: tomorrow night.
    assert demo_start(lima(2026, 11, 23, 23, 59, 30), window) == lima(2026, 11, 24, 23, 59)
    assert demo_start(lima(2026, 11, 24, 3, 0), window) == lima(2026, 11, 24, 23, 59)


def test_change_window_earliest_instant() -> None:
    window = ChangeWindow()  # 00:00-06:00 Lima
    limit = lima(2026, 11, 25, 6, 0)
    # Before the window: its opening.
    assert window.earliest(lima(2026, 11, 23, 23, 59, 30), limit) == lima(2026, 11, 24, 0, 0)
    # Inside it: the instant itself.
    inside = lima(2026, 11, 24, 2, 30)
    assert window.earliest(inside, limit) == inside
    # After it closed: the next night.
    assert window.earliest(lima(2026, 11, 24, 6, 0), limit) == lima(2026, 11, 25, 0, 0)
    # Nothing before the limit.
    assert window.earliest(lima(2026, 11, 25, 6, 0), limit) is None


def test_change_window_across_midnight() -> None:
    window = ChangeWindow(
        start=datetime(2000, 1, 1, 23, 0).time(), end=datetime(2000, 1, 1, 2, 0).time()
    )
    assert window.length == timedelta(hours=3)
    assert window.containing(lima(2026, 11, 24, 1, 0)) == (
        lima(2026, 11, 23, 23, 0),
        lima(2026, 11, 24, 2, 0),
    )
    assert window.containing(lima(2026, 11, 24, 2, 0)) is None
    assert window.next_opening(lima(2026, 11, 24, 2, 0)) == lima(2026, 11, 24, 23, 0)


def test_delays_stay_in_their_bounds() -> None:
    rng = random.Random(1)
    delay = Delay(0.3, 1.5, 0.1, 0.5)
    samples = [delay.sample(rng) for _ in range(1000)]
    assert min(samples) >= 0.1
    assert max(samples) <= 0.5


def test_faster_clocks_shorten_the_profile_delays() -> None:
    profile = OperatorProfile()
    assert scaled_profile(profile, 60) is profile
    fast = scaled_profile(profile, 600)
    assert fast.answer_delay.median == pytest.approx(profile.answer_delay.median / 10)
    assert fast.answer_delay.high == pytest.approx(profile.answer_delay.high / 10)
    assert fast.objection_rate == profile.objection_rate


async def test_market_keeps_exactly_the_requested_number_of_slots() -> None:
    market = Market(ports=2)
    assert market.reserve() and market.reserve()
    assert not market.reserve()
    market.release()  # a request that was rejected frees its slot
    assert market.reserve()
    market.completed()
    market.completed()
    assert market.done.is_set()
