"""Shared pytest fixtures.

Section 1 holds the embedded infrastructure servers, started once per test session.
Section 2 is for application fixtures (fresh databases, app instances, clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from npc.admin import seed_demo
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.calendar import CALENDARS
from npc.core.clock import FakeClock
from npc.embedded import (
    PG_APP_USER,
    EmbeddedPostgres,
    EmbeddedRedis,
    create_database_sql,
    drop_database_sql,
    free_port,
)
from npc.store.database import Database
from npc_clients import OperatorClient
from tests.helpers import Handlers, running

# The `npc serve` processes tests stop with SIGTERM skip the lame-duck period: no balancer watches
# them (tests/faults/test_sigterm.py sets its own).
os.environ.setdefault("NPC_LAME_DUCK_SECONDS", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` run first (otherwise in collection order): with xdist handing out tests
    as workers free up, the long ones start early and the short ones fill in, so the workers end
    together instead of one finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


@pytest.fixture(scope="session")
def market_template(pg_server: EmbeddedPostgres, template_database: str) -> str:
    """The migrated template with the demo market loaded: what a running clearinghouse starts
    from in most tests (loading it once here, not in every test)."""
    dsn = pg_server.create_database("npc_market", template=template_database)

    async def load() -> None:
        db = await Database.connect(dsn, min_size=1, max_size=2)
        try:
            await seed_demo(db, now=DEFAULT_START)
        finally:
            await db.close()

    asyncio.run(load())
    return "npc_market"


class DatabaseSupply:
    """Fresh clones of the template, made one test ahead in a background thread.

    A clone costs PostgreSQL a few hundred milliseconds for every test that touches the database;
    made while the previous test runs (mostly waiting on its server), it is ready when asked for.
    Drops go through the same thread, after the test. The thread keeps one connection open for
    all of them (on its own event loop): a fresh one per clone and per drop cost ~15 ms of CPU
    each, between the client and the server's new backend.
    """

    def __init__(self, pg: EmbeddedPostgres, template: str) -> None:
        self.pg = pg
        self.template = template
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._spare: Future[tuple[str, str]] | None = None
        # Both used only in the thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._admin: asyncpg.Connection | None = None

    def _execute(self, statement: Callable[[int], str]) -> None:
        """Run `statement(server major version)` on the thread's connection."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._execute_async(statement))

    async def _execute_async(self, statement: Callable[[int], str]) -> None:
        if self._admin is None or self._admin.is_closed():
            self._admin = await asyncpg.connect(self.pg.dsn_for("postgres"))
        await self._admin.execute(statement(self._admin.get_server_version().major))

    def _clone(self) -> tuple[str, str]:
        name = f"t{next(_db_counter)}"
        self._execute(lambda major: create_database_sql(name, self.template, major))
        return name, self.pg.dsn_for(name)

    def _drop(self, name: str) -> None:
        self._execute(lambda _: drop_database_sql(name))

    def _close_connection(self) -> None:
        if self._loop is None:
            return
        if self._admin is not None:
            self._loop.run_until_complete(self._admin.close())
        self._loop.close()

    def take(self) -> tuple[str, str]:
        """(name, DSN) of a fresh database no one else has used; the next one starts now."""
        ready = self._spare or self._thread.submit(self._clone)
        self._spare = self._thread.submit(self._clone)
        return ready.result()

    def drop(self, name: str) -> None:
        """Drop `name` in the background (its test is over)."""
        self._thread.submit(self._drop, name)

    def close(self) -> None:
        """Finish the pending work; drop the spare clone."""
        if self._spare is not None:
            name, _ = self._spare.result()
            self._thread.submit(self._drop, name)
            self._spare = None
        self._thread.submit(self._close_connection)
        self._thread.shutdown(wait=True)


@pytest.fixture(scope="session")
def database_supply(
    pg_server: EmbeddedPostgres, template_database: str
) -> Iterator[DatabaseSupply]:
    """The session's source of fresh databases (see `DatabaseSupply`)."""
    supply = DatabaseSupply(pg_server, template_database)
    try:
        yield supply
    finally:
        supply.close()


