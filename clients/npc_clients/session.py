"""The session stream: every command and the operator's events on one bidirectional call.

::

    async with client.session(store=FilePositionStore("npc.position")) as session:
        filed = await session.send(pb.SubmitPortRequestRequest(request_id=..., ...))
        async for event in session.events():
            handle(event)
            session.processed(event)

`send` returns the typed response of the RPC the request stands for (a `PortRequest` for a
`SubmitPortRequestRequest`), or raises `CommandError` with the google.rpc.Status the unary call
would have ended with. Many sends may be in flight at once: each result is matched to its command
by request id. When the stream breaks (UNAVAILABLE, a server stopping), the session reconnects
with backoff, sends the commands still unanswered again with the same request ids (the
clearinghouse answers a retry with the first answer) and resumes the events after the last one
received.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from npc.v1 import events_pb2, session_pb2, session_pb2_grpc
from npc_clients.positions import PositionStore

if TYPE_CHECKING:
    from npc_clients.client import OperatorClient

log = logging.getLogger("npc_clients")

D = TypeVar("D", bound=Message)

# SessionCommand's field for each request type, e.g. npc.v1.SubmitPortRequestRequest ->
# "submit_port_request".
_FIELDS: dict[str, str] = {
    f.message_type.full_name: f.name
    for f in session_pb2.SessionCommand.DESCRIPTOR.oneofs_by_name["request"].fields
    if f.message_type is not None
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Results saying the command did not run or may not have: sent again, same request id.
_RETRIED = frozenset({code_pb2.UNAVAILABLE, code_pb2.DEADLINE_EXCEEDED})
_RECONNECT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
_RESUME_POSITION_KEY = "npc-resume-position"
# Commands packed into one message at most (the server's bound).
MAX_BATCH = 128


def _broken(error: grpc.aio.AioRpcError) -> bool:
    """Whether the stream was lost rather than refused: UNAVAILABLE, a server-side CANCELLED,
    or the INTERNAL grpc's core reports for a message it could not send on a connection that
    died (the clearinghouse's own statuses always carry google.rpc details)."""
    if error.code() in _RECONNECT:
        return True
    return error.code() == grpc.StatusCode.INTERNAL and not any(
        key == "grpc-status-details-bin" for key, _ in error.trailing_metadata() or ()
    )


def _packed(
    first: session_pb2.SessionRequest, queue: asyncio.Queue[session_pb2.SessionRequest]
) -> list[session_pb2.SessionRequest]:
    """The messages to write for `first` and the commands queued behind it, in order: those
    commands packed into one `CommandBatch`, since a message costs both ends far more than a
    command's bytes, and commands queue while a write is under way."""
    if queue.empty() or first.WhichOneof("kind") != "command":
        return [first]
    packed = session_pb2.SessionRequest()
    commands = packed.commands.commands
    commands.append(first.command)
    while len(commands) < MAX_BATCH and not queue.empty():
        following = queue.get_nowait()
        if following.WhichOneof("kind") != "command":
            return [packed, following]
        commands.append(following.command)
    return [packed]


class CommandError(grpc.aio.AioRpcError):
    """A command refused: the google.rpc.Status the unary RPC would have ended with.

    It is the `grpc.aio.AioRpcError` the unary call would have raised (`code()`, `details()`,
    the status in the trailers as `grpc-status-details-bin`), so code handling the unary
    RPC's errors handles it unchanged."""

    def __init__(self, method: str, request_id: str, status: status_pb2.Status) -> None:
        super().__init__(
            _CODES.get(status.code, grpc.StatusCode.UNKNOWN),
            grpc.aio.Metadata(),
            grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
            details=status.message,
        )
        self.method = method
        self.request_id = request_id
        self.status = status

    def detail(self, kind: type[D]) -> D | None:
        """The first detail of type `kind` (ErrorInfo, BadRequest...), if any."""
        for packed in self.status.details:
            if packed.Is(kind.DESCRIPTOR):
                found = kind()
                packed.Unpack(found)
                return found
        return None


class SessionClosed(Exception):
    """The session ended before the command was answered."""


@dataclass
class _Pending:
    order: int
    method: str
    message: session_pb2.SessionRequest
    future: asyncio.Future[Any]
    give_up: float
    delay: float = 0.05
    waiters: int = field(default=1)


class Session:
    """One operator's session stream; open it with ``async with client.session(...)``."""

    def __init__(
        self,
        client: OperatorClient,
        *,
        store: PositionStore | None = None,
        flows: list[str] | None = None,
        from_position: int | None = None,
        retry_for: float | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        """Subscribe to the events after the position `store` holds, or after `from_position`
        (neither: no events); `flows` filters them as EventService.Subscribe does. The stream is
        reconnected for up to `retry_for` seconds (the client's by default) without an answer,
        on `channel` (the client's by default)."""
        self.client = client
        self.store = store
        self.flows = flows or []
        self.subscribed = store is not None or from_position is not None
        self.position = store.load() if store is not None else (from_position or 0)
        self.retry_for = client.retry_for if retry_for is None else retry_for
        self.reconnects = 0
        self._stub = session_pb2_grpc.SessionServiceStub(channel or client.channel)
        self._pending: dict[str, _Pending] = {}
        self._order = itertools.count()
        self._queue: asyncio.Queue[session_pb2.SessionRequest] | None = None
        self._events: asyncio.Queue[events_pb2.Event | BaseException] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._answered = False  # anything came on the current call

    async def __aenter__(self) -> Session:
        self._runner = asyncio.create_task(self._run(), name="npc-session")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End the stream; commands still unanswered fail with SessionClosed."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        self._end(SessionClosed("the session is closed"))

    async def send(self, request: Message) -> Any:
        """Send one command and return its typed response, or raise `CommandError`."""
        name = _FIELDS.get(request.DESCRIPTOR.full_name)
        if name is None:
            raise TypeError(f"{request.DESCRIPTOR.full_name} is no command of the session")
        request_id: str = getattr(request, "request_id", "")
        if not request_id:
            raise ValueError("a command needs its request_id (OperatorClient.new_request_id())")
        if self._failure is not None:
            raise self._failure
        pending = self._pending.get(request_id)
        if pending is None:
            loop = asyncio.get_running_loop()
            message = session_pb2.SessionRequest()
            getattr(message.command, name).CopyFrom(request)
            pending = _Pending(
                order=next(self._order),
                method=name,
                message=message,
                future=loop.create_future(),
                give_up=loop.time() + self.retry_for,
            )
            self._pending[request_id] = pending
            if self._queue is not None:
                self._queue.put_nowait(message)
        else:
            pending.waiters += 1
        try:
            return await asyncio.shield(pending.future)
        finally:
            pending.waiters -= 1
            if not pending.waiters and not pending.future.done():
                # Nobody waits for it any more (cancelled): it is not sent again.
                self._pending.pop(request_id, None)

    async def events(self) -> AsyncIterator[events_pb2.Event]:
        """The subscribed events in position order, each once, across reconnects. They are
        kept until read: a session subscribed must be read."""
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def processed(self, event: events_pb2.Event | int) -> None:
        """Record in the store that `event` (or every event up to a position) was handled."""
        position = event if isinstance(event, int) else event.position
        if self.store is not None and position > self.store.load():
            self.store.save(position)

    def _end(self, failure: BaseException) -> None:
        if self._failure is None:
            self._failure = failure
            self._events.put_nowait(failure)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(failure)
                # Retrieved here so an abandoned send is no "never retrieved" warning.
                pending.future.exception()
        self._pending.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.05
        give_up = loop.time() + self.retry_for
        try:
            while True:
                call = self._stub.Session(metadata=self.client.metadata)
                self._answered = False
                try:
                    await self._serve(call)
                    await asyncio.sleep(0.05)
                except grpc.aio.AioRpcError as error:
                    if self._answered:
                        # The stream worked before it broke: a new one is worth trying at once.
                        give_up, delay = loop.time() + self.retry_for, 0.05
                    pause = delay * (0.5 + random.random())
                    if not _broken(error) or loop.time() + pause > give_up:
                        raise
                    for key, value in error.trailing_metadata() or ():
                        if key == _RESUME_POSITION_KEY:
                            self.position = max(self.position, int(value))
                    log.info("session: %s (%s); reconnecting", error.code().name, error.details())
                    self.reconnects += 1
                    await asyncio.sleep(pause)
                    delay = min(delay * 2, 1.0)
                finally:
                    self._queue = None
                    call.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._end(exc)

    async def _serve(self, call: Any) -> None:
        """Run one call until it ends (`_answered` once anything came on it)."""
        queue: asyncio.Queue[session_pb2.SessionRequest] = asyncio.Queue()
        if self.subscribed:
            subscribe = events_pb2.SubscribeRequest(from_position=self.position, flows=self.flows)
            queue.put_nowait(session_pb2.SessionRequest(subscribe=subscribe))
        # The unanswered commands first, in the order first sent: one case keeps its order.
        for pending in sorted(self._pending.values(), key=lambda p: p.order):
            queue.put_nowait(pending.message)
        self._queue = queue
        writer = asyncio.create_task(self._write(call, queue))
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    # The server ended the call without an error: nothing is lost, carry on.
                    return
                self._answered = True
                for result in response.results:
                    self._resolve(result)
                for event in response.events:
                    if event.position > self.position:
                        self.position = event.position
                        self._events.put_nowait(event)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    @staticmethod
    async def _write(call: Any, queue: asyncio.Queue[session_pb2.SessionRequest]) -> None:
        try:
            while True:
                for message in _packed(await queue.get(), queue):
                    await call.write(message)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            # The call ended: its reader reports why, and the next call sends the rest.
            return

    def _resolve(self, result: session_pb2.CommandResult) -> None:
        pending = self._pending.get(result.request_id)
        if pending is None:
            return  # a second answer to a command sent again across a reconnect
        outcome = result.WhichOneof("outcome")
        if outcome == "error":
            loop = asyncio.get_running_loop()
            pause = pending.delay * (0.5 + random.random())
            if result.error.code in _RETRIED and loop.time() + pause < pending.give_up:
                pending.delay = min(pending.delay * 2, 1.0)
                loop.call_later(pause, self._resend, result.request_id, pending)
                return
            del self._pending[result.request_id]
            if not pending.future.done():
                pending.future.set_exception(
                    CommandError(result.method, result.request_id, result.error)
                )
            return
        del self._pending[result.request_id]
        if not pending.future.done():
            pending.future.set_result(getattr(result, outcome) if outcome else None)

    def _resend(self, request_id: str, pending: _Pending) -> None:
        if self._pending.get(request_id) is pending and self._queue is not None:
            self._queue.put_nowait(pending.message)
