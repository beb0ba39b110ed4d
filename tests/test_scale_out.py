"""Several server processes on one PostgreSQL and one Redis: each deadline fires once, every
stream is the same ordered gap-free log, and lookups agree.

The first test runs two complete clearinghouses in this process on one fake clock, so deadlines can
be driven; the second runs `npc serve --workers 2` as real processes sharing their ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from datetime import timedelta

import pytest

from npc.admin import seed_demo
from npc.app import Clearinghouse
from npc.core.clock import SystemClock
from npc.embedded import free_port
from npc.store.database import Database
from npc.v1 import registry_pb2
from npc_clients import OperatorClient
from tests.helpers import block, collect, port_end_to_end, port_request, wait_serving

pytestmark = pytest.mark.slow  # starts processes


async def test_two_servers_fire_each_deadline_once_and_serve_the_same_log(
    app, operators, clock, settings
):
    second = Clearinghouse(settings, clock)
    await second.start(serve_http=False)
    assert second.core is not None and app.core is not None
    try:
        there = {
            op: OperatorClient(f"127.0.0.1:{second.grpc_port}", f"dev-token-{op}", operator=op)
            for op in ("claro", "bitel", "movistar")
        }
        # Twenty requests filed half through each server; the donor never answers.
        filed = await asyncio.gather(
            *(
                (operators if i % 2 else there)["claro" if i % 4 < 2 else "bitel"].call(
                    "SubmitPortRequest",
                    port_request(clock, numbers=[block(str(940_000_100 + i))]),
                )
                for i in range(20)
            )
        )
        assert len({r.id for r in filed}) == 20
        clock.advance(timedelta(minutes=5))
        # Both servers' schedulers race for the same due deadlines.
        await asyncio.gather(app.core.deadlines.fire_due(), second.core.deadlines.fire_due())
        for house in (app, second):
            await house.core.settle()  # type: ignore[union-attr]
        async with app.core.db.pool.acquire() as conn:
            records = await conn.fetch(
                "SELECT case_id, count(*) AS n FROM compliance_records GROUP BY case_id"
            )
            fired = await conn.fetchval(
                "SELECT count(*) FROM deadlines WHERE fired_at IS NOT NULL AND kind = 'request.donor_answer'"
            )
            positions = [r["position"] for r in await conn.fetch("SELECT position FROM events")]
        assert {r["case_id"] for r in records} == {r.id for r in filed}
        assert all(r["n"] == 1 for r in records)  # one infraction per request, not one per server
        assert fired == 20
        assert sorted(positions) == list(range(1, len(positions) + 1))

        # A port executed by whichever server fires it; both answer lookups with the new operator.
        await port_end_to_end(
            app, clock, operators["claro"], operators["movistar"], [block("940000900")]
        )
        await second.core.settle()
        for client in (operators["entel"], there["bitel"]):
            reply = await client.registry.LookupNumbers(
                registry_pb2.LookupNumbersRequest(numbers=["940000900"]), metadata=client.metadata
            )
            assert reply.results[0].serving_operator == "claro"

        # The same stream, in the same order, from either server.
        await app.core.settle()
        await second.core.settle()
        end = app.core.hub.head
        assert second.core.hub.head == end
        # The head itself may be an event bitel is not told of (one for the port's parties only):
        # read up to the last one addressed to it, or each read waits out its timeout.
        async with app.core.db.pool.acquire() as conn:
            last = await conn.fetchval(
                "SELECT max(position) FROM events WHERE position <= $1"
                " AND (broadcast OR 'bitel' = ANY(audience))",
                end,
            )
        here = [e.position for e in await collect(operators["bitel"], 0, last)]
        away = [e.position for e in await collect(there["bitel"], 0, last)]
        assert here == away and here == sorted(set(here)) and here[-1] == last
        for client in there.values():
            await client.close()
    finally:
        await second.stop()


async def test_npc_serve_workers_share_the_ports_and_the_log(settings, tmp_path):
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "NPC_DATABASE_URL": settings.database_url,
        "NPC_REDIS_URL": settings.redis_url,
        "NPC_REDIS_PREFIX": settings.redis_prefix,
        "NPC_DEV_MODE": "1",
    }
    db = await Database.connect(settings.database_url or "", min_size=1, max_size=2)
    try:
        await db.migrate()
        await seed_demo(db)
    finally:
        await db.close()
    log = (tmp_path / "workers.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "npc",
        "serve",
        "--workers",
        "2",
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        env=env,
        stdout=log,
        stderr=log,
    )
    target = f"127.0.0.1:{grpc_port}"
    clients: list[OperatorClient] = []
    try:
        await wait_serving(target, process)

        def pids() -> set[int]:
            seen = set()
            for _ in range(40):  # new connections spread over the workers
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{http_port}/healthz", timeout=5
                ) as r:
                    seen.add(json.loads(r.read())["pid"])
            return seen

        for _ in range(50):
            found = await asyncio.to_thread(pids)
            if len(found) == 2:
                break
            await asyncio.sleep(0.2)
        assert len(found) == 2, "both workers answer on the shared port"

        # Many client connections (spread over both workers) file requests at once.
        clients = [OperatorClient(target, "dev-token-claro", operator="claro") for _ in range(6)]
        replies = await asyncio.gather(
            *(
                c.call(
                    "SubmitPortRequest",
                    port_request(SystemClock(), numbers=[block(str(940_000_500 + i))]),
                )
                for i, c in enumerate(clients * 3)
            )
        )
        assert len({r.id for r in replies}) == 18
        # Every connection sees the same gap-free log (its own slice of it, in order), once the
        # workers' sequencers have positioned everything committed.
        db = await Database.connect(settings.database_url or "", min_size=1, max_size=2)
        try:
            for _ in range(100):
                async with db.pool.acquire() as conn:
                    pending = await conn.fetchval(
                        "SELECT count(*) FROM events WHERE position IS NULL"
                    )
                if pending == 0:
                    break
                await asyncio.sleep(0.1)
            async with db.pool.acquire() as conn:
                expected = [
                    r["position"]
                    for r in await conn.fetch(
                        "SELECT position FROM events WHERE broadcast OR 'claro' = ANY(audience)"
                        " ORDER BY position"
                    )
                ]
        finally:
            await db.close()
        end = expected[-1]
        streams = [[e.position for e in await collect(c, 0, end, timeout=10)] for c in clients]
        assert all(s == expected for s in streams)
        assert {r.id for r in replies} <= {
            e.case_id for e in await collect(clients[0], 0, end, timeout=10)
        }
    finally:
        for client in clients:
            await client.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        log.close()
    assert process.returncode == 0
