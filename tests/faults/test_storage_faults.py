"""Storage going away under load: PostgreSQL restarted (clients see UNAVAILABLE at worst and the
server recovers by itself), Redis killed (lookups and streams go on from PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest

from npc.admin import seed_demo
from npc.app import Clearinghouse
from npc.v1 import events_pb2, registry_pb2
from npc_clients import OperatorClient
from tests.helpers import block, port_end_to_end, port_request, running

pytestmark = pytest.mark.slow  # starts processes

ACCEPTABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


async def test_postgresql_restarted_under_load(own_postgres, redis_server, settings, clock):
    house = Clearinghouse(
        replace(
            settings, database_url=own_postgres.dsn, redis_url=redis_server.url, call_timeout=5
        ),
        clock,
    )
    await house.start(serve_http=False)
    assert house.core is not None and house.authenticator is not None
    await seed_demo(house.core.db, now=clock.now())
    await house.authenticator.load()
    acked: list[str] = []
    failures: list[grpc.StatusCode] = []
    stop = asyncio.Event()
    numbers = iter(range(940_200_000, 940_300_000))
    try:
        # No SDK retries: the statuses the server answers during the outage are what is checked.
        async with OperatorClient(
            f"127.0.0.1:{house.grpc_port}", "dev-token-claro", retry_for=0
        ) as claro:

            async def load() -> None:
                while not stop.is_set():
                    request = port_request(clock, numbers=[block(str(next(numbers)))])
                    try:
                        reply = await claro.call("SubmitPortRequest", request, timeout=5)
                        acked.append(reply.id)
                    except grpc.aio.AioRpcError as error:
                        failures.append(error.code())
                        await asyncio.sleep(0.05)

            workers = [asyncio.ensure_future(load()) for _ in range(3)]
            await asyncio.sleep(0.5)
            before_outage = len(acked)
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_postgres.start)
            # The server recovers by itself: calls succeed again without a restart.
            during = len(acked)
            for _ in range(200):
                if len(acked) > during + 5:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*workers)
        assert before_outage > 0
        assert len(acked) > during + 5, "no call succeeded after PostgreSQL came back"
        assert failures, "the outage was not noticed"
        assert set(failures) <= ACCEPTABLE, failures
        async with house.core.db.pool.acquire() as conn:
            stored = {r["id"] for r in await conn.fetch("SELECT id FROM port_requests")}
        assert set(acked) <= stored  # acknowledged before, during or after: all there
    finally:
        await house.stop()


async def test_with_redis_killed_lookups_and_streams_go_on(settings, clock, own_redis):
    redis = own_redis
    async with running(replace(settings, redis_url=redis.url), clock, serve_http=False) as house:
        assert house.core is not None
        target = f"127.0.0.1:{house.grpc_port}"
        async with (
            OperatorClient(target, "dev-token-claro", operator="claro") as claro,
            OperatorClient(target, "dev-token-movistar", operator="movistar") as movistar,
            OperatorClient(target, "dev-token-entel", operator="entel") as entel,
        ):
            start = house.core.hub.head
            stream = entel.events.Subscribe(
                events_pb2.SubscribeRequest(from_position=start), metadata=entel.metadata
            )
            redis.kill()
            await port_end_to_end(house, clock, claro, movistar, [block("940000777")])
            await house.core.settle()
            # The stream keeps delivering (PostgreSQL polling replaces Redis wake-ups).
            seen = []
            async with asyncio.timeout(10):
                async for event in stream:
                    seen.append(event.position)
                    if event.type == "registry.numbers_changed":
                        break
            assert seen == sorted(set(seen)) and seen[0] > start
            reply = await entel.registry.LookupNumbers(
                registry_pb2.LookupNumbersRequest(numbers=["940000777"]), metadata=entel.metadata
            )
            assert reply.results[0].serving_operator == "claro"
            stream.cancel()
