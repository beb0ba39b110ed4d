"""A slow subscriber never slows the others: it holds no buffer, only its position, and when it
falls behind the hub's in-memory window it catches up from PostgreSQL with no gap."""

from __future__ import annotations

import asyncio

from npc.core.events import LoggedEvent
from npc.core.fanout import EventHub


async def _emit(app, count: int) -> None:
    for i in range(count):
        async with app.core.db.transaction("test.emit", app.clock.now()) as txn:
            txn.emit(
                "test",
                "test.tick",
                case_id=str(i),
                sender="clearinghouse",
                payload={"i": i},
                broadcast=True,
            )
    await app.core.sequencer.catch_up()


async def test_a_stalled_subscriber_does_not_hold_back_a_fast_one_and_catches_up(app):
    hub = EventHub(app.core.db, window=50, poll_seconds=0.05)
    await hub.start()
    start = hub.head
    fast_seen: list[int] = []
    slow_seen: list[int] = []
    release = asyncio.Event()

    async def fast() -> None:
        async for event in hub.subscribe(None, start):
            fast_seen.append(event.position)
            if len(fast_seen) == 300:
                return

    async def slow() -> None:
        async for event in hub.subscribe(None, start):
            slow_seen.append(event.position)
            if len(slow_seen) == 1:
                await release.wait()  # stalled: reads nothing for a while
            if len(slow_seen) == 300:
                return

    runner = asyncio.ensure_future(hub.run())
    tasks = [asyncio.ensure_future(fast()), asyncio.ensure_future(slow())]
    try:
        await _emit(app, 300)
        async with asyncio.timeout(20):
            await tasks[0]  # the fast one got all 300 while the slow one sat on its first
        assert len(slow_seen) == 1
        assert len(hub.window) == 50  # memory stays bounded by the window, not by the backlog
        release.set()
        async with asyncio.timeout(20):
            await tasks[1]
    finally:
        runner.cancel()
        for task in tasks:
            task.cancel()
    expected = list(range(start + 1, start + 301))
    assert fast_seen == expected
    assert slow_seen == expected  # 250 of them came from PostgreSQL: no gap, no repeat


async def test_a_full_push_stream_does_not_hold_back_a_live_one_and_catches_up(app):
    """Push subscriptions (a session's stream): the hub hands events to the live one as they
    arrive; the one whose buffer filled leaves the head, and once it has room again reads on
    from the window and PostgreSQL, with no gap and no repeat."""
    hub = EventHub(app.core.db, window=50, poll_seconds=0.05)
    await hub.start()
    start = hub.head
    live_seen: list[int] = []
    full_seen: list[int] = []
    live_room, full_room = asyncio.Event(), asyncio.Event()
    live_room.set()
    full_room.set()
    live_done, full_done, full_first = asyncio.Event(), asyncio.Event(), asyncio.Event()

    def live(events: list[LoggedEvent]) -> bool:
        live_seen.extend(event.position for event in events)
        if len(live_seen) >= 300:
            live_done.set()
        return True

    def full(events: list[LoggedEvent]) -> bool:
        first = not full_seen
        full_seen.extend(event.position for event in events)
        full_first.set()
        if len(full_seen) >= 300:
            full_done.set()
        if first:
            full_room.clear()  # full after its first batch, until the test makes room
        return not first

    runner = asyncio.ensure_future(hub.run())
    tasks = [
        asyncio.ensure_future(hub.push(None, start, (), (), live, live_room)),
        asyncio.ensure_future(hub.push(None, start, (), (), full, full_room)),
    ]
    expected = list(range(start + 1, start + 301))
    try:
        await _emit(app, 1)
        async with asyncio.timeout(20):
            await full_first.wait()
        await _emit(app, 299)
        async with asyncio.timeout(20):
            await live_done.wait()
        assert len(hub._live) == 1  # the live one is still at the head, the full one is not
        assert full_seen == [start + 1]
        full_room.set()
        async with asyncio.timeout(20):
            await full_done.wait()
    finally:
        runner.cancel()
        for task in tasks:
            task.cancel()
    assert live_seen == expected
    assert full_seen == expected  # most of them from PostgreSQL, past the 50-event window
