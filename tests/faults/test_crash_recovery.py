"""A server killed between acknowledging a request and its deadline loses nothing: after a restart
the request is there and its deadline still fires, once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import pytest

from npc.admin import DEMO_OPERATORS, DEMO_RANGES, add_range, upsert_operator
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.embedded import free_port
from npc.store.database import Database
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import block, port_request, wait_serving

pytestmark = pytest.mark.slow  # starts processes


async def _seed(dsn: str) -> None:
    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        for spec in DEMO_OPERATORS:
            await upsert_operator(db, spec)
        for operator, service, first, last in DEMO_RANGES:
            await add_range(db, operator, service, first, last)
    finally:
        await db.close()


@pytest.mark.timeout(90)
async def test_deadline_fires_after_sigkill_and_restart(database_url, redis_server, tmp_path):
    await _seed(database_url)
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "NPC_DATABASE_URL": database_url,
        "NPC_REDIS_URL": redis_server.url,
        "NPC_REDIS_PREFIX": "crash",
        "NPC_DEV_MODE": "1",
        "NPC_GRPC_PORT": str(grpc_port),
        "NPC_HTTP_PORT": str(http_port),
    }
    log = (tmp_path / "server.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "npc", "serve", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    target = f"127.0.0.1:{grpc_port}"
    try:
        await wait_serving(target, server)
        async with OperatorClient(target, "dev-token-claro") as claro:
            wall = FakeClock(datetime.now(UTC))
            filed = await claro.call(
                "SubmitPortRequest", port_request(wall, numbers=[block("940000123")])
            )
        assert filed.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    finally:
        server.send_signal(signal.SIGKILL)
        await asyncio.wait_for(server.wait(), 10)
        log.close()
    assert server.returncode == -signal.SIGKILL

    # The restarted server wakes up six minutes later: the donor's 5 minutes have passed.
    donor_deadline = filed.donor_deadline.ToDatetime(tzinfo=UTC)
    clock = FakeClock(donor_deadline + timedelta(minutes=1))
    settings = Settings(
        database_url=database_url,
        redis_url=redis_server.url,
        redis_prefix="crash",
        grpc_port=0,
        http_port=0,
        db_pool_size=5,
    )
    house = Clearinghouse(settings, clock)
    await house.start()
    try:
        assert house.core is not None
        async with OperatorClient(f"127.0.0.1:{house.grpc_port}", "dev-token-claro") as claro:
            state = None
            for _ in range(100):  # the background scheduler re-claims on start; no manual firing
                current = await claro.call(
                    "GetPortRequest", pb.GetPortRequestRequest(port_request_id=filed.id)
                )
                state = current.state
                if state == pb.PORT_REQUEST_STATE_ADMISSIBLE:
                    break
                await asyncio.sleep(0.1)
            assert state == pb.PORT_REQUEST_STATE_ADMISSIBLE
            assert current.donor_silent
        await house.core.settle()
        async with house.core.db.pool.acquire() as conn:
            records = await conn.fetch(
                "SELECT operator_id, infraction FROM compliance_records WHERE case_id = $1",
                filed.id,
            )
            fired = await conn.fetchval(
                "SELECT count(*) FROM deadlines WHERE case_id = $1 AND kind = 'request.donor_answer'"
                " AND fired_at IS NOT NULL",
                filed.id,
            )
        assert [(r["operator_id"], r["infraction"]) for r in records] == [("movistar", 21)]
        assert fired == 1
    finally:
        await house.stop()
