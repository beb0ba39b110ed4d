"""Fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from npc.embedded import EmbeddedPostgres, free_port


@pytest.fixture
async def own_postgres(tmp_path) -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL of the test's own, which the test may stop, restart or crash."""
    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port(), fsync=False)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
