"""Graceful shutdown: health turns NOT_SERVING first, calls in flight finish, then the server stops."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from npc.v1 import portability_pb2 as pb
from tests.helpers import port_request, rid


async def test_health_turns_not_serving_and_calls_in_flight_finish(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    filed = await claro.call("SubmitPortRequest", port_request(clock, donor="movistar"))
    health = health_pb2_grpc.HealthStub(claro.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    assert app.core is not None and app.grpc is not None
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        # A call in flight: the donor's answer waits for a case lock held here.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"portability:{filed.id}"
        )
        answering = asyncio.ensure_future(
            movistar.call(
                "AnswerPortRequest",
                pb.AnswerPortRequestRequest(
                    request_id=rid(), port_request_id=filed.id, accept=True
                ),
            )
        )
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(app.grpc.stop(grace=10))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # a load balancer watching health goes away; the grace is for real calls
        await asyncio.sleep(0.3)
        assert not answering.done()
    # The lock is released: the call in flight completes during the grace period.
    answered = await answering
    assert answered.id == filed.id
    await stopping
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claro.portability.GetPortRequest(
            pb.GetPortRequestRequest(port_request_id=filed.id), metadata=claro.metadata
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
