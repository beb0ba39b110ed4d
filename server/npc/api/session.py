"""SessionService: one bidirectional stream per operator for every command, its results and
its events.

A unary call costs the server a call's setup, its metadata, its authentication and its HTTP/2
stream; a message on an open stream costs about a third of that. Each command is dispatched to the
very `Command` binding its unary RPC uses (`getattr(servicer, rpc)(request, context)`), so
validation, permissions, idempotency and the stored answers cannot differ between the two ways in;
around it runs, per command, what the interceptor does per unary call (country, rate limit,
bounds, metrics, timeout, drain, failure mapping). The caller is authenticated once, for the
stream, by the interceptor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from npc.api.bounds import check_bounds
from npc.api.drain import Drain, ShuttingDown
from npc.api.events import EventServicer
from npc.api.identity import current_caller
from npc.api.interceptors import (
    ServerInterceptor,
    _failure_status,
    _forget,
    call_metrics,
)
from npc.api.limits import RateLimiter
from npc.api.messages import Command
from npc.core.errors import FieldViolation, InvalidArgument, PermissionDenied
from npc.core.flow import GrpcService
from npc.v1 import events_pb2, session_pb2, session_pb2_grpc

log = logging.getLogger(__name__)

# The uploads stay unary or client-streamed: a whole daily report is megabytes, bounded and
# counted as an upload, not a command among others on a shared stream.
UPLOADS = frozenset({"SubmitDailyReport"})
# The field naming a request's case, the first one a request has: commands on one case run in the
# order sent (an answer before the schedule), the others concurrently. A request without one
# opens a case (a new port request) and runs at once.
CASE_FIELDS = (
    "port_request_id",
    "consultation_id",
    "return_id",
    "suspension_id",
    "problem_id",
    "sms_request_id",
    "cun",
    "number",
)
# Commands read and not yet answered, per session: while full the session stops reading, so a
# client sending faster than the server decides waits in HTTP/2 flow control, not in memory.
MAX_IN_FLIGHT = 128
# Commands in one `CommandBatch`: what a client has ready at once, never more than it may have in
# flight.
MAX_COMMANDS_PER_REQUEST = 128
# Events waiting for the writer, per session; the subscription waits while full (it may go over
# by one batch of the hub's).
MAX_EVENTS_BUFFERED = 1024
# Events packed into one response (each is at most a few KB).
MAX_EVENTS_PER_RESPONSE = 256


@dataclass(frozen=True)
class Route:
    """Where a `SessionCommand` field goes: the RPC it stands for and its servicer binding."""

    field: str  # the SessionCommand oneof field, e.g. "submit_port_request"
    full_service: str  # "npc.v1.PortabilityService"
    service: str  # "PortabilityService": the metrics' label, as the interceptor's
    method: str  # "SubmitPortRequest"
    outcome: str  # the CommandResult oneof field of its response, e.g. "port_request"
    case_field: str | None
    call: Callable[[Any, Any], Awaitable[Any]]

    @property
    def path(self) -> str:
        """The unary RPC's method path, as logs and errors name it."""
        return f"/{self.full_service}/{self.method}"


def _type_name(field: FieldDescriptor) -> str:
    return field.message_type.full_name if field.message_type is not None else ""


