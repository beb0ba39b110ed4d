"""A typed gRPC client for operator systems."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from npc.v1 import (
    cancellations_pb2_grpc,
    compliance_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    inoperability_pb2_grpc,
    portability_pb2_grpc,
    pqr_pb2_grpc,
    registry_pb2_grpc,
    sgu_pb2_grpc,
    suspension_pb2_grpc,
)
from npc_clients.positions import PositionStore
from npc_clients.session import Session

log = logging.getLogger("npc_clients")

# What a call may get from a server that is stopping or restarting, or from no server at all: the
# call did not run (or ran and its answer is stored), so the same request, with the same request
# id, is sent again. A CANCELLED the client did not ask for comes from the server side (a call
# cancelled locally raises asyncio.CancelledError instead).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# A unary call whose deadline passed may have run or not: the same request id makes sending it
# again safe (the clearinghouse answers a retry with the first answer).
RETRYABLE_UNARY = RETRYABLE | {grpc.StatusCode.DEADLINE_EXCEEDED}
# Backoff between attempts: the first pause, doubled up to the longest, each drawn in 0.5-1.5x of
# it so that clients cut off together do not come back together.
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
RETRY_FOR = 20.0  # seconds a call keeps retrying by default
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    # A session or subscription stays open for hours: a ping unanswered within 20 s, every 60 s,
    # finds a dead connection (the server accepts pings every 30 s).
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def jittered(delay: float) -> float:
    """The pause before the next attempt, for a backoff step of `delay` seconds."""
    return delay * (0.5 + random.random())


Request = TypeVar("Request")
Response = TypeVar("Response")
# The trailer with which a stopping server ends an event stream: subscribe again from there.
RESUME_POSITION_KEY = "npc-resume-position"

Retried = Callable[[str, Any, grpc.aio.AioRpcError], None]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a bearer `token` (development); none with mutual TLS."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def certificate_credentials(
    cert: str | Path, key: str | Path, ca: str | Path
) -> grpc.ChannelCredentials:
    """TLS credentials identified by a client certificate (PEM files), trusting servers issued
    by `ca`."""
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes(),
        certificate_chain=Path(cert).read_bytes(),
    )


def resume_position(error: grpc.aio.AioRpcError) -> int | None:
    """The position a stream ended by a stopping server says to resume from, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == RESUME_POSITION_KEY:
            return int(value)
    return None


