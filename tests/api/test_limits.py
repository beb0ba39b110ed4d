"""Limits: per-operator rates, the longest a call may run, and the largest message accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from google.rpc import error_details_pb2

from npc.api.limits import RateLimiter
from npc.app import Clearinghouse
from npc.core.errors import ResourceExhausted
from npc.v1 import portability_pb2 as pb
from npc.v1 import registry_pb2
from npc_clients import OperatorClient
from tests.helpers import port_request, rid, rpc_error_details, running, stream_head


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    limiter = RateLimiter(rate=2, burst=3)
    for _ in range(3):
        limiter.acquire("claro", now=100.0)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.acquire("claro", now=100.0)
    assert refused.value.retry_after == pytest.approx(0.5)
    limiter.acquire("movistar", now=100.0)  # another operator has its own bucket
    limiter.acquire("claro", now=100.5)  # one call's worth refilled
    with pytest.raises(ResourceExhausted):
        limiter.acquire("claro", now=100.5)
    # 0: no limit.
    assert RateLimiter(rate=0, burst=0).acquire("claro") is None  # type: ignore[func-returns-value]


@pytest.fixture
async def limited(settings, clock) -> AsyncIterator[Clearinghouse]:
    overrides = replace(settings, rate_limit=0.001, rate_burst=5, call_timeout=0.5)
    async with running(overrides, clock, serve_http=False) as house:
        yield house


async def test_an_operator_over_its_rate_is_told_when_to_retry_and_others_go_on(limited):
    target = f"127.0.0.1:{limited.grpc_port}"
    async with (
        OperatorClient(target, "dev-token-claro") as claro,
        OperatorClient(target, "dev-token-movistar") as movistar,
    ):
        for _ in range(5):
            await stream_head(claro)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream_head(claro)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry = error_details_pb2.RetryInfo()
        assert any(
            d.Unpack(retry)
            for d in rpc_error_details(refused.value).details
            if d.Is(retry.DESCRIPTOR)
        )
        assert retry.retry_delay.seconds > 0
        assert await stream_head(movistar) >= 1


async def test_a_call_that_takes_too_long_ends_with_deadline_exceeded_and_changes_nothing(
    limited, clock
):
    target = f"127.0.0.1:{limited.grpc_port}"
    async with (
        OperatorClient(target, "dev-token-claro") as claro,
        # No retries: the test reads the server's own answer to the first attempt (the SDK
        # would send a DEADLINE_EXCEEDED again with the same request id).
        OperatorClient(target, "dev-token-movistar", retry_for=0) as movistar,
    ):
        filed = await claro.call("SubmitPortRequest", port_request(clock, donor="movistar"))
        answer = pb.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=filed.id, accept=True
        )
        assert limited.core is not None
        # Someone else holds the case (as a long command would): the answer cannot get its lock.
        async with limited.core.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"portability:{filed.id}"
            )
            with pytest.raises(grpc.aio.AioRpcError) as late:
                await movistar.call("AnswerPortRequest", answer, timeout=10)
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        got = await claro.call("GetPortRequest", pb.GetPortRequestRequest(port_request_id=filed.id))
        assert got.state == filed.state  # nothing happened
        # The same request id, retried once the case is free, is answered normally.
        retried = await movistar.call("AnswerPortRequest", answer)
        assert retried.state != filed.state


async def test_a_message_over_the_size_limit_is_refused(app, operators):
    client = operators["entel"]
    huge = registry_pb2.LookupNumbersRequest(numbers=["9" * 15] * 600_000)  # about 10 MB
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.registry.LookupNumbers(huge, metadata=client.metadata, timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
