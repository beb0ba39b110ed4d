"""Graceful shutdown: health turns NOT_SERVING first; new calls are refused with UNAVAILABLE and
streams end with their resume position while the calls in flight finish; then the server stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from npc.store.database import case_lock_key, case_lock_sql
from npc.v1 import events_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients.client import resume_position
from tests.helpers import block, error_info, port_request, rid


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


async def test_drain_finishes_queued_calls_refuses_new_ones_and_ends_streams(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    filed = [
        await claro.call("SubmitPortRequest", port_request(clock, numbers=[block(n)]))
        for n in ("940000001", "940000002", "940000003", "940000004")
    ]
    assert app.core is not None and app.grpc is not None
    await app.core.settle()
    head = app.core.hub.head
    regulator = operators["osiptel"]  # receives every event
    stream = regulator.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=head - 2), metadata=regulator.metadata
    )
    received = [await stream.read(), await stream.read()]
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        # Calls in flight queued on case locks held here, as behind a slow command.
        for case in filed:
            await conn.execute(case_lock_sql("$1"), case_lock_key("portability", case.id))
        answers = [
            asyncio.ensure_future(
                movistar.call(
                    "AnswerPortRequest",
                    pb.AnswerPortRequestRequest(
                        request_id=rid(), port_request_id=case.id, accept=True
                    ),
                )
            )
            for case in filed
        ]
        await until(lambda: app.grpc.drain.in_flight == len(filed))
        stopping = asyncio.ensure_future(app.grpc.stop(grace=10))
        await until(lambda: app.grpc.drain.draining)

        # The stream ends at once, saying where to resume: after the last event it sent.
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert resume_position(ended.value) == received[-1].position == head
        info = error_info(ended.value)
        assert info.reason == "SERVER_SHUTTING_DOWN"
        assert info.metadata["resume_position"] == str(head)

        # A new call is refused without running: a client retries it elsewhere or later.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await claro.portability.SubmitPortRequest(
                port_request(clock, numbers=[block("940000009")]), metadata=claro.metadata
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(refused.value).reason == "SERVER_SHUTTING_DOWN"
        assert not any(a.done() for a in answers)
    # The locks are released: every call in flight completes, then the server stops.
    accepted = await asyncio.gather(*answers)
    assert [a.id for a in accepted] == [c.id for c in filed]
    await stopping
    async with app.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM port_requests") == len(filed)
        stored = await conn.fetchval(
            "SELECT count(*) FROM command_results WHERE caller = 'movistar' AND status_code = 0"
        )
    assert stored == len(filed)


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait (polling) until `condition` holds, for up to `limit` seconds."""
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_a_burst_of_calls_at_stop_is_answered_never_cancelled(app, operators, clock):
    """90 calls sent at once, the server stopped while they queue: each is answered (OK and
    committed) or refused with UNAVAILABLE without running; none is CANCELLED (grpc.aio's own
    stop cancels the calls still queued in the core, most of such a burst)."""
    claro = operators["claro"]
    requests = [port_request(clock, numbers=[block(str(940_100_000 + i))]) for i in range(90)]

    async def send(request: pb.SubmitPortRequestRequest) -> grpc.StatusCode:
        try:
            await claro.portability.SubmitPortRequest(request, metadata=claro.metadata, timeout=20)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    sending = [asyncio.ensure_future(send(r)) for r in requests]
    await asyncio.sleep(0.1)
    assert app.grpc is not None and app.core is not None
    await app.grpc.stop(5.0)
    codes = await asyncio.gather(*sending)
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    async with app.core.db.pool.acquire() as conn:
        answered = {
            r["request_id"]: r["status_code"]
            for r in await conn.fetch("SELECT request_id, status_code FROM command_results")
        }
    ok = {r.request_id for r, code in zip(requests, codes, strict=True) if code.name == "OK"}
    assert answered == dict.fromkeys(ok, 0), codes  # the refused ones never ran
    print(f"burst at stop: {len(ok)} OK, {len(requests) - len(ok)} UNAVAILABLE, 0 CANCELLED")
