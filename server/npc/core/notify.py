"""Cross-process wake-ups over Redis pub/sub.

Only hints travel here (``a new head is at 1234``); the truth stays in PostgreSQL. When Redis is
away every process falls back to polling, so nothing is lost, only a little latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from npc.core.supervision import passed

log = logging.getLogger(__name__)


class Notifier:
    """Publishes and receives wake-up hints on a few channels."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._handlers: dict[str, list[Callable[[str], None]]] = {}
        self._latest: dict[str, str] = {}
        self._publishers: dict[str, asyncio.Task[None]] = {}

    def channel(self, name: str) -> str:
        """The Redis channel of a logical channel name."""
        return f"{self.prefix}:{name}"

    def on(self, name: str, handler: Callable[[str], None]) -> None:
        """Call `handler(message)` for every message on channel `name`."""
        self._handlers.setdefault(self.channel(name), []).append(handler)

    def publish(self, name: str, message: str) -> None:
        """Publish without waiting; a failure only costs latency.

        A hint only says "look again", so while one publish on a channel is under way the hints
        given meanwhile collapse into the newest: under load a commit no longer costs a Redis
        round trip of its own.
        """
        self._latest[name] = message
        if name not in self._publishers:
            task = asyncio.get_running_loop().create_task(self._publish(name))
            self._publishers[name] = task

    async def _publish(self, name: str) -> None:
        try:
            while (message := self._latest.pop(name, None)) is not None:
                try:
                    await self.client.publish(self.channel(name), message)
                except Exception as exc:  # a hint lost costs latency only; never kill the task
                    log.debug("publish to %s failed: %s", name, exc)
        finally:
            del self._publishers[name]

    async def run(self) -> None:
        """Listen for messages. While Redis is away this raises, and the supervisor
        (`npc.core.supervision`) reconnects with backoff; meanwhile every loop polls."""
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(*self._handlers)
            passed()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                channel = message["channel"]
                data = message["data"]
                if isinstance(channel, bytes):
                    channel = channel.decode()
                if isinstance(data, bytes):
                    data = data.decode()
                for handler in self._handlers.get(channel, []):
                    handler(data)
                passed()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in redis 8
