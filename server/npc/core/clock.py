"""Injected time. Flows never read the wall clock: they ask the core's clock.

`SystemClock` is the wall clock; `FakeClock` only moves when a test advances it, so a five-minute
SLA test takes milliseconds. `SharedClock` (NPC_CLOCK) is an accelerated clock for demos and
benchmarks that several processes compute alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current instant (always timezone-aware UTC)."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        ...

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return at `instant`, or earlier when `wake` is set."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the wall-clock instant in UTC."""
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Sleep until `instant` or until `wake` is set."""
        delay = (instant - self.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()


class FakeClock:
    """A clock that stands still until `advance` or `set` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """Return the fake instant."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to `instant` (never backwards) and wake sleepers."""
        if instant < self._now:
            raise ValueError("time does not go backwards")
        self._now = instant.astimezone(UTC)
        self._moved.set()
        self._moved = asyncio.Event()

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self.set(self._now + delta)

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Wait until the fake time reaches `instant` or `wake` is set."""
        while self._now < instant and not wake.is_set():
            moved = asyncio.ensure_future(self._moved.wait())
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
                woken.cancel()


def wall_seconds_since(clock: Clock, instant: datetime) -> float:
    """Wall-clock seconds since the clock showed `instant` (negative before it).

    Operational measures (lateness) are in real seconds whatever the clock: an accelerated
    clock's seconds are divided by its `speed`, and a clock that can jump answers itself
    (`wall_seconds_since` method). The wall and fake clocks count their own seconds.
    """
    own = getattr(clock, "wall_seconds_since", None)
    if callable(own):
        return float(own(instant))
    elapsed = (clock.now() - instant).total_seconds()
    speed = getattr(clock, "speed", None)
    if isinstance(speed, int | float) and speed > 0:
        return elapsed / float(speed)
    return elapsed


CLOCK_ENV = "NPC_CLOCK"


class SharedClock:
    """An accelerated clock every process computes identically: a demo and benchmark facility.

    Ports execute only in the nightly change window, so a benchmark that wants executions now runs
    the clearinghouse on simulated time. Several server processes (and the benchmark's clients)
    must then agree on the instant without talking to each other: each one computes

        now = start + (time.time() - epoch) * speed

    from the same specification `<start ISO 8601>@<wall epoch seconds>x<speed>`, e.g.
    `2026-11-24T04:59:00+00:00@1795000000.0x60`, passed in NPC_CLOCK. Production never sets it;
    `npc serve` uses it only when NPC_CLOCK is set explicitly, and refuses a malformed one.
    """

    def __init__(self, start: datetime, epoch: float, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("the shared clock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("the shared clock's speed must be positive")
        self.start = start.astimezone(UTC)
        self.epoch = epoch
        self.speed = speed

    @classmethod
    def parse(cls, spec: str) -> SharedClock:
        """Build from `<start ISO>@<epoch>x<speed>`; ValueError when malformed."""
        try:
            start_text, rest = spec.strip().rsplit("@", 1)
            epoch_text, speed_text = rest.split("x", 1)
            start = datetime.fromisoformat(start_text)
            return cls(start, float(epoch_text), float(speed_text))
        except ValueError as exc:
            raise ValueError(
                f"{CLOCK_ENV} must be <start ISO 8601 with offset>@<epoch seconds>x<speed>,"
                f" not {spec!r} ({exc})"
            ) from None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SharedClock | None:
        """The clock NPC_CLOCK describes, or None when it is unset."""
        spec = (env if env is not None else os.environ).get(CLOCK_ENV, "").strip()
        return cls.parse(spec) if spec else None

    @property
    def spec(self) -> str:
        """The specification that rebuilds this clock in another process."""
        return f"{self.start.isoformat()}@{self.epoch!r}x{self.speed!r}"

    def now(self) -> datetime:
        """The simulated instant, in UTC."""
        return self.start + timedelta(seconds=(time.time() - self.epoch) * self.speed)

    def to_wall(self, simulated: timedelta) -> float:
        """Wall seconds that `simulated` time takes on this clock."""
        return simulated.total_seconds() / self.speed

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Sleep until the simulated clock reaches `instant`, or until `wake` is set."""
        delay = (instant - self.now()).total_seconds() / self.speed
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()
