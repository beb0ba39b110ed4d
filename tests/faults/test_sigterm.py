"""SIGTERM to a real `npc serve` under load from the SDK, then a new server on the same port: no
acknowledged or retried command is dropped, and the event stream ends with UNAVAILABLE and the
position to resume from, from which nothing is missed."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from npc.admin import seed_demo
from npc.core.clock import FakeClock
from npc.embedded import free_port
from npc.store.database import Database
from npc.v1 import events_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from npc_clients.client import resume_position
from tests.helpers import block, port_request, wait_serving

RECIPIENTS = ("claro", "entel", "bitel")


class Serve:
    """`npc serve` on fixed ports, one process at a time."""

    def __init__(self, database_url: str, redis_url: str, log_dir: Path) -> None:
        port = free_port()
        self.target = f"127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "NPC_DATABASE_URL": database_url,
            "NPC_REDIS_URL": redis_url,
            "NPC_REDIS_PREFIX": f"sigterm{port}",
            "NPC_DEV_MODE": "1",
            "NPC_GRPC_PORT": str(port),
            "NPC_HTTP_PORT": str(free_port()),
            "NPC_RATE_LIMIT": "0",
            "NPC_LAME_DUCK_SECONDS": "0.5",
            "NPC_DRAIN_SECONDS": "5",
        }
        self.log_dir = log_dir
        self.logs: list[Path] = []
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        path = self.log_dir / f"serve-{len(self.logs) + 1}.log"
        self.logs.append(path)
        with path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "npc", "serve", env=self.env, stdout=log, stderr=log
            )
        await wait_serving(self.target, self.process)

    async def terminate(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 20)


@pytest.fixture
async def serve(database_url, redis_server, tmp_path) -> AsyncIterator[Serve]:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        await seed_demo(db)
    finally:
        await db.close()
    server = Serve(database_url, redis_server.url, tmp_path)
    try:
        yield server
    finally:
        if server.process is not None and server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


@pytest.mark.slow  # starts its own PostgreSQL or server process, or measures memory
async def test_sigterm_under_load_drops_nothing_and_streams_resume(serve, database_url):
    await serve.start()
    wall = FakeClock(datetime.now(UTC))
    numbers = (str(n) for n in itertools.count(940_200_000))
    retried: dict[str, list[grpc.StatusCode]] = {}
    acked: dict[str, tuple[OperatorClient, pb.SubmitPortRequestRequest, pb.PortRequest]] = {}

    def on_retry(method: str, request: Any, error: grpc.aio.AioRpcError) -> None:
        retried.setdefault(getattr(request, "request_id", method), []).append(error.code())

    clients = {
        op: OperatorClient(
            serve.target, f"dev-token-{op}", operator=op, retry_for=25, on_retry=on_retry
        )
        for op in RECIPIENTS
    }
    regulator = OperatorClient(serve.target, "dev-token-osiptel", operator="osiptel")
    # The SDK's own subscription, which resumes by itself across the restart.
    watcher = OperatorClient(serve.target, "dev-token-osiptel", operator="osiptel", retry_for=25)
    watched: list[int] = []
    filing = asyncio.Event()
    filing.set()
    enough = asyncio.Event()  # `goal` requests acknowledged
    goal = 30

    async def file(client: OperatorClient) -> None:
        while filing.is_set():
            request = port_request(wall, numbers=[block(next(numbers))])
            reply = await client.call("SubmitPortRequest", request, timeout=5)
            acked[request.request_id] = (client, request, reply)
            if len(acked) >= goal:
                enough.set()

    try:
        head = (
            await regulator.events.GetStreamHead(
                events_pb2.GetStreamHeadRequest(), metadata=regulator.metadata
            )
        ).position
        stream = regulator.events.Subscribe(
            events_pb2.SubscribeRequest(from_position=head), metadata=regulator.metadata
        )
        received: list[int] = []

        async def follow() -> grpc.aio.AioRpcError:
            try:
                async for event in stream:
                    received.append(event.position)
            except grpc.aio.AioRpcError as error:
                return error
            raise AssertionError("the stream ended without a status")

        async def watch(start: int) -> None:
            async for event in watcher.subscribe(start):
                watched.append(event.position)

        following = asyncio.ensure_future(follow())
        watching = asyncio.ensure_future(watch(head))
        filers = [asyncio.ensure_future(file(c)) for c in clients.values() for _ in range(3)]
        await asyncio.wait_for(enough.wait(), 30)
        assert serve.process is not None
        serve.process.send_signal(signal.SIGTERM)
        ended = await asyncio.wait_for(following, 15)
        assert await serve.terminate() == 0
        before_restart = len(acked)

        # The stream ended with UNAVAILABLE, naming the last position it sent.
        assert ended.code() == grpc.StatusCode.UNAVAILABLE, ended
        resume = resume_position(ended)
        assert received and resume == received[-1]

        await serve.start()
        goal = before_restart + 30
        enough.clear()
        await asyncio.wait_for(enough.wait(), 30)
        filing.clear()
        await asyncio.gather(*filers)  # no call failed: each was answered, retried or not
        assert retried, "no call was refused or lost while the server stopped"
        assert {code for codes in retried.values() for code in codes} <= {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.CANCELLED,
        }

        # A retried request keeps its first answer: sent again, it gets the same one.
        for request_id in retried:
            client, request, reply = acked[request_id]
            assert await client.call("SubmitPortRequest", request) == reply

        # Every acknowledged request is stored, once.
        db = await Database.connect(database_url, min_size=1, max_size=2)
        try:
            async with db.pool.acquire() as conn:
                cases = {r["id"] for r in await conn.fetch("SELECT id FROM port_requests")}
                answered = {
                    r["request_id"]
                    for r in await conn.fetch(
                        "SELECT request_id FROM command_results WHERE status_code = 0"
                        " AND method = 'SubmitPortRequest'"
                    )
                }
        finally:
            await db.close()
        assert cases == {reply.id for _, _, reply in acked.values()}
        assert set(acked) <= answered

        # Resumed from the position the stream named, the regulator misses nothing.
        head = (
            await regulator.events.GetStreamHead(
                events_pb2.GetStreamHeadRequest(), metadata=regulator.metadata
            )
        ).position
        resumed = regulator.events.Subscribe(
            events_pb2.SubscribeRequest(from_position=resume), metadata=regulator.metadata
        )
        async for event in resumed:
            received.append(event.position)
            if event.position >= head:
                break
        resumed.cancel()
        assert received == list(range(received[0], head + 1))
        for _ in range(200):
            if watched and watched[-1] >= head:
                break
            await asyncio.sleep(0.05)
        watching.cancel()
        assert watched[: head - received[0] + 1] == received
    finally:
        filing.clear()
        for client in (*clients.values(), regulator, watcher):
            await client.close()
    drained = [
        line
        for path in serve.logs
        for line in path.read_text(errors="replace").splitlines()
        if "draining:" in line
    ]
    codes = [code.name for attempts in retried.values() for code in attempts]
    log_text = "".join(p.read_text(errors="replace") for p in serve.logs)
    assert "Traceback" not in log_text
    print(
        f"SIGTERM: {before_restart} acknowledged before the restart, {len(acked)} in all,"
        f" {len(retried)} requests retried ({', '.join(sorted(set(codes)))});"
        f" {drained[0].split('draining: ')[-1]}"
    )
