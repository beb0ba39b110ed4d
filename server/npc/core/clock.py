"""Injected time. Flows never read the wall clock: they ask the core's clock.

`SystemClock` is the wall clock; `FakeClock` only moves when a test advances it, so a five-minute
SLA test takes milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
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
