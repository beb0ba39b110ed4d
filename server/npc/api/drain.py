"""The end of a server's life: calls in flight finish, new calls and open streams are sent away.

grpc.aio's `server.stop(grace)` is no drain. It calls the core's shutdown, which kills every call
that reached the server but was not yet handed to Python (the aio server asks the core for one call
at a time, so under load most queued calls wait there): their clients get CANCELLED although the
calls never ran. Streams are only cut when the grace runs out, with CANCELLED too. So the server
drains in Python first: from `Drain.start` on, the interceptor refuses every new call with
UNAVAILABLE (it never runs, a client retries it elsewhere or after the restart), ends every open
stream with UNAVAILABLE and the position to resume from, and waits for the unary calls admitted
before (those waiting for a pool connection or a case lock included), then until no call arrived
for `QUIET` seconds (the calls queued in the core have come out and been refused). Only then is
the gRPC server stopped, with nothing left in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from npc.api.errors import RpcFailure
from npc.core.errors import ERROR_DOMAIN, Reason

log = logging.getLogger(__name__)

# Trailing metadata of a stream ended by the drain: the position to pass as `from_position` when
# subscribing again (every event up to it was sent).
RESUME_POSITION_KEY = "npc-resume-position"
SHUTTING_DOWN = Reason.SERVER_SHUTTING_DOWN
# Seconds without a new call after which the core is taken to hold no queued call any more; an
# idle server (nothing in flight, nothing arriving once draining) is quiet after the first GLANCE.
QUIET = 0.1
GLANCE = 0.02


class ShuttingDown(RpcFailure):
    """UNAVAILABLE: this server process is stopping; the same call succeeds elsewhere or later."""

    def __init__(self, message: str, resume_position: int | None = None) -> None:
        info = error_details_pb2.ErrorInfo(reason=SHUTTING_DOWN, domain=ERROR_DOMAIN)
        self.trailers: tuple[tuple[str, str], ...] = ()
        if resume_position is not None:
            info.metadata["resume_position"] = str(resume_position)
            self.trailers = ((RESUME_POSITION_KEY, str(resume_position)),)
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=200_000_000))
        details = []
        for detail in (info, retry):
            packed = any_pb2.Any()
            packed.Pack(detail)
            details.append(packed)
        super().__init__(
            status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=details)
        )


def _has_field(message: Any, name: str) -> bool:
    descriptor = getattr(message, "DESCRIPTOR", None)
    return descriptor is not None and name in descriptor.fields_by_name


class _OpenStream:
    """One server stream: its task, and where its client may resume."""

    def __init__(self, task: asyncio.Task[Any] | None, request: Any) -> None:
        self.task = task
        # Streams read from a position (`from_position`, items with a `position`) can resume.
        self.position: int | None = (
            int(request.from_position) if _has_field(request, "from_position") else None
        )
        self.waiting = False  # awaiting its next item (not sending one)
        self.cut = False

    def ended(self) -> ShuttingDown:
        if self.position is None:
            return ShuttingDown("the server is shutting down; call again")
        return ShuttingDown(
            f"the server is shutting down; subscribe again from position {self.position}",
            self.position,
        )


class Drain:
    """Counts the calls in flight; once started, refuses new ones and ends open streams."""

    def __init__(self) -> None:
        self.draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._streams: set[_OpenStream] = set()
        self._last_arrival = 0.0
        # Set when the drain starts: sessions stop reading and end once their commands are done.
        self.started = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Unary (and client-streaming) calls admitted and not yet answered."""
        return self._in_flight

    def arrived(self) -> None:
        """Note a call's arrival; refuse it with UNAVAILABLE once draining (before any work)."""
        self._last_arrival = time.monotonic()
        if self.draining:
            raise ShuttingDown("the server is shutting down; retry with the same request_id")

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Run one unary call, counted in flight; refused with UNAVAILABLE once draining."""
        if self.draining:
            raise ShuttingDown("the server is shutting down; retry with the same request_id")
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def follow(self, request: Any, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Relay a server stream until it ends or the drain starts, then end it with
        UNAVAILABLE and the position to resume from."""
        stream = _OpenStream(asyncio.current_task(), request)
        if self.draining:
            raise stream.ended()
        self._streams.add(stream)
        try:
            iterator = items.__aiter__()
            while True:
                if self.draining:
                    raise stream.ended()
                stream.waiting = True
                try:
                    item = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not stream.cut or stream.task is None:
                        raise
                    # Cancelled by `start` to stop waiting for the next item, not by the client.
                    stream.task.uncancel()
                    raise stream.ended() from None
                finally:
                    stream.waiting = False
                yield item
                # The item went out: the client has everything up to its position.
                if stream.position is not None and _has_field(item, "position"):
                    stream.position = int(item.position)
        finally:
            self._streams.discard(stream)

    async def start(self, grace: float) -> bool:
        """Refuse new calls, end open streams, and wait up to `grace` seconds for the calls in
        flight, then for the calls queued in the core to come out; False when some were still
        running."""
        deadline = time.monotonic() + grace
        busy = self._in_flight > 0
        self.draining = True
        self.started.set()
        started = time.monotonic()
        for stream in list(self._streams):
            stream.cut = True
            # A stream sending an item sees `draining` once it is sent; one waiting for its next
            # item is woken here.
            if stream.waiting and stream.task is not None:
                stream.task.cancel()
        log.info(
            "draining: %d calls in flight, %d streams ended", self._in_flight, len(self._streams)
        )
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("drain: %d calls still in flight after %.1f s", self._in_flight, grace)
            return False
        # grpc.aio takes calls from the core one at a time: under load some wait there, and the
        # core's shutdown would cancel them. Refused here instead, until none come any more.
        await asyncio.sleep(GLANCE)
        if not busy and self._last_arrival < started:
            return True
        while True:
            now = time.monotonic()
            quiet_for = now - self._last_arrival
            if quiet_for >= QUIET or now >= deadline:
                return True
            await asyncio.sleep(min(QUIET - quiet_for, deadline - now))
