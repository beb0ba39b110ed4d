"""One server interceptor: identifies the caller, counts and times the call, and turns domain
errors into gRPC statuses. Servicers stay free of all three concerns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from prometheus_client import Counter, Histogram

from npc.api.bounds import (
    MAX_UPLOAD_BYTES,
    MESSAGE_BYTES,
    ExpensiveCalls,
    Oversized,
    PeerLog,
    Reclaimer,
    Undecodable,
    check_bounds,
    max_message_bytes,
)
from npc.api.drain import Drain
from npc.api.errors import RpcFailure, fail, status, to_status
from npc.api.identity import CURRENT_CALLER, TokenAuthenticator
from npc.api.limits import RateLimiter
from npc.core.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Reason,
)

log = logging.getLogger(__name__)

# `operator` is the identified caller: bounded, since only registered operators authenticate;
# every call no operator could be identified for shares one value.
UNIDENTIFIED = "unidentified"
RPC_STARTED = Counter(
    "npc_rpc_started_total", "RPCs started, by caller operator.", ["service", "method", "operator"]
)
RPC_HANDLED = Counter(
    "npc_rpc_handled_total",
    "RPCs completed, by caller operator and status code.",
    ["service", "method", "operator", "code"],
)
RPC_SECONDS = Histogram(
    "npc_rpc_duration_seconds",
    "Time to answer a unary RPC (or to end a stream), by caller operator.",
    ["service", "method", "operator"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_OPEN = ("/grpc.health.v1.", "/grpc.reflection.")
# What a connection lost mid-call raises: the storage is away, not the request wrong. asyncpg
# reports some losses in the middle of a protocol step as InternalClientError.
_UNAVAILABLE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)


def _failure_status(exc: BaseException, method: str) -> status_pb2.Status:
    if isinstance(exc, RpcFailure):
        return exc.status
    if isinstance(exc, DomainError):
        return to_status(exc)
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        log.warning("%s: concurrent update conflict: %s", method, exc)
        return status(
            code_pb2.ABORTED,
            "concurrent update; retry with the same request_id",
            Reason.CONCURRENT_UPDATE,
        )
    if isinstance(exc, TimeoutError):
        log.warning("%s: took longer than its deadline", method)
        return status(
            code_pb2.DEADLINE_EXCEEDED,
            "the call took longer than its deadline",
            Reason.CALL_TIMEOUT,
        )
    if isinstance(exc, _UNAVAILABLE):
        log.warning("%s: storage unavailable: %s", method, exc)
        return status(
            code_pb2.UNAVAILABLE,
            "storage temporarily unavailable; retry",
            Reason.STORAGE_UNAVAILABLE,
        )
    log.exception("%s failed", method)
    return status(code_pb2.INTERNAL, "internal error", Reason.INTERNAL)


def _forget(exc: BaseException) -> None:
    """Drop what a failure holds of the call: the frames of its traceback keep the request (and
    every local of the handler) alive in reference cycles that only a full collection, rare in a
    server, would free. Its chained exceptions too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
            current.__traceback__ = None
        chained = current.__cause__ or current.__context__
        current.__cause__ = current.__context__ = None
        current = chained


def _too_large(size: int, limit: int, method_path: str) -> RpcFailure:
    return RpcFailure(
        status(
            code_pb2.RESOURCE_EXHAUSTED,
            f"the request is {size} bytes; {method_path} accepts at most {limit} bytes",
            Reason.REQUEST_TOO_LARGE,
            limit=str(limit),
        )
    )


def _guarded(deserializer: Callable[[bytes], Any] | None, limit: int) -> Callable[[bytes], Any]:
    """`deserializer` behind the method's size limit; never raises (grpc would answer UNKNOWN
    with a traceback, before anyone is identified): the call gets a stand-in, refused once the
    caller is known."""

    def parse(data: bytes) -> Any:
        if len(data) > limit:
            return Oversized(len(data), limit)
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or whatever a parser raises
            return Undecodable(type(exc).__name__)

    return parse


class _Upload:
    """What a client stream has sent so far."""

    def __init__(self) -> None:
        self.bytes = 0
        self.chunks = 0


_CODE_NAMES = {number: name for name, number in code_pb2.Code.items()}


def _code_name(code: int) -> str:
    return _CODE_NAMES.get(code) or str(code)


class CallMetrics:
    """The metric children of one (service, method, operator): `labels()` hashes and locks on
    every lookup, which per command cost more than the counting itself."""

    __slots__ = ("_handled", "_labels", "seconds", "started")

    def __init__(self, service: str, method: str, operator: str) -> None:
        self._labels = (service, method, operator)
        self.started = RPC_STARTED.labels(service, method, operator)
        self.seconds = RPC_SECONDS.labels(service, method, operator)
        self._handled: dict[int, Any] = {}

    def handled(self, code: int) -> Any:
        """The `npc_rpc_handled_total` child of status `code`."""
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = RPC_HANDLED.labels(*self._labels, _code_name(code))
        return child


