"""Wake-up hints over Redis pub/sub: delivered to every process, and collapsed under load."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from npc.core.notify import Notifier


async def test_hints_reach_the_other_process_and_collapse_into_the_newest(redis_server):
    publisher_client = aioredis.Redis.from_url(redis_server.url)
    listener_client = aioredis.Redis.from_url(redis_server.url)
    publisher = Notifier(publisher_client, "notify-test")
    listener = Notifier(listener_client, "notify-test")
    received: list[str] = []
    arrived = asyncio.Event()

    def on_head(message: str) -> None:
        received.append(message)
        if message == "100":
            arrived.set()

    listener.on("events.head", on_head)
    listening = asyncio.create_task(listener.run())
    try:
        # Wait until the subscription is in place: a hint published before it is not kept.
        channel = publisher.channel("events.head")
        async with asyncio.timeout(10):
            while (await publisher_client.pubsub_numsub(channel))[0][1] == 0:  # noqa: ASYNC110 (Redis has no event for it)
                await asyncio.sleep(0.01)
        publisher.publish("events.head", "1")
        await asyncio.sleep(0)  # its publish is now on its way
        for head in range(2, 101):
            publisher.publish("events.head", str(head))
        async with asyncio.timeout(10):
            await arrived.wait()
        # The first hint went out at once; the 99 given while it was on its way became one.
        assert received == ["1", "100"]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await publisher_client.aclose()
        await listener_client.aclose()
