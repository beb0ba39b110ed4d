"""Shared pytest fixtures.

Section 1 holds the embedded infrastructure servers, started once per test session.
Section 2 is for application fixtures (fresh databases, app instances, clients).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.embedded import PG_APP_USER, EmbeddedPostgres, EmbeddedRedis, free_port
from npc.store.database import Database
from npc_clients import OperatorClient
from tests.helpers import running

# The `npc serve` processes tests stop with SIGTERM skip the lame-duck period: no balancer watches
# them (tests/faults/test_sigterm.py sets its own).
os.environ.setdefault("NPC_LAME_DUCK_SECONDS", "0")

# ---------------------------------------------------------------------------
# Section 1: embedded servers (session scope, synchronous)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server for the whole session (fsync off). ``.dsn`` is the npc db."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), fsync=False)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis server for the whole session. ``.url`` is ``redis://127.0.0.1:PORT/0``."""
    rd = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    rd.start()
    try:
        yield rd
    finally:
        rd.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private Redis for one test, on a fixed port so it can be killed and started again."""
    rd = EmbeddedRedis(tmp_path / "own-redis", port=free_port())
    rd.start()
    try:
        yield rd
    finally:
        rd.stop()


# ---------------------------------------------------------------------------
# Section 2: application fixtures
# ---------------------------------------------------------------------------


_db_counter = itertools.count()

# Monday 23 November 2026, 10:00 in Lima (UTC-5): an ordinary business day.
DEFAULT_START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def template_database(pg_server: EmbeddedPostgres) -> str:
    """A database with every migration applied, cloned for each test."""
    dsn = pg_server.create_database("npc_template")

    async def migrate() -> None:
        db = await Database.connect(dsn, min_size=1, max_size=2)
        try:
            await db.migrate(grant_to=PG_APP_USER)  # owned by npc, used by npc_app too
        finally:
            await db.close()

    asyncio.run(migrate())
    return "npc_template"


@pytest.fixture
def database_url(pg_server: EmbeddedPostgres, template_database: str) -> Iterator[str]:
    """A fresh database for one test, cloned from the migrated template."""
    name = f"t{next(_db_counter)}"
    dsn = pg_server.create_database(name, template=template_database)
    yield dsn
    pg_server.drop_database(name)


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock every test drives."""
    return FakeClock(DEFAULT_START)


@pytest.fixture
def settings(database_url: str, redis_server: EmbeddedRedis) -> Settings:
    """Settings pointing at the test's database and the session's Redis, on free ports."""
    return Settings(
        database_url=database_url,
        redis_url=redis_server.url,
        redis_prefix=f"test{next(_db_counter)}",
        grpc_port=0,
        http_port=0,
        db_pool_size=10,
    )


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Clearinghouse]:
    """A running clearinghouse (real gRPC on loopback) with the demo market loaded."""
    async with running(settings, clock) as house:
        yield house


class Operators:
    """Clients for each demo operator, created on first use."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._clients: dict[str, OperatorClient] = {}

    def __getitem__(self, operator: str) -> OperatorClient:
        if operator not in self._clients:
            self._clients[operator] = OperatorClient(
                self.target, f"dev-token-{operator}", operator=operator
            )
        return self._clients[operator]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


@pytest.fixture
async def operators(app: Clearinghouse) -> AsyncIterator[Operators]:
    """gRPC clients of the demo operators (claro, movistar, entel, bitel, osiptel)."""
    ops = Operators(f"127.0.0.1:{app.grpc_port}")
    try:
        yield ops
    finally:
        await ops.close()