@pytest.fixture(scope="session")
def market_supply(pg_server: EmbeddedPostgres, market_template: str) -> Iterator[DatabaseSupply]:
    """Fresh databases holding the demo market (see `DatabaseSupply`)."""
    supply = DatabaseSupply(pg_server, market_template)
    try:
        yield supply
    finally:
        supply.close()


@pytest.fixture
def database_url(database_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh, empty database for one test, cloned from the migrated template."""
    name, dsn = database_supply.take()
    yield dsn
    database_supply.drop(name)


@pytest.fixture
def market_database_url(market_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh database for one test with the demo market already loaded."""
    name, dsn = market_supply.take()
    yield dsn
    market_supply.drop(name)


@pytest.fixture
def restored_calendars() -> Iterator[None]:
    """The process-wide calendars' decrees as they were before the test, whatever it decreed and
    however it ended (a failing test must not leave a holiday for the next ones)."""
    before = {country: calendar.decrees for country, calendar in CALENDARS.items()}
    try:
        yield
    finally:
        for country, calendar in CALENDARS.items():
            calendar.apply_decrees(before[country])


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock every test drives."""
    return FakeClock(DEFAULT_START)


@pytest.fixture
def settings(market_database_url: str, redis_server: EmbeddedRedis) -> Settings:
    """Settings pointing at the test's database (the demo market loaded) and the session's
    Redis, on free ports."""
    return Settings(
        database_url=market_database_url,
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


@contextlib.asynccontextmanager
async def started_handlers(settings: Settings, clock: FakeClock) -> AsyncIterator[Handlers]:
    """The core and every flow started on `settings`, listening nowhere (`Handlers`)."""
    house = Clearinghouse(settings, clock)
    await house.start(listen=False)
    try:
        assert house.core is not None
        await house.core.settle()
        yield Handlers(house.core, clock)
    finally:
        await house.stop()


@pytest.fixture
async def handlers(settings: Settings, clock: FakeClock) -> AsyncIterator[Handlers]:
    """The core and every flow with the demo market, no gRPC or HTTP: for tests of a flow's
    rules as its handler applies them (`Handlers`)."""
    async with started_handlers(settings, clock) as started:
        yield started


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


# One clearinghouse for the cases of a module that leave no trace (refusals store nothing, each
# case compares what it reads before and after): one database clone and one start per module and
# xdist worker instead of one per case. Their tests are marked
# `@pytest.mark.asyncio(loop_scope="module")`; nothing they do may move `module_clock`.


@pytest.fixture(scope="module")
def module_clock() -> FakeClock:
    """The fake clock of the module's shared clearinghouse, at `DEFAULT_START`."""
    return FakeClock(DEFAULT_START)


@pytest.fixture(scope="module")
def module_settings(
    market_supply: DatabaseSupply, redis_server: EmbeddedRedis
) -> Iterator[Settings]:
    """Like `settings`, for the whole module: a fresh database with the demo market."""
    name, dsn = market_supply.take()
    yield Settings(
        database_url=dsn,
        redis_url=redis_server.url,
        redis_prefix=f"module{next(_db_counter)}",
        grpc_port=0,
        http_port=0,
        db_pool_size=10,
    )
    market_supply.drop(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_handlers(
    module_settings: Settings, module_clock: FakeClock
) -> AsyncIterator[Handlers]:
    """`handlers` shared by the module's traceless cases."""
    async with started_handlers(module_settings, module_clock) as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_app(
    module_settings: Settings, module_clock: FakeClock
) -> AsyncIterator[Clearinghouse]:
    """`app` shared by the module's traceless cases that need the wire."""
    async with running(module_settings, module_clock) as house:
        yield house


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_operators(module_app: Clearinghouse) -> AsyncIterator[Operators]:
    """`operators` of `module_app`."""
    ops = Operators(f"127.0.0.1:{module_app.grpc_port}")
    try:
        yield ops
    finally:
        await ops.close()
