"""A clearinghouse server whose clock runs `--offset` seconds ahead of the wall clock.

Fault tests start it as a separate process (so it can be SIGKILLed) when they need deadlines set
by an earlier server generation to be due now. Settings come from the NPC_* environment.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime, timedelta

from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import SystemClock


class OffsetClock(SystemClock):
    """The wall clock moved forward by a fixed offset."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        """The wall-clock instant plus the offset."""
        return super().now() + self.offset


async def serve(offset: float) -> None:
    """Serve until SIGTERM/SIGINT (or until killed)."""
    house = Clearinghouse(Settings.from_env(), OffsetClock(timedelta(seconds=offset)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await house.start()
    try:
        await stop.wait()
    finally:
        await house.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--offset", type=float, default=0.0)
    asyncio.run(serve(parser.parse_args().offset))
