"""Shared pytest fixtures.

Section 1 holds the embedded infrastructure servers, started once per test session.
Section 2 is for application fixtures (fresh databases, app instances, clients).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from npc.embedded import EmbeddedPostgres, EmbeddedRedis

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


# ---------------------------------------------------------------------------
# Section 2: application fixtures
# ---------------------------------------------------------------------------
