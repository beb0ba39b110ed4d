"""Background loops survive whatever they meet, and health says what is true.

The supervisor is tested directly on a real event loop: a loop whose passes raise arbitrary
exceptions keeps running and reports them; a loop that ends makes the process unhealthy. Then one
server on its own PostgreSQL, under a few clients filing port requests, goes through fast
restarts, immediate stops and terminated sessions of PostgreSQL, again and again: after each
fault the donor's 5-minute deadline of a new request still fires, and gRPC health is NOT_SERVING
exactly while PostgreSQL is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import replace
from datetime import timedelta

import aiohttp
import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from npc.admin import seed_demo
from npc.app import Clearinghouse
from npc.core.supervision import Supervisor, passed
from npc.embedded import EmbeddedPostgres
from npc.store.database import Database
from npc.v1 import portability_pb2
from npc_clients import OperatorClient
from tests.helpers import block, port_request

# Each fault is repeated this many times against the same server and PostgreSQL.
REPEATS = int(os.environ.get("NPC_FAULT_REPEATS", "10"))
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# One wait for every recovery: generous, the machine is shared and slow.
BOUND = 30.0


async def until(condition, what: str, limit: float = BOUND) -> None:
    """Poll `condition()` until true, failing after `limit` seconds."""
    try:
        async with asyncio.timeout(limit):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {limit} s: {what}") from None


# ---------------------------------------------------------------------- the supervisor alone


def _sample(name: str, loop: str) -> float:
    return REGISTRY.get_sample_value(name, {"loop": loop}) or 0.0


async def test_a_loop_raising_anything_keeps_running_and_reports_it(caplog):
    supervisor = Supervisor(backoff_first=0.001, backoff_max=0.01)
    # Two failure streaks: one of three different exceptions (the asyncpg error that killed the
    # deadline scheduler, a bug, a cancellation nobody asked for), one of a single error.
    script: list[BaseException | None] = [
        None,
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        RuntimeError("a bug"),
        asyncio.CancelledError(),
        None,
        None,
        KeyError("another bug"),
        None,
    ]
    bodies = 0

    async def body() -> None:
        nonlocal bodies
        bodies += 1
        while True:
            outcome = script.pop(0) if script else None
            if outcome is not None:
                raise outcome
            passed()
            await asyncio.sleep(0)

    caplog.set_level(logging.INFO, logger="npc.core.supervision")
    task = supervisor.start("unit-flaky", body)
    state = supervisor.loops["unit-flaky"]
    await until(lambda: not script and state.passes >= 10, "the loop ran past its failures", 10)
    assert not task.done() and state.alive and not supervisor.dead
    assert bodies == 5  # started once and again after each of the 4 failures
    assert (state.failures, state.restarts, state.streak) == (4, 4, 0)
    assert state.last_error == "KeyError: 'another bug'"
    report = supervisor.report()["unit-flaky"]
    assert report["alive"] and report["failures"] == 4 and report["failing"] == 0
    assert _sample("npc_loop_failures_total", "unit-flaky") == 4
    assert _sample("npc_loop_restarts_total", "unit-flaky") == 4
    # One line when a streak starts (a traceback only for what is not a storage outage), one
    # when it ends: not one per failure.
    lines = [r for r in caplog.records if r.name == "npc.core.supervision"]
    failing = [r for r in lines if "failing" in r.getMessage()]
    recovered = [r for r in lines if "recovered" in r.getMessage()]
    assert [r.getMessage().split(":")[1].strip() for r in failing] == [
        "InternalClientError",
        "KeyError",
    ]
    assert failing[0].exc_info is None and failing[1].exc_info is not None
    assert len(recovered) == 2 and "3 failed pass(es)" in recovered[0].getMessage()
    await supervisor.stop()
    assert task.cancelled() and not supervisor.dead


@pytest.mark.parametrize("ending", ["returns", "SystemExit"])
async def test_a_loop_that_ends_makes_the_process_unhealthy(ending):
    supervisor = Supervisor(backoff_first=0.001)
    deaths: list[str] = []
    supervisor.on_death(lambda state: deaths.append(state.name))
    name = f"unit-ends-{ending}"

    async def body() -> None:
        passed()
        await asyncio.sleep(0)
        if ending == "SystemExit":
            raise SystemExit(3)

    task = supervisor.start(name, body)
    await asyncio.wait_for(task, 5)  # ends, without unwinding the event loop
    assert deaths == [name]
    assert [state.name for state in supervisor.dead] == [name]
    report = supervisor.report()[name]
    assert not report["alive"] and report["ended"].startswith(
        "returned" if ending == "returns" else "stopped by SystemExit"
    )
    assert _sample("npc_loop_up", name) == 0
    await supervisor.stop()


async def test_a_job_that_returns_is_done_not_dead():
    supervisor = Supervisor(backoff_first=0.001)
    attempts = 0

    async def repair() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("Redis is away")
        passed()

    await asyncio.wait_for(supervisor.start("unit-job", repair, job=True), 5)
    await asyncio.sleep(0)  # the done callback forgets it
    assert attempts == 3 and "unit-job" not in supervisor.loops and not supervisor.dead


async def test_a_connection_that_raised_internal_client_error_is_not_reused(database_url):
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        async with db.pool.acquire() as conn:
            healthy = await conn.fetchval("SELECT pg_backend_pid()")
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == healthy  # kept: it is fine
        with pytest.raises(asyncpg.InternalClientError):
            async with db.pool.acquire() as conn:
                raise asyncpg.InternalClientError("another operation (2) is in progress")
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != healthy  # a new session
    finally:
        await db.close()


async def test_a_dead_loop_takes_the_server_out_of_service(app):
    assert app.core is not None and app.grpc is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == SERVING

        async def ends() -> None:
            return

        app.core.supervisor.start("test-ends", ends)
        await asyncio.wait_for(app.failed.wait(), 10)  # what makes `npc serve` exit 1

        async def not_serving() -> bool:
            reply = await health.Check(health_pb2.HealthCheckRequest())
            return reply.status == NOT_SERVING

        async with asyncio.timeout(10):
            while True:
                if await not_serving():
                    break
                await asyncio.sleep(0.05)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.http_port}/healthz") as response,
    ):
        report = await response.json()
    assert response.status == 503
    assert report["status"] == "unavailable" and report["dead_loops"] == ["test-ends"]
    assert report["checks"]["postgres"] == "ok"
    assert report["loops"]["deadlines"]["alive"]


# ---------------------------------------------------------------------- PostgreSQL faults


class HealthWatch:
    """Every status gRPC health reports, as it reports it (grpc.health.v1 Watch)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.seen: list[int] = []
        self._call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        self.task = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        async for reply in self._call:
            self.seen.append(reply.status)

    def now(self) -> int | None:
        return self.seen[-1] if self.seen else None

    def close(self) -> None:
        self._call.cancel()
        self.task.cancel()


