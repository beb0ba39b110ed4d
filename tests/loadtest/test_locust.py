"""The Locust load test, headless for a few seconds against a real `npc serve` process: every
RPC it drives shows in the percentile CSV, without failures, and the ports it files are answered."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from npc.admin import seed_demo
from npc.embedded import EmbeddedPostgres, EmbeddedRedis
from npc.store.database import Database
from tests.helpers import server_process

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
RPCS = (
    "SubmitPortRequest",
    "GetPortRequest",
    "AnswerPortRequest",
    "GetStreamHead",
    "Subscribe (delivery)",
    "LookupNumber",
    "LookupNumbers",
)


@pytest.fixture
def load_database(pg_server: EmbeddedPostgres, template_database: str) -> Iterator[str]:
    """A fresh migrated database for the server under load."""
    name = f"load_{os.getpid()}"
    dsn = pg_server.create_database(name, template=template_database)
    yield dsn
    pg_server.drop_database(name)


async def seed(dsn: str) -> None:
    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        assert await seed_demo(db)
    finally:
        await db.close()


@pytest.mark.timeout(120)
async def test_locust_headless_run_reports_every_rpc(
    load_database: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    await seed(load_database)
    results = tmp_path / "results" / "run"
    async with server_process(
        load_database, redis_server.url, tmp_path / "serve.log", redis_prefix="load"
    ) as target:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "8s",
            "--host",
            target,
            "--csv",
            str(results),
            "--only-summary",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    with (tmp_path / "results" / "run_stats.csv").open(newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    for rpc in RPCS:
        assert rpc in rows, (rpc, text)
        assert rows[rpc]["Type"] == "grpc"
        assert int(rows[rpc]["Request Count"]) > 0, (rpc, text)
        assert float(rows[rpc]["95%"]) > 0, (rpc, text)
    total = rows["Aggregated"]
    assert int(total["Failure Count"]) <= int(total["Request Count"]) // 100, text
    # The donors answered what the recipients filed, through the real server.
    conn = await asyncpg.connect(load_database)
    try:
        filed = await conn.fetchval("SELECT count(*) FROM port_requests")
        answered = await conn.fetchval(
            "SELECT count(*) FROM port_requests WHERE answered_at IS NOT NULL"
        )
    finally:
        await conn.close()
    # Users stopped mid-call may have filed a request Locust did not count.
    filed_counted = int(rows["SubmitPortRequest"]["Request Count"])
    assert filed_counted <= filed <= filed_counted + 10, (filed, filed_counted)
    # Those filed in the last moments may still wait for their answer.
    assert answered >= filed * 0.7, (filed, answered)
    assert answered >= int(rows["AnswerPortRequest"]["Request Count"]) - 10, (answered, text)
