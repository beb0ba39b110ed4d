"""The event loop a server process runs on (NPC_EVENT_LOOP), in a module that imports nothing
else of npc: the benchmark's empty server, whose calls are the RPC ceiling, starts in a fraction
of a clearinghouse import and must run on the same loop as `npc serve`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

EVENT_LOOPS = ("asyncio", "uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop `name` names: uvloop (the default, `name` empty; a dependency wherever uvloop
    builds) or asyncio's own. Empty, it is uvloop when importable and asyncio where it is not
    (Windows). ValueError, saying why, for another name or for uvloop named and missing."""
    name = name.lower()
    if name and name not in EVENT_LOOPS:
        raise ValueError(f"{name!r} is not one of {', '.join(EVENT_LOOPS)}")
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if not name:
            return asyncio.new_event_loop
        raise ValueError("uvloop is not installed (pip install 'npc[uvloop]')") from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
