"""`npc admin add-reporting-operator` / `end-reporting-operator`, run in-process (`run_npc`)."""

from __future__ import annotations

import subprocess

import asyncpg
import pytest

from tests.helpers import run_npc


async def _npc(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await run_npc("admin", *args, env={"NPC_DATABASE_URL": dsn})


async def _rows(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


@pytest.mark.timeout(120)
async def test_reporting_operators_are_managed_with_npc_admin(database_url: str) -> None:
    assert (await _npc(database_url, "seed-demo")).returncode == 0
    done = await _npc(
        database_url,
        "add-reporting-operator",
        "claro",
        "--since",
        "2026-11-22",
        "--subscribers",
        "12000000",
    )
    assert done.returncode == 0, done.stderr
    assert "claro reports cancellations and plan migrations daily from 2026-11-22" in done.stdout
    deadlines = await _rows(
        database_url,
        "SELECT case_id, due_at FROM deadlines WHERE flow = 'cancellations'"
        " AND kind = 'daily_report'",
    )
    # Sunday 22's report is due on Monday 23 at 23:59 Lima.
    assert [(r["case_id"], r["due_at"].isoformat()) for r in deadlines] == [
        ("claro/2026-11-22", "2026-11-24T04:59:00+00:00")
    ]
    # Registering again does not start a second chain of deadlines.
    again = await _npc(database_url, "add-reporting-operator", "claro", "--since", "2026-11-22")
    assert again.returncode == 0
    count = await _rows(database_url, "SELECT count(*) AS n FROM deadlines")
    assert count[0]["n"] == 1

    ended = await _npc(database_url, "end-reporting-operator", "claro", "--last-date", "2026-12-31")
    assert ended.returncode == 0, ended.stderr
    assert "up to 2026-12-31" in ended.stdout
    obligation = await _rows(database_url, "SELECT * FROM reporting_operators")
    assert [
        (r["operator_id"], str(r["since"]), str(r["until"]), r["subscribers"]) for r in obligation
    ] == [("claro", "2026-11-22", "2026-12-31", 12_000_000)]

    not_reporting = await _npc(database_url, "end-reporting-operator", "entel")
    assert not_reporting.returncode == 1
    assert "not a reporting operator" in not_reporting.stderr
    unknown = await _npc(database_url, "add-reporting-operator", "nobody")
    assert unknown.returncode == 1
    assert "unknown operator" in unknown.stderr
    bad_date = await _npc(database_url, "add-reporting-operator", "claro", "--since", "22/11/2026")
    assert bad_date.returncode == 2
