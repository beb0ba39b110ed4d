"""One server interceptor: identifies the caller, counts and times the call, and turns domain
errors into gRPC statuses. Servicers stay free of all three concerns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from google.rpc import code_pb2, status_pb2
from prometheus_client import Counter, Histogram

from npc.api.drain import Drain
from npc.api.errors import RpcFailure, abort, to_status
from npc.api.identity import CURRENT_CALLER, TokenAuthenticator
from npc.api.limits import RateLimiter
from npc.core.errors import DomainError, PermissionDenied

log = logging.getLogger(__name__)

RPC_STARTED = Counter("npc_rpc_started_total", "RPCs started.", ["service", "method"])
RPC_HANDLED = Counter(
    "npc_rpc_handled_total", "RPCs completed, by status code.", ["service", "method", "code"]
)
RPC_SECONDS = Histogram(
    "npc_rpc_duration_seconds",
    "Time to answer a unary RPC (or to end a stream).",
    ["service", "method"],
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
        return status_pb2.Status(
            code=code_pb2.ABORTED, message="concurrent update; retry with the same request_id"
        )
    if isinstance(exc, TimeoutError):
        log.warning("%s: took longer than its deadline", method)
        return status_pb2.Status(
            code=code_pb2.DEADLINE_EXCEEDED, message="the call took longer than its deadline"
        )
    if isinstance(exc, _UNAVAILABLE):
        log.warning("%s: storage unavailable: %s", method, exc)
        return status_pb2.Status(
            code=code_pb2.UNAVAILABLE, message="storage temporarily unavailable; retry"
        )
    log.exception("%s failed", method)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def _code_name(code: int) -> str:
    return code_pb2.Code.Name(code) if code in code_pb2.Code.values() else str(code)


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Identity, metrics and error mapping around every operator-facing RPC."""

    def __init__(
        self,
        authenticator: TokenAuthenticator,
        *,
        certificates: bool = False,
        limiter: RateLimiter | None = None,
        call_timeout: float = 30.0,
        countries: dict[str, str] | None = None,
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

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        """The time a unary call may take: the client's deadline, capped by the server's."""
        remaining = context.time_remaining()
        return self.call_timeout if remaining is None else min(remaining, self.call_timeout)

    @contextlib.asynccontextmanager
    async def _served(
        self,
        service: str,
        method: str,
        method_path: str,
        metadata: tuple[Any, ...],
        context: grpc.aio.ServicerContext,
        country: str | None = None,
    ) -> AsyncIterator[None]:
        """Identify the caller, then count, time and map the failure of one call."""
        RPC_STARTED.labels(service, method).inc()
        started = time.perf_counter()
        code = code_pb2.OK
        try:
            self.drain.arrived()
            if self.certificates:
                names = context.auth_context().get("x509_common_name")
                caller = await self.authenticator.authenticate_certificate(names)
            else:
                caller = await self.authenticator.authenticate(metadata)
            if country is not None and caller.country != country:
                raise PermissionDenied(
                    f"{service} serves the operators of {country}; {caller.operator} is under"
                    f" {caller.country}'s regulation"
                )
            CURRENT_CALLER.set(caller)
            self.limiter.acquire(caller.operator)
            yield
        except Exception as exc:  # every failure becomes a status, never a crash
            status = _failure_status(exc, method_path)
            code = status.code
            await abort(context, status, getattr(exc, "trailers", ()))
        finally:
            RPC_HANDLED.labels(service, method, _code_name(code)).inc()
            RPC_SECONDS.labels(service, method).observe(time.perf_counter() - started)

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
            service: str,
            method: str,
            method_path: str,
            metadata: tuple[Any, ...],
            context: grpc.aio.ServicerContext,
        ) -> contextlib.AbstractAsyncContextManager[None]:
            return self._served(service, method, method_path, metadata, context, country)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with served(service, method, method_path, metadata, context):
                    with self.drain.admitted():
                        async with asyncio.timeout(self._timeout(context)):
                            return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async with served(service, method, method_path, metadata, context):
                    async for item in self.drain.follow(request, inner_stream(request, context)):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            inner_client_stream = handler.stream_unary

            async def client_stream(
                request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> Any:
                async with served(service, method, method_path, metadata, context):
                    with self.drain.admitted():
                        async with asyncio.timeout(self._timeout(context)):
                            return await inner_client_stream(request_iterator, context)

            return grpc.stream_unary_rpc_method_handler(
                client_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