class OperatorClient:
    """One operator's connection to the clearinghouse.

    Every mutating call needs a `request_id`; `new_request_id()` makes one. Keep it and reuse it
    when retrying: the clearinghouse answers a retry with the first answer. `call` and
    `subscribe` retry by themselves what a stopping or restarting server answers (UNAVAILABLE, a
    server-side CANCELLED) for up to `retry_for` seconds, with backoff; `on_retry(method,
    request, error)` hears of each retry.
    """

    def __init__(
        self,
        target: str,
        token: str = "",
        *,
        operator: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        retry_for: float = RETRY_FOR,
        on_retry: Retried | None = None,
    ) -> None:
        """Connect to `target` with a bearer `token` (development) or TLS `credentials`.

        With mutual TLS the client certificate in `credentials` is the identity and no token is
        sent; see `with_certificate`.
        """
        self.operator = operator
        self.target = target
        self.retry_for = retry_for
        self.on_retry = on_retry
        self._closed = False
        self._metadata = bearer(token)
        options = list(CHANNEL_OPTIONS)
        self.channel = (
            grpc.aio.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.aio.insecure_channel(target, options=options)
        )
        self.portability = portability_pb2_grpc.PortabilityServiceStub(self.channel)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.returns = registry_pb2_grpc.ReturnsServiceStub(self.channel)
        self.suspension = suspension_pb2_grpc.SuspensionServiceStub(self.channel)
        self.inoperability = inoperability_pb2_grpc.InoperabilityServiceStub(self.channel)
        self.sgu = sgu_pb2_grpc.SguServiceStub(self.channel)
        self.cancellations = cancellations_pb2_grpc.CancellationsServiceStub(self.channel)
        self.pqr = pqr_pb2_grpc.PqrServiceStub(self.channel)
        self.compliance = compliance_pb2_grpc.ComplianceServiceStub(self.channel)

    @classmethod
    def with_certificate(
        cls, target: str, cert: str | Path, key: str | Path, ca: str | Path, *, operator: str = ""
    ) -> OperatorClient:
        """A client identified by its certificate (PEM files), trusting servers issued by `ca`."""
        return cls(target, operator=operator, credentials=certificate_credentials(cert, key, ca))

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata identifying this operator."""
        return self._metadata

    @staticmethod
    def new_request_id() -> str:
        """A fresh idempotency key."""
        return uuid.uuid4().hex

    async def call(self, method: str, request: Any, *, timeout: float = 10.0) -> Any:
        """Call PortabilityService.`method` with this operator's identity (retrying, see
        `unary`)."""
        return await self.unary(getattr(self.portability, method), request, timeout=timeout)

    async def unary(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        *,
        timeout: float = 10.0,
    ) -> Response:
        """Call the unary `rpc` (a stub's method, e.g. ``client.unary(client.sgu.GetProblem,
        request)``: typed by the stub) with this operator's identity. UNAVAILABLE, a server-side
        CANCELLED and DEADLINE_EXCEEDED are retried with the same request (the same request id)
        for up to `retry_for` seconds, `timeout` being each attempt's deadline."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                response: Response = await rpc(request, metadata=self._metadata, timeout=timeout)
                return response
            except grpc.aio.AioRpcError as error:
                pause = jittered(delay)
                if (
                    self._closed
                    or error.code() not in RETRYABLE_UNARY
                    or loop.time() + pause > give_up
                ):
                    raise
                self._retrying(rpc, request, error)
            await asyncio.sleep(pause)
            delay = min(delay * 2, RETRY_MAX_DELAY)

    def _retrying(self, rpc: Any, request: Any, error: grpc.aio.AioRpcError) -> None:
        method = getattr(rpc, "_method", b"")
        name = method.decode() if isinstance(method, bytes) else str(method)
        log.info("%s: %s (%s); retrying", name, error.code().name, error.details())
        if self.on_retry is not None:
            self.on_retry(name, request, error)

    async def subscribe(
        self,
        from_position: int = 0,
        flows: list[str] | None = None,
        *,
        with_canonical_content: bool = False,
    ) -> AsyncIterator[events_pb2.Event]:
        """Events addressed to this operator after `from_position`, then live. A stream the
        server ends or loses (UNAVAILABLE, CANCELLED) is resumed from the last event received,
        with backoff, for up to `retry_for` seconds without an event. `with_canonical_content`
        asks for the bytes each hash covers, to verify the chain (`npc_clients.chain`)."""
        position = from_position
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        delay = RETRY_FIRST_DELAY
        while True:
            request = events_pb2.SubscribeRequest(
                from_position=position,
                flows=flows or [],
                with_canonical_content=with_canonical_content,
            )
            call = self.events.Subscribe(request, metadata=self._metadata)
            try:
                async for event in call:
                    position = event.position
                    give_up, delay = loop.time() + self.retry_for, RETRY_FIRST_DELAY
                    yield event
                return
            except grpc.aio.AioRpcError as error:
                pause = jittered(delay)
                if self._closed or error.code() not in RETRYABLE or loop.time() + pause > give_up:
                    raise
                # Every event up to the server's resume position was received: the same place.
                position = max(position, resume_position(error) or 0)
                self._retrying(self.events.Subscribe, request, error)
            finally:
                call.cancel()
            await asyncio.sleep(pause)
            delay = min(delay * 2, RETRY_MAX_DELAY)

    def subscription(self, store: PositionStore, flows: list[str] | None = None) -> Subscription:
        """Events addressed to this operator after the last position `store` holds, resumed
        the same way across reconnects (`subscribe`) and, through `store`, across restarts of
        the operator's system: call `Subscription.processed` once an event is handled."""
        return Subscription(self, store, flows)

    def session(
        self,
        store: PositionStore | None = None,
        flows: list[str] | None = None,
        *,
        from_position: int | None = None,
    ) -> Session:
        """A session stream (``async with client.session(...) as session``): every command on
        one call, results matched by request id, and the events after `store`'s position (or
        `from_position`; neither: no events), resumed across reconnects. See
        `npc_clients.session`."""
        return Session(self, store=store, flows=flows, from_position=from_position)

    async def close(self) -> None:
        """Close the channel."""
        self._closed = True
        await self.channel.close()

    async def __aenter__(self) -> OperatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Subscription:
    """An event subscription whose progress survives the operator's system restarting.

    ::

        subscription = client.subscription(FilePositionStore("npc.position"))
        async for event in subscription:
            handle(event)
            subscription.processed(event)

    It starts after the position the store holds. Saving is the caller's call, after handling:
    an event received but not marked processed before a crash comes again after the restart.
    """

    def __init__(
        self, client: OperatorClient, store: PositionStore, flows: list[str] | None
    ) -> None:
        self.client = client
        self.store = store
        self.flows = flows
        self.position = store.load()

    def __aiter__(self) -> AsyncIterator[events_pb2.Event]:
        return self.client.subscribe(self.position, self.flows)

    def processed(self, event: events_pb2.Event | int) -> None:
        """Record that `event` (or every event up to a position) was handled."""
        position = event if isinstance(event, int) else event.position
        if position > self.position:
            self.store.save(position)
            self.position = position
