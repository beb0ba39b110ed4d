"""A typed gRPC client for operator systems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from npc.v1 import (
    cancellations_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    inoperability_pb2_grpc,
    portability_pb2_grpc,
    registry_pb2_grpc,
    sgu_pb2_grpc,
    suspension_pb2_grpc,
)


class OperatorClient:
    """One operator's connection to the clearinghouse.

    Every mutating call needs a `request_id`; `new_request_id()` makes one. Keep it and reuse it
    when retrying: the clearinghouse answers a retry with the first answer.
    """

    def __init__(
        self,
        target: str,
        token: str = "",
        *,
        operator: str = "",
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """Connect to `target` with a bearer `token` (development) or TLS `credentials`.

        With mutual TLS the client certificate in `credentials` is the identity and no token is
        sent; see `with_certificate`.
        """
        self.operator = operator
        self.target = target
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        options = [("grpc.max_receive_message_length", 8 * 1024 * 1024)]
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

    @classmethod
    def with_certificate(
        cls, target: str, cert: str | Path, key: str | Path, ca: str | Path, *, operator: str = ""
    ) -> OperatorClient:
        """A client identified by its certificate (PEM files), trusting servers issued by `ca`."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(ca).read_bytes(),
            private_key=Path(key).read_bytes(),
            certificate_chain=Path(cert).read_bytes(),
        )
        return cls(target, operator=operator, credentials=credentials)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata identifying this operator."""
        return self._metadata

    @staticmethod
    def new_request_id() -> str:
        """A fresh idempotency key."""
        return uuid.uuid4().hex

    async def call(self, method: str, request: Any, *, timeout: float = 10.0) -> Any:
        """Call PortabilityService.`method` with this operator's identity."""
        return await getattr(self.portability, method)(
            request, metadata=self._metadata, timeout=timeout
        )

    async def subscribe(
        self, from_position: int = 0, flows: list[str] | None = None
    ) -> AsyncIterator[events_pb2.Event]:
        """Events addressed to this operator after `from_position`, then live."""
        call = self.events.Subscribe(
            events_pb2.SubscribeRequest(from_position=from_position, flows=flows or []),
            metadata=self._metadata,
        )
        async for event in call:
            yield event

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    async def __aenter__(self) -> OperatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
