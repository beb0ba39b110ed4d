"""A synchronous client for operator systems without an asyncio loop (gevent, Locust, scripts).

The same identity options, stubs and retry policy as `OperatorClient`, on grpc's blocking
channel: under gevent, call ``grpc.experimental.gevent.init_gevent()`` before creating one so
that its calls yield to other greenlets.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc

from npc.v1 import (
    cancellations_pb2_grpc,
    compliance_pb2_grpc,
    events_pb2_grpc,
    inoperability_pb2_grpc,
    portability_pb2_grpc,
    pqr_pb2_grpc,
    registry_pb2_grpc,
    sgu_pb2_grpc,
    suspension_pb2_grpc,
)
from npc_clients.client import (
    CHANNEL_OPTIONS,
    RETRY_FIRST_DELAY,
    RETRY_FOR,
    RETRY_MAX_DELAY,
    RETRYABLE_UNARY,
    bearer,
    certificate_credentials,
    jittered,
)

log = logging.getLogger("npc_clients")

Request = TypeVar("Request", contravariant=True)
Response = TypeVar("Response", covariant=True)
Req = TypeVar("Req")
Resp = TypeVar("Resp")
SyncRetried = Callable[[str, Any, grpc.RpcError], None]


class UnaryRpc(Protocol[Request, Response]):
    """What `call` needs of a stub's unary method: grpc's ``UnaryUnaryMultiCallable[Request,
    Response]`` is one, so a call is typed by the stub (where grpc's types are installed)."""

    def __call__(
        self, request: Request, *, metadata: tuple[tuple[str, str], ...], timeout: float
    ) -> Response: ...


def status_of(error: grpc.RpcError) -> grpc.StatusCode | None:
    """The status code of a failed blocking call (None if grpc gave none)."""
    code = getattr(error, "code", None)
    return code() if callable(code) else None


class SyncOperatorClient:
    """One operator's blocking connection to the clearinghouse.

    ``client.call(client.portability.SubmitPortRequest, request)`` sends the request with this
    operator's identity and retries UNAVAILABLE, DEADLINE_EXCEEDED and a server-side CANCELLED
    (a blocking call cannot be cancelled locally) with the same request, so the same request id,
    for up to `retry_for` seconds; the clearinghouse answers a retry with the first answer.
    """

    def __init__(
        self,
        target: str,
        token: str = "",
        *,
        operator: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        retry_for: float = RETRY_FOR,
        on_retry: SyncRetried | None = None,
    ) -> None:
        """Connect to `target` with a bearer `token` (development) or TLS `credentials` (see
        `with_certificate`: the client certificate is the identity, no token is sent)."""
        self.operator = operator
        self.target = target
        self.retry_for = retry_for
        self.on_retry = on_retry
        self._closed = False
        self._metadata = bearer(token)
        options = list(CHANNEL_OPTIONS)
        self.channel = (
            grpc.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(target, options=options)
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
        cls,
        target: str,
        cert: str | Path,
        key: str | Path,
        ca: str | Path,
        *,
        operator: str = "",
        retry_for: float = RETRY_FOR,
    ) -> SyncOperatorClient:
        """A client identified by its certificate (PEM files), trusting servers issued by `ca`."""
        credentials = certificate_credentials(cert, key, ca)
        return cls(target, operator=operator, credentials=credentials, retry_for=retry_for)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata identifying this operator (for streaming calls made on the stubs)."""
        return self._metadata

    @staticmethod
    def new_request_id() -> str:
        """A fresh idempotency key."""
        return uuid.uuid4().hex

    def call(self, rpc: UnaryRpc[Req, Resp], request: Req, *, timeout: float = 10.0) -> Resp:
        """Call the unary `rpc` (a stub's method: typed by the stub) with this operator's
        identity, retrying as the class says; `timeout` is each attempt's deadline."""
        give_up = time.monotonic() + self.retry_for
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                response: Resp = rpc(request, metadata=self._metadata, timeout=timeout)
                return response
            except grpc.RpcError as error:
                pause = jittered(delay)
                if (
                    self._closed
                    or status_of(error) not in RETRYABLE_UNARY
                    or time.monotonic() + pause > give_up
                ):
                    raise
                self._retrying(rpc, request, error)
            time.sleep(pause)
            delay = min(delay * 2, RETRY_MAX_DELAY)

    def _retrying(self, rpc: Any, request: Any, error: grpc.RpcError) -> None:
        method = getattr(rpc, "_method", b"")
        name = method.decode() if isinstance(method, bytes) else str(method)
        code = status_of(error)
        log.info("%s: %s; retrying", name, code.name if code is not None else error)
        if self.on_retry is not None:
            self.on_retry(name, request, error)

    def close(self) -> None:
        """Close the channel."""
        self._closed = True
        self.channel.close()

    def __enter__(self) -> SyncOperatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