@pytest.mark.slow  # starts its own PostgreSQL or server process, or measures memory
async def test_deadlines_keep_firing_through_postgresql_faults(
    own_postgres, redis_server, settings, clock
):
    house = Clearinghouse(
        replace(
            settings, database_url=own_postgres.dsn, redis_url=redis_server.url, call_timeout=5
        ),
        clock,
    )
    # The embedded server commits asynchronously (fsync off): an immediate stop, a crash, would
    # lose the last acknowledged transactions, which this test counts.
    conn = await asyncpg.connect(own_postgres.dsn)
    await conn.execute("ALTER DATABASE npc SET synchronous_commit = on")
    await conn.close()
    await house.start()
    try:
        await _through_faults(house, own_postgres, clock)
    finally:
        await house.stop()


async def _through_faults(house: Clearinghouse, own_postgres: EmbeddedPostgres, clock) -> None:
    assert house.core is not None and house.authenticator is not None
    core = house.core
    core.health.period = 0.2  # probe often: the outages here last a second or two
    await seed_demo(core.db, now=clock.now())
    await house.authenticator.load()
    target = f"127.0.0.1:{house.grpc_port}"
    acked: list[str] = []
    stop = asyncio.Event()
    numbers = iter(range(941_000_000, 941_900_000))
    async with (
        OperatorClient(target, "dev-token-claro", operator="claro") as claro,
        OperatorClient(target, "dev-token-movistar", operator="movistar") as movistar,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        watch = HealthWatch(claro.channel)

        async def file() -> str | None:
            """File a port request, retrying while the storage is away (None: the test ends)."""
            while not stop.is_set():
                request = port_request(clock, numbers=[block(str(next(numbers)))])
                try:
                    reply = await claro.call("SubmitPortRequest", request, timeout=5)
                except grpc.aio.AioRpcError as error:
                    assert error.code() in {
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                    }, error
                    await asyncio.sleep(0.05)
                    continue
                acked.append(reply.id)
                return str(reply.id)
            return None

        async def load() -> None:
            while not stop.is_set():
                await file()
                await asyncio.sleep(0.02)

        async def state_of(request_id: str) -> int | None:
            try:
                reply = await movistar.call(
                    "GetPortRequest",
                    portability_pb2.GetPortRequestRequest(port_request_id=request_id),
                    timeout=5,
                )
            except grpc.aio.AioRpcError:
                return None  # the storage is still coming back
            return int(reply.state)

        async def deadline_fires() -> None:
            """A request filed now is accepted by the donor's silence once its 5 minutes pass:
            the background scheduler (not the test) fires the deadline."""
            request_id = await file()
            assert request_id is not None
            assert await state_of(request_id) == portability_pb2.PORT_REQUEST_STATE_AWAITING_DONOR
            clock.advance(timedelta(minutes=5, seconds=1))
            async with asyncio.timeout(BOUND):
                while True:
                    if await state_of(request_id) == portability_pb2.PORT_REQUEST_STATE_ADMISSIBLE:
                        break
                    await asyncio.sleep(0.05)

        async def healthz() -> tuple[int, dict]:
            async with http.get(f"http://127.0.0.1:{house.http_port}/healthz") as response:
                return response.status, await response.json()

        async def terminate_sessions() -> int:
            conn = await asyncpg.connect(own_postgres.dsn)
            try:
                return int(
                    await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            finally:
                await conn.close()

        workers = [asyncio.ensure_future(load()) for _ in range(3)]
        try:
            await until(lambda: watch.now() == SERVING, "health starts SERVING")
            await deadline_fires()
            fired_before = _fired()

            for _ in range(REPEATS):
                await asyncio.to_thread(own_postgres.restart, "fast")
                await deadline_fires()
                await until(lambda: watch.now() == SERVING, "SERVING after the restart")

            for _ in range(REPEATS):
                await asyncio.to_thread(own_postgres.stop, "immediate")
                await until(lambda: watch.now() == NOT_SERVING, "NOT_SERVING while PG is down")
                status, report = await healthz()
                assert status == 503 and report["checks"]["postgres"].startswith("error")
                await asyncio.to_thread(own_postgres.start)
                await until(lambda: watch.now() == SERVING, "SERVING once PG is back")
                await deadline_fires()

            flips = len(watch.seen)
            for _ in range(REPEATS):
                assert await terminate_sessions() > 0
                await deadline_fires()
            # Sessions terminated under a running server: PostgreSQL stayed up, so did health.
            assert watch.seen[flips:] == [] and watch.now() == SERVING
        finally:
            stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
            watch.close()

        # Every deadline fired, with the clock one last time past every request's 5 minutes.
        clock.advance(timedelta(minutes=5, seconds=1))
        await until(lambda: _fired() - fired_before >= 3 * REPEATS, "deadlines fired")
        await until_all_fired(core.db, acked)
        # Nothing left overdue (requests committed but not acknowledged, their answer lost in a
        # fault, fire too), as the next probes see it.
        for _ in range(int(BOUND / 0.1)):
            status, report = await healthz()
            if report["oldest_overdue_deadline_seconds"] == 0:
                break
            await asyncio.sleep(0.1)
        assert report["oldest_overdue_deadline_seconds"] == 0
        assert status == 200 and report["serving"] and not report["dead_loops"]
        assert report["checks"] == {"postgres": "ok", "redis": "ok"}
        loops = report["loops"]
        assert {"deadlines", "sequencer", "event-hub", "notifier", "notifications"} <= set(loops)
        assert all(loop["alive"] for loop in loops.values())
        print(
            f"faults: {REPEATS} fast restarts, {REPEATS} immediate stops, {REPEATS} session"
            f" terminations; {len(acked)} requests acknowledged,"
            f" {int(_fired() - fired_before)} donor deadlines fired after the first fault;"
            f" sequencer failures {loops['sequencer']['failures']}"
        )
        # The faults were felt (the sequencer polls PostgreSQL every 0.1 s), and survived.
        assert loops["sequencer"]["failures"] > 0 and loops["sequencer"]["restarts"] > 0


def _fired() -> float:
    return (
        REGISTRY.get_sample_value(
            "npc_deadlines_fired_total", {"flow": "portability", "kind": "request.donor_answer"}
        )
        or 0.0
    )


async def until_all_fired(db: Database, acked: list[str]) -> None:
    """Wait until every acknowledged request's donor deadline has fired."""
    waiting: list[dict] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(BOUND):
            while True:
                async with db.pool.acquire() as conn:
                    rows = await conn.fetch(
                        "SELECT case_id, fired_at, attempts, last_error, next_attempt_at"
                        " FROM deadlines WHERE flow = 'portability'"
                        " AND kind = 'request.donor_answer' AND case_id = ANY($1::text[])",
                        acked,
                    )
                waiting = [dict(r) for r in rows if r["fired_at"] is None]
                if len(rows) == len(set(acked)) and not waiting:
                    return
                await asyncio.sleep(0.1)
    raise AssertionError(f"{len(waiting)} deadline(s) of {len(acked)} never fired: {waiting[:3]}")
