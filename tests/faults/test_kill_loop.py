"""The server SIGKILLed at random points, again and again, under load and while it fires
deadlines: after each restart nothing acknowledged is lost, every case is in a correct state, each
deadline has fired exactly once and the event log is gap-free with its hash chain intact.

`NPC_FAULT_KILLS` sets how many kills each phase makes (default 4 in the suite).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from npc.admin import seed_demo
from npc.core.clock import FakeClock
from npc.core.verify import verify_log
from npc.embedded import free_port
from npc.store.database import Database
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import block, port_request, wait_serving

pytestmark = pytest.mark.slow  # starts processes

KILLS = int(os.environ.get("NPC_FAULT_KILLS", "4"))
ROOT = Path(__file__).resolve().parents[2]


class Server:
    """One generation of the server process at a time, on fixed ports."""

    def __init__(self, database_url: str, redis_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "NPC_DATABASE_URL": database_url,
            "NPC_REDIS_URL": redis_url,
            "NPC_REDIS_PREFIX": f"kill{self.port}",
            "NPC_GRPC_PORT": str(self.port),
            "NPC_HTTP_PORT": str(free_port()),
            "NPC_RATE_LIMIT": "0",
            # The tests' own package, before what the environment puts on the path (a worktree's
            # sources rather than the installed checkout's).
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.log_dir = log_dir
        self.generation = 0
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, offset: float = 0.0) -> None:
        self.generation += 1
        log = (self.log_dir / f"server-{self.generation}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.serve_offset",
            "--offset",
            str(offset),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        log.close()
        await wait_serving(self.target, self.process)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)
        assert self.process.returncode == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


@pytest.fixture
async def server(database_url, redis_server, tmp_path) -> AsyncIterator[Server]:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        await db.migrate()
        await seed_demo(db)
    finally:
        await db.close()
    running = Server(database_url, redis_server.url, tmp_path)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            await running.stop()


async def _file_until_killed(
    server: Server,
    acked: dict[str, pb.PortRequest],
    unknown: dict[str, pb.SubmitPortRequestRequest],
    numbers: list[str],
) -> None:
    """File requests from four concurrent clients until the server dies under them."""
    wall = FakeClock(datetime.now(UTC))

    async def client() -> None:
        # No retries: a call whose server died is recorded as unknown, and checked after restart.
        async with OperatorClient(server.target, "dev-token-claro", retry_for=0) as claro:
            while numbers:
                request = port_request(wall, numbers=[block(numbers.pop())])
                try:
                    reply = await claro.call("SubmitPortRequest", request, timeout=5)
                except grpc.aio.AioRpcError as error:
                    if error.code() in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                    ):
                        unknown[request.request_id] = request  # sent, answer lost with the server
                        return
                    raise
                acked[request.request_id] = reply

    await asyncio.gather(*(client() for _ in range(4)))


async def test_sigkill_under_load_and_while_firing_deadlines_loses_nothing(server, database_url):
    rng = random.Random(20261123)
    acked: dict[str, pb.PortRequest] = {}
    unknown: dict[str, pb.SubmitPortRequestRequest] = {}
    numbers = [str(940_100_000 + i) for i in range(100_000)]
    rng.shuffle(numbers)
    kills = 0

    # Phase 1: killed at random points while four clients file requests.
    for _ in range(KILLS):
        await server.start()
        filing = asyncio.ensure_future(_file_until_killed(server, acked, unknown, numbers))
        await asyncio.sleep(rng.uniform(0.2, 1.2))
        await server.kill()
        kills += 1
        await filing
    # Requests whose answers were lost: retried with the same request id, they are answered once.
    await server.start()
    async with OperatorClient(server.target, "dev-token-claro") as claro:
        for request_id, request in list(unknown.items()):
            acked[request_id] = await claro.call("SubmitPortRequest", request, timeout=10)
    await server.kill()
    kills += 1
    assert len(acked) >= 8

    # Phase 2: a server six minutes ahead finds every donor deadline due; killed while firing them.
    for _ in range(KILLS):
        await server.start(offset=360)
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        await server.kill()
        kills += 1
    await server.start(offset=360)
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        for _ in range(300):  # the last generation finishes the work by itself
            async with db.pool.acquire() as conn:
                pending = await conn.fetchval(
                    "SELECT count(*) FROM deadlines WHERE kind = 'request.donor_answer'"
                    " AND fired_at IS NULL AND cancelled_at IS NULL"
                )
                unsequenced = await conn.fetchval(
                    "SELECT count(*) FROM events WHERE position IS NULL"
                )
            if pending == 0 and unsequenced == 0:
                break
            await asyncio.sleep(0.1)
        assert (pending, unsequenced) == (0, 0)
        ids = {reply.id for reply in acked.values()}
        assert len(ids) == len(acked)  # a retried request id never made a second request
        async with db.pool.acquire() as conn:
            requests = {
                r["id"]: r
                for r in await conn.fetch("SELECT id, state, donor_silent FROM port_requests")
            }
            fired = await conn.fetch(
                "SELECT case_id, count(*) AS n FROM deadlines WHERE kind = 'request.donor_answer'"
                " AND fired_at IS NOT NULL GROUP BY case_id"
            )
            records = await conn.fetch(
                "SELECT case_id, count(*) AS n FROM compliance_records GROUP BY case_id"
            )
            positions = [r["position"] for r in await conn.fetch("SELECT position FROM events")]
            head = await conn.fetchval("SELECT position FROM event_head")
        assert ids <= set(requests)  # nothing acknowledged is lost
        for case_id in ids:
            assert requests[case_id]["state"] == "admissible", case_id
            assert requests[case_id]["donor_silent"], case_id
        assert {r["case_id"]: r["n"] for r in fired} == dict.fromkeys(requests, 1)
        assert {r["case_id"]: r["n"] for r in records} == dict.fromkeys(requests, 1)
        assert sorted(positions) == list(range(1, head + 1))
        assert (await verify_log(db)).intact
    finally:
        await db.close()
        await server.stop()
    print(
        f"survived {kills} SIGKILLs with {len(ids)} requests ({len(unknown)} answers lost and retried)"
    )
