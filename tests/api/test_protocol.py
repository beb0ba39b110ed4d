"""Protocol hygiene of the listeners: connections that never speak are closed, malformed requests
are answered with a status (never UNKNOWN), counted, and logged without tracebacks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY

from npc.app import Clearinghouse
from npc.config import ConnectionSettings
from npc.v1 import events_pb2
from npc_clients import OperatorClient
from tests.helpers import field_violations, running, stream_head

# Short enough for a test; generous against a slow machine (the bound asserted is 5x).
TIMEOUT = 1.0
CLOSED_WITHIN = 5 * TIMEOUT + 2


@pytest.fixture
async def strict(settings, clock) -> AsyncIterator[Clearinghouse]:
    bounds = ConnectionSettings(
        handshake_timeout=TIMEOUT, header_timeout=TIMEOUT, idle_timeout=60, max_streams=2
    )
    async with running(replace(settings, connections=bounds), clock) as house:
        yield house


async def closed_after(port: int, send: bytes) -> float:
    """Seconds until the server closes a connection on which only `send` was written."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        if send:
            writer.write(send)
            await writer.drain()
        async with asyncio.timeout(CLOSED_WITHIN):
            while await reader.read(65536):
                pass  # whatever the server says before closing (an HTTP/2 GOAWAY, a 408)
        return time.monotonic() - started
    finally:
        writer.close()


def handled(method: str, code: str) -> float:
    """npc_rpc_handled_total of claro's calls of `method` answered with `code`."""
    value = REGISTRY.get_sample_value(
        "npc_rpc_handled_total",
        {"service": "PortabilityService", "method": method, "operator": "claro", "code": code},
    )
    return value or 0.0


async def test_grpc_closes_silent_connections_and_refuses_undecodable_requests(strict, caplog):
    # A TCP connection that never sends the HTTP/2 preface is closed after the handshake timeout.
    assert await closed_after(strict.grpc_port, b"") < CLOSED_WITHIN
    assert await closed_after(strict.grpc_port, b"PRI * HTTP/2.0\r\n") < CLOSED_WITHIN

    target = f"127.0.0.1:{strict.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        raw = channel.unary_unary(
            "/npc.v1.PortabilityService/GetPortRequest",
            request_serializer=None,
            response_deserializer=None,
        )
        before = handled("GetPortRequest", "INVALID_ARGUMENT")
        token = (("authorization", "Bearer dev-token-claro"),)
        with caplog.at_level(logging.WARNING):
            for _ in range(20):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await raw(b"\xff\xff\xff", metadata=token, timeout=5)  # not a protobuf
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(refused.value)
        assert handled("GetPortRequest", "INVALID_ARGUMENT") == before + 20
        # Logged once for the peer, without a traceback.
        undecodable = [r for r in caplog.records if "undecodable" in r.getMessage()]
        assert len(undecodable) == 1 and undecodable[0].exc_info is None
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # Nobody is told anything about a request before being identified.
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await raw(b"\xff\xff\xff", timeout=5)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # An operator's streams are bounded; the next is told when to retry, others are not.
    async with (
        OperatorClient(target, "dev-token-claro") as claro,
        OperatorClient(target, "dev-token-movistar") as movistar,
    ):
        open_ = [
            claro.events.Subscribe(events_pb2.SubscribeRequest(), metadata=claro.metadata)
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)  # both are being served
        third = claro.events.Subscribe(events_pb2.SubscribeRequest(), metadata=claro.metadata)
        assert await third.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = status_pb2.Status.FromString(
            dict(await third.trailing_metadata())["grpc-status-details-bin"]
        )
        assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
        assert await stream_head(movistar) >= 0
        for call in open_:
            call.cancel()
        await asyncio.sleep(0.2)  # the cancelled streams end on the server
        again = claro.events.Subscribe(events_pb2.SubscribeRequest(), metadata=claro.metadata)
        await asyncio.sleep(0.3)
        assert not again.done()  # a stream ended frees its place
        again.cancel()


async def test_http_closes_partial_requests_and_refuses_long_lines_quietly(strict, caplog):
    port = strict.http_port
    # A request head never finished is closed after the header timeout.
    assert await closed_after(port, b"GET / HTTP/1.1\r\nHost: x\r\n") < CLOSED_WITHIN
    assert await closed_after(port, b"") < CLOSED_WITHIN
    # A request line longer than the site reads is refused with 400, and no traceback is logged.
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), CLOSED_WITHIN)
            writer.close()
            assert status.split()[1].startswith(b"4"), status
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "malformed HTTP request" in r.getMessage()]) == 1