# Bounded: services and methods are the server's, operators the registered ones (and
# UNIDENTIFIED), as the metrics' own label sets are.
_CALL_METRICS: dict[tuple[str, str, str], CallMetrics] = {}


def call_metrics(service: str, method: str, operator: str) -> CallMetrics:
    """The (cached) metric children of calls of `method` by `operator`."""
    key = (service, method, operator)
    metrics = _CALL_METRICS.get(key)
    if metrics is None:
        metrics = _CALL_METRICS[key] = CallMetrics(service, method, operator)
    return metrics


@dataclass(frozen=True)
class _Call:
    """What every wrapper of one method needs: its path, the admission around one call (identity,
    bounds, metrics, failure mapping: `ServerInterceptor._served`) and its (de)serializers."""

    method_path: str
    served: Callable[..., contextlib.AbstractAsyncContextManager[bool]]
    deserializer: Callable[[bytes], Any]
    serializer: Any


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Identity, metrics and error mapping around every operator-facing RPC."""

    def __init__(
        self,
        authenticator: TokenAuthenticator,
        *,
        certificates: bool = False,
        limiter: RateLimiter | None = None,
        call_timeout: float = 30.0,
        countries: dict[str, str] | None = None,
        max_streams: int = 0,
        max_uploads: int = 0,
        drain: Drain | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.drain = drain or Drain()
        # With mutual TLS the identity comes from the client certificate, never from a token.
        self.certificates = certificates
        self.limiter = limiter or RateLimiter(0, 0)
        self.call_timeout = call_timeout
        # Full service name -> the country whose regulation it implements: an operator or a
        # regulator of another country has no rights there (OSIPTEL cannot decide a Colombian
        # appeal, a Colombian provider cannot file a Peruvian port).
        self.countries = countries or {}
        # Concurrent server streams and uploads per operator (0: unlimited).
        self.streams = ExpensiveCalls(max_streams)
        self.uploads = ExpensiveCalls(max_uploads)
        self.reclaimer = Reclaimer()
        self.peer_log = PeerLog()

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        """The time a unary call may take: the client's deadline, capped by the server's."""
        remaining = context.time_remaining()
        return self.call_timeout if remaining is None else min(remaining, self.call_timeout)

    def _admit(
        self, request: Any, method_path: str, context: grpc.aio.ServicerContext, path: str = ""
    ) -> None:
        """Refuse a request over its bounds, or one that did not parse, before any work.
        `path` prefixes the fields named (an upload's chunk)."""
        if isinstance(request, Oversized):
            raise _too_large(request.size, request.limit, method_path)
        if isinstance(request, Undecodable):
            self.peer_log.warning(
                context.peer(),
                "%s: undecodable request from %s (%s)",
                method_path,
                context.peer(),
                request.reason,
            )
            raise InvalidArgument(
                FieldViolation("", f"not a serialized request of {method_path} ({request.reason})")
            )
        if isinstance(request, Message):
            check_bounds(request, path)

    async def _chunks(
        self,
        requests: AsyncIterator[Any],
        method_path: str,
        context: grpc.aio.ServicerContext,
        upload: _Upload,
    ) -> AsyncIterator[Any]:
        """The chunks of an upload, each admitted as it arrives, the whole bounded in bytes."""
        async for chunk in requests:
            upload.bytes += chunk.size if isinstance(chunk, Oversized) else 0
            self._admit(chunk, method_path, context, f"chunks[{upload.chunks}].")
            upload.bytes += chunk.ByteSize()
            if upload.bytes > MAX_UPLOAD_BYTES:
                raise _too_large(upload.bytes, MAX_UPLOAD_BYTES, method_path)
            upload.chunks += 1
            yield chunk

    async def _messages(
        self, requests: AsyncIterator[Any], method_path: str, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        """The messages of a bidirectional stream; one over its size or unparsable ends the
        stream with its status (no command in it can be answered). The handler bounds the rest
        of each message, as it answers each command."""
        async for message in requests:
            if isinstance(message, Oversized | Undecodable):
                self._admit(message, method_path, context)
            yield message

    @contextlib.asynccontextmanager
    async def _served(
        self,
        service: str,
        method: str,
        method_path: str,
        metadata: tuple[Any, ...],
        context: grpc.aio.ServicerContext,
        country: str | None = None,
        *,
        request: Any = None,
        kind: ExpensiveCalls | None = None,
        upload: _Upload | None = None,
    ) -> AsyncIterator[bool]:
        """Identify the caller, admit the request, then count, time and map the failure of one
        call. Yields whether the call was admitted: if not, the body must not run (its status is
        set). `kind`: the operator's streams or uploads, of which this call is one."""
        started = time.perf_counter()
        operator = UNIDENTIFIED
        failure: status_pb2.Status | None = None
        trailers: tuple[tuple[str, str], ...] = ()
        entered: str | None = None
        try:
            try:
                self.drain.arrived()
                if self.certificates:
                    auth = context.auth_context()
                    pems = auth.get("x509_pem_cert")
                    caller = await self.authenticator.authenticate_certificate(
                        auth.get("x509_common_name"), pems[0] if pems else None
                    )
                else:
                    caller = await self.authenticator.authenticate(metadata)
                operator = caller.operator
                if country is not None and caller.country != country:
                    raise PermissionDenied(
                        f"{service} serves the operators of {country}; {caller.operator} is"
                        f" under {caller.country}'s regulation"
                    )
                CURRENT_CALLER.set(caller)
                self.limiter.acquire(caller.operator)
                self._admit(request, method_path, context)
                if kind is not None:
                    kind.enter(caller.operator)
                    entered = caller.operator
            except Exception as exc:  # every failure becomes a status, never a crash
                failure = _failure_status(exc, method_path)
                trailers = getattr(exc, "trailers", ())
                _forget(exc)
            finally:
                metrics = call_metrics(service, method, operator)
                metrics.started.inc()
            if failure is not None:
                yield False
            else:
                try:
                    yield True
                except Exception as exc:
                    failure = _failure_status(exc, method_path)
                    trailers = getattr(exc, "trailers", ())
                    _forget(exc)
        finally:
            if entered is not None and kind is not None:
                kind.leave(entered)
            code = code_pb2.OK if failure is None else failure.code
            metrics = call_metrics(service, method, operator)
            metrics.handled(code).inc()
            metrics.seconds.observe(time.perf_counter() - started)
        if failure is not None:
            # A large request refused leaves megabytes the allocator would keep: give them back,
            # once the call has let go of the request.
            if isinstance(request, Oversized):
                size = request.size
            elif upload is not None:
                size = upload.bytes
            else:
                size = request.ByteSize() if isinstance(request, Message) else 0
            asyncio.get_running_loop().call_later(0.05, self.reclaimer.after, size)
            # The status is set, not raised: grpc keeps the exception `context.abort` raises on
            # the call, in a cycle through the handler's frames and its request.
            fail(context, failure, trailers)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method_path: str = handler_call_details.method
        if handler is None or method_path.startswith(_OPEN):
            return handler
        full_service, _, method = method_path.strip("/").rpartition("/")
        service = full_service.rsplit(".", 1)[-1]
        metadata = tuple(handler_call_details.invocation_metadata or ())
        country = self.countries.get(full_service)

        def served(
            context: grpc.aio.ServicerContext,
            request: Any = None,
            kind: ExpensiveCalls | None = None,
            upload: _Upload | None = None,
        ) -> contextlib.AbstractAsyncContextManager[bool]:
            return self._served(
                service,
                method,
                method_path,
                metadata,
                context,
                country,
                request=request,
                kind=kind,
                upload=upload,
            )

        call = _Call(
            method_path,
            served,
            _guarded(handler.request_deserializer, max_message_bytes(method_path)),
            handler.response_serializer,
        )
        if handler.unary_unary:
            return self._unary(handler.unary_unary, call)
        if handler.unary_stream:
            return self._server_stream(handler.unary_stream, call)
        if handler.stream_unary:
            return self._upload(handler.stream_unary, call)
        if handler.stream_stream:
            return self._session(handler.stream_stream, call)
        return handler

    def _unary(self, inner: Any, call: _Call) -> grpc.RpcMethodHandler:
        # A unary upload (the whole daily report in one message) counts as an upload.
        kind = self.uploads if call.method_path in MESSAGE_BYTES else None

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with call.served(context, request, kind) as admitted:
                if admitted:
                    with self.drain.admitted():
                        async with asyncio.timeout(self._timeout(context)):
                            return await inner(request, context)
            return None  # the status is set

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=call.deserializer,
            response_serializer=call.serializer,
        )

    def _server_stream(self, inner: Any, call: _Call) -> grpc.RpcMethodHandler:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with call.served(context, request, self.streams) as admitted:
                if admitted:
                    async for item in self.drain.follow(request, inner(request, context)):
                        yield item

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=call.deserializer,
            response_serializer=call.serializer,
        )

    def _upload(self, inner: Any, call: _Call) -> grpc.RpcMethodHandler:
        async def client_stream(
            request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> Any:
            upload = _Upload()
            async with call.served(context, None, self.uploads, upload) as admitted:
                if admitted:
                    chunks = self._chunks(request_iterator, call.method_path, context, upload)
                    with self.drain.admitted():
                        async with asyncio.timeout(self._timeout(context)):
                            return await inner(chunks, context)
            return None  # the status is set

        return grpc.stream_unary_rpc_method_handler(
            client_stream,
            request_deserializer=call.deserializer,
            response_serializer=call.serializer,
        )

    def _session(self, inner: Any, call: _Call) -> grpc.RpcMethodHandler:
        # The session: identified once for the stream and counted as one of the operator's
        # streams; its handler admits, times and maps each command (npc.api.session).
        async def bidi(
            request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            async with call.served(context, None, self.streams) as admitted:
                if admitted:
                    messages = self._messages(request_iterator, call.method_path, context)
                    async for item in inner(messages, context):
                        yield item

        return grpc.stream_stream_rpc_method_handler(
            bidi,
            request_deserializer=call.deserializer,
            response_serializer=call.serializer,
        )
