"""`npc admin add-reporting-operator` / `end-reporting-operator`, as subprocesses."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest

from npc.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow  # starts processes

_names = itertools.count()


@pytest.fixture
def admin_database(pg_server: EmbeddedPostgres, template_database: str) -> Iterator[str]:
    """A fresh migrated database for the commands."""
    name = f"cancel_admin_{os.getpid()}_{next(_names)}"
    dsn = pg_server.create_database(name, template=template_database)
    yield dsn
    pg_server.drop_database(name)


def _npc(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    env["NPC_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "npc", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _rows(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


@pytest.mark.timeout(120)
def test_reporting_operators_are_managed_with_npc_admin(admin_database: str) -> None:
    assert _npc(admin_database, "seed-demo").returncode == 0
    done = _npc(
        admin_database,
        "add-reporting-operator",
        "claro",
        "--since",
        "2026-11-22",
        "--subscribers",
        "12000000",
    )
    assert done.returncode == 0, done.stderr
    assert "claro reports cancellations and plan migrations daily from 2026-11-22" in done.stdout
    deadlines = asyncio.run(
        _rows(
            admin_database,
            "SELECT case_id, due_at FROM deadlines WHERE flow = 'cancellations'"
            " AND kind = 'daily_report'",
        )
    )
    # Sunday 22's report is due on Monday 23 at 23:59 Lima.
    assert [(r["case_id"], r["due_at"].isoformat()) for r in deadlines] == [
        ("claro/2026-11-22", "2026-11-24T04:59:00+00:00")
    ]
    # Registering again does not start a second chain of deadlines.
    assert (
        _npc(admin_database, "add-reporting-operator", "claro", "--since", "2026-11-22").returncode
        == 0
    )
    count = asyncio.run(_rows(admin_database, "SELECT count(*) AS n FROM deadlines"))
    assert count[0]["n"] == 1

    ended = _npc(admin_database, "end-reporting-operator", "claro", "--last-date", "2026-12-31")
    assert ended.returncode == 0, ended.stderr
    assert "up to 2026-12-31" in ended.stdout
    obligation = asyncio.run(_rows(admin_database, "SELECT * FROM reporting_operators"))
    assert [
        (r["operator_id"], str(r["since"]), str(r["until"]), r["subscribers"]) for r in obligation
    ] == [("claro", "2026-11-22", "2026-12-31", 12_000_000)]

    not_reporting = _npc(admin_database, "end-reporting-operator", "entel")
    assert not_reporting.returncode == 1
    assert "not a reporting operator" in not_reporting.stderr
    unknown = _npc(admin_database, "add-reporting-operator", "nobody")
    assert unknown.returncode == 1
    assert "unknown operator" in unknown.stderr
    bad_date = _npc(admin_database, "add-reporting-operator", "claro", "--since", "22/11/2026")
    assert bad_date.returncode == 2