def dispatch_table(services: Sequence[GrpcService]) -> dict[str, Route]:
    """The route of every `SessionCommand` field, built from the descriptors and the servicers'
    method tables. Raises ValueError when a `Command` RPC has no field or a field no RPC: the
    session would silently lack a command, or offer one nobody answers."""
    requests = session_pb2.SessionCommand.DESCRIPTOR.oneofs_by_name["request"].fields
    by_input = {_type_name(f): f for f in requests}
    outcomes = {
        _type_name(f): f.name
        for f in session_pb2.CommandResult.DESCRIPTOR.oneofs_by_name["outcome"].fields
        if f.name != "error"
    }
    pool = descriptor_pool.Default()
    routes: dict[str, Route] = {}
    problems: list[str] = []
    for service in services:
        descriptor = pool.FindServiceByName(service.full_name)
        for method in descriptor.methods:
            if method.name in UPLOADS or not isinstance(
                getattr(type(service.servicer), method.name, None), Command
            ):
                continue
            name = f"{service.full_name}.{method.name}"
            field = by_input.get(method.input_type.full_name)
            outcome = outcomes.get(method.output_type.full_name)
            if field is None:
                problems.append(f"{name} has no SessionCommand field")
                continue
            if outcome is None:
                problems.append(f"{name}'s {method.output_type.name} has no CommandResult field")
                continue
            case_fields = method.input_type.fields_by_name
            routes[field.name] = Route(
                field=field.name,
                full_service=service.full_name,
                service=descriptor.name,
                method=method.name,
                outcome=outcome,
                case_field=next((c for c in CASE_FIELDS if c in case_fields), None),
                call=getattr(service.servicer, method.name),
            )
    problems += [
        f"SessionCommand.{f.name} is no Command RPC of a served service"
        for f in requests
        if f.name not in routes
    ]
    if problems:
        raise ValueError("the session cannot start: " + "; ".join(problems))
    return routes


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    """SessionService over the other services' servicers and the event stream."""

    def __init__(
        self,
        services: Sequence[GrpcService],
        events: EventServicer,
        *,
        heartbeat: float = 15.0,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.routes = dispatch_table(services)
        self.events = events
        self.heartbeat = heartbeat
        self.max_in_flight = max_in_flight
        # What the interceptor applies to each unary call; `attach` shares the server's own.
        self.limiter = RateLimiter(0, 0)
        self.drain = Drain()
        self.countries: dict[str, str] = {}
        self.call_timeout = 30.0

    def attach(self, interceptor: ServerInterceptor) -> None:
        """Apply `interceptor`'s rate limiter, drain, countries and call timeout per command."""
        self.limiter = interceptor.limiter
        self.drain = interceptor.drain
        self.countries = interceptor.countries
        self.call_timeout = interceptor.call_timeout

    async def Session(  # noqa: N802
        self,
        request_iterator: AsyncIterator[session_pb2.SessionRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[session_pb2.SessionResponse]:
        """Commands in, their results and the caller's events out (see session.proto)."""
        async for response in _Session(self, request_iterator, context).run():
            yield response


class _Session:
    """One open session: a reader task, one task per command, the subscription's task, and the
    RPC's own task writing whatever is ready, packed into one response."""

    def __init__(
        self,
        service: SessionServicer,
        requests: AsyncIterator[session_pb2.SessionRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        self.service = service
        self.requests = requests
        self.context = context
        # The next response, its results added as commands end (each copied once, into it).
        self.pending = session_pb2.SessionResponse()
        self.events: deque[events_pb2.Event] = deque()
        self.ready = asyncio.Event()  # something to send, or a state change to look at
        self.room = asyncio.Event()  # the event buffer has room (again)
        self.room.set()
        self.slots = asyncio.Semaphore(service.max_in_flight)
        self.commands: set[asyncio.Task[None]] = set()
        # The last command of each case: the next one on that case waits for it.
        self.last_of_case: dict[tuple[str, Any], asyncio.Task[None]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.subscription: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None  # ends the stream (unreadable input...)
        self.reading_done = False
        self.position: int | None = None  # last event position sent, once subscribed

    def _wake(self) -> None:
        self.ready.set()

    async def run(self) -> AsyncIterator[session_pb2.SessionResponse]:
        """Write until the client is done (and every result sent), the drain ends the session or
        a stream-level failure does."""
        drain = self.service.drain
        self.reader = asyncio.create_task(self._read())
        watch = asyncio.create_task(self._watch_drain(drain))
        try:
            while True:
                self.ready.clear()
                if self.failure is not None:
                    raise self.failure
                response = self._pack()
                if response is not None:
                    sent = len(response.results)
                    yield response
                    for _ in range(sent):
                        self.slots.release()
                    if response.events:
                        self.position = response.events[-1].position
                    continue
                if drain.draining:
                    self._stop_reading()
                    if not self.commands:
                        raise ShuttingDown(
                            "the server is shutting down; send the unanswered commands again"
                            + (
                                f" and subscribe from position {self.position}"
                                if self.position is not None
                                else ""
                            ),
                            self.position,
                        )
                elif self.reading_done and not self.commands and self.subscription is None:
                    return
                try:
                    async with asyncio.timeout(self.service.heartbeat):
                        await self.ready.wait()
                except TimeoutError:
                    heartbeat = session_pb2.Heartbeat(head_position=self.service.events.hub.head)
                    heartbeat.sent_at.FromDatetime(datetime.now(UTC))
                    yield session_pb2.SessionResponse(heartbeat=heartbeat)
        finally:
            tasks = [watch, *self.commands]
            tasks += [t for t in (self.reader, self.subscription) if t is not None]
            for task in tasks:
                task.cancel()
            # Every task of the session ends with it: none outlives the call.
            await asyncio.gather(*tasks, return_exceptions=True)

    def _pack(self) -> session_pb2.SessionResponse | None:
        if not self.pending.results and not self.events:
            return None
        response, self.pending = self.pending, session_pb2.SessionResponse()
        count = min(len(self.events), MAX_EVENTS_PER_RESPONSE)
        response.events.extend(self.events.popleft() for _ in range(count))
        if len(self.events) < MAX_EVENTS_BUFFERED:
            self.room.set()
        return response

    async def _watch_drain(self, drain: Drain) -> None:
        await drain.started.wait()
        if self.subscription is not None:
            # Every event buffered is still sent; the client resumes after the last.
            self.subscription.cancel()
        self._wake()

    def _stop_reading(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()

    async def _read(self) -> None:
        try:
            while True:
                await self.slots.acquire()
                try:
                    request = await anext(self.requests)
                except StopAsyncIteration:
                    self.slots.release()
                    return
                kind = request.WhichOneof("kind")
                if kind == "command":
                    self._dispatch(request.command)
                    continue
                self.slots.release()
                if kind == "commands":
                    await self._dispatch_all(request.commands.commands)
                elif kind == "subscribe":
                    self._subscribe(request.subscribe)
                else:
                    raise InvalidArgument(
                        FieldViolation("kind", "a subscribe, a command or commands")
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unreadable input or a misuse ends the stream with its status
            self.failure = exc
        finally:
            self.reading_done = True
            self._wake()

    async def _dispatch_all(self, commands: Sequence[session_pb2.SessionCommand]) -> None:
        """A batch's commands, in order, each taking its in-flight slot as one sent alone."""
        if len(commands) > MAX_COMMANDS_PER_REQUEST:
            raise InvalidArgument(
                FieldViolation("commands.commands", f"at most {MAX_COMMANDS_PER_REQUEST} items")
            )
        for command in commands:
            await self.slots.acquire()
            self._dispatch(command)

    def _subscribe(self, request: events_pb2.SubscribeRequest) -> None:
        if self.subscription is not None:
            raise InvalidArgument(FieldViolation("subscribe", "at most one per session"))
        self.position = request.from_position
        self.subscription = asyncio.create_task(self._follow(request))

    async def _follow(self, request: events_pb2.SubscribeRequest) -> None:
        try:
            # EventService.Subscribe's checks, flows and messages; the hub hands them to `_take`.
            await self.service.events.push(request, self._take, self.room)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            self._wake()

    def _take(self, events: list[events_pb2.Event]) -> bool:
        """Buffer the subscription's events for the writer (the hub calls this as they arrive);
        False once the buffer is full: the subscription then waits for `room`."""
        self.events.extend(events)
        self._wake()
        if len(self.events) >= MAX_EVENTS_BUFFERED:
            self.room.clear()
            return False
        return True

    def _dispatch(self, command: session_pb2.SessionCommand) -> None:
        field = command.WhichOneof("request")
        if field is None:
            status = _failure_status(
                InvalidArgument(FieldViolation("command", "names no request")), "Session"
            )
            self._answer("", "", "error", status)
            return
        route = self.service.routes[field]
        request = getattr(command, field)
        previous: asyncio.Task[None] | None = None
        key: tuple[str, Any] | None = None
        if route.case_field is not None:
            value = getattr(request, route.case_field)
            if value:
                key = (route.case_field, value)
                previous = self.last_of_case.get(key)
        task = asyncio.create_task(self._run(route, request, previous))
        self.commands.add(task)
        if key is not None:
            self.last_of_case[key] = task
        task.add_done_callback(lambda done: self._finished(done, key))

    def _finished(self, task: asyncio.Task[None], key: tuple[str, Any] | None) -> None:
        self.commands.discard(task)
        if key is not None and self.last_of_case.get(key) is task:
            del self.last_of_case[key]
        self._wake()

    def _answer(self, request_id: str, method: str, outcome: str, answer: Message) -> None:
        result = self.pending.results.add(request_id=request_id, method=method)
        getattr(result, outcome).CopyFrom(answer)
        self._wake()

    async def _run(
        self, route: Route, request: Message, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            # In the order sent on one case; the previous one never raises but when cancelled.
            await asyncio.wait({previous})
        service = self.service
        # The session's caller, identified once when the stream opened.
        caller = current_caller()
        metrics = call_metrics(route.service, route.method, caller.operator)
        metrics.started.inc()
        started = time.perf_counter()
        code = code_pb2.OK
        try:
            country = service.countries.get(route.full_service)
            if country is not None and caller.country != country:
                raise PermissionDenied(
                    f"{route.service} serves the operators of {country}; {caller.operator} is"
                    f" under {caller.country}'s regulation"
                )
            service.limiter.acquire(caller.operator)
            check_bounds(request)
            with service.drain.admitted():
                async with asyncio.timeout(service.call_timeout):
                    response = await route.call(request, self.context)
            outcome: str = route.outcome
        except asyncio.CancelledError:
            code = code_pb2.CANCELLED  # the session ended first: the client sends it again
            raise
        except Exception as exc:  # every failure is the command's result, never the stream's
            response = _failure_status(exc, route.path)
            _forget(exc)
            outcome, code = "error", response.code
        finally:
            metrics.handled(code).inc()
            metrics.seconds.observe(time.perf_counter() - started)
        self._answer(getattr(request, "request_id", ""), route.method, outcome, response)
