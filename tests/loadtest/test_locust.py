"""The Locust load test, headless for a few seconds against a real `npc serve` process (with bearer
tokens, and with mutual TLS): every RPC it drives shows in the percentile CSV, without failures,
and the ports it files are answered; against a market that is not the demo's, read from the
registry snapshot, paced by `--rate`."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from npc.admin import DEMO_OPERATORS, OperatorSpec, seed_demo, upsert_operator
from npc.api.tls import CA_CERT, issue_certificate, make_ca
from npc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from npc.flows.registry.importer import import_plan, import_ported
from npc.store.database import Database
from tests.helpers import server_process, wait_serving

pytestmark = pytest.mark.slow  # starts processes

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
# Long enough for every RPC to be driven and the pacing to show (unpaced calls outnumber the
# paced bound by half); each second more is a second of suite time per run.
RUN_SECONDS = 5
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


async def wait_tls_serving(target: str, pki: Path, process: asyncio.subprocess.Process) -> None:
    """Wait until the TLS server at `target` reports SERVING (as operator claro)."""
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(),
        (pki / "claro.key").read_bytes(),
        (pki / "claro.crt").read_bytes(),
    )
    await wait_serving(target, process, credentials=credentials)


@contextlib.asynccontextmanager
async def tls_server_process(
    database_url: str, redis_url: str, pki: Path, log_path: Path
) -> AsyncIterator[str]:
    """`npc serve` with mutual TLS (no development tokens); yields its gRPC target."""
    grpc_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    env.update(
        NPC_DATABASE_URL=database_url,
        NPC_REDIS_URL=redis_url,
        NPC_REDIS_PREFIX="load-tls",
        NPC_GRPC_PORT=str(grpc_port),
        NPC_HTTP_PORT=str(free_port()),
        NPC_TLS_CERT=str(pki / "server.crt"),
        NPC_TLS_KEY=str(pki / "server.key"),
        NPC_TLS_CLIENT_CA=str(pki / CA_CERT),
    )
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc",
            "serve",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        target = f"127.0.0.1:{grpc_port}"
        try:
            await wait_tls_serving(target, pki, process)
            yield target
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 15)


async def run_locust(target: str, results: Path, env: dict[str, str], *options: str) -> str:
    """Locust headless for RUN_SECONDS against `target` (CSV files at `results`); its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-r",
        "10",
        "-t",
        f"{RUN_SECONDS}s",
        "--host",
        target,
        "--csv",
        str(results),
        "--only-summary",
        *options,
        cwd=ROOT,
        env=env,
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
    return text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("identity", ["token", "mutual-tls"])
async def test_locust_headless_run_reports_every_rpc(
    identity: str, load_database: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    await seed(load_database)
    results = tmp_path / "results" / "run"
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    if identity == "token":
        server = server_process(
            load_database, redis_server.url, tmp_path / "serve.log", redis_prefix="load"
        )
    else:
        pki = tmp_path / "pki"
        pki.mkdir()
        make_ca(pki)
        issue_certificate(pki, "server", server_hosts=["127.0.0.1"])
        for spec in DEMO_OPERATORS:
            issue_certificate(pki, spec.id)
        env["NPC_LOAD_PKI"] = str(pki)
        server = tls_server_process(load_database, redis_server.url, pki, tmp_path / "serve.log")
    async with server as target:
        text = await run_locust(target, results, env, "-u", "10")
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


# A market unknown to the demo: other operators (etb not even in the traffic profile: it gets the
# average share), other ranges (numbers in Peru's format, which the plan enforces), its own
# tokens and regulator.
OTHER_PLAN = """operator,service,first,last
tigo,mobile,950000000,954999999
wom,mobile,970000000,974999999
etb,mobile,990000000,991999999
etb,fixed,14000000,14999999
"""
OTHER_OPERATORS = ("tigo", "wom", "etb")
PACED_RPCS = ("SubmitPortRequest", "GetPortRequest", "LookupNumber", "LookupNumbers")


@pytest.mark.timeout(120)
async def test_locust_runs_against_another_market_read_from_the_snapshot_at_the_rate_asked(
    load_database: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    db = await Database.connect(load_database, min_size=1, max_size=2)
    try:
        for index, operator in enumerate(OTHER_OPERATORS):
            await upsert_operator(
                db, OperatorSpec(operator, operator.upper(), f"73{index}", f"load-{operator}-token")
            )
        await upsert_operator(
            db, OperatorSpec("crc", "CRC", "00", "load-crc-token", role="regulator")
        )
        (tmp_path / "plan.csv").write_text(OTHER_PLAN)
        await import_plan(db, tmp_path / "plan.csv")
        (tmp_path / "ported.csv").write_text(
            "number,serving_operator,ported_at\n950000001,wom,2025-01-01T00:00Z\n"
        )
        await import_ported(db, tmp_path / "ported.csv")
    finally:
        await db.close()
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    env["NPC_LOAD_PROFILE"] = "colombia-2023"
    env["NPC_LOAD_TOKEN_TEMPLATE"] = "load-{operator}-token"  # the option's environment form
    rate = 8.0
    server = server_process(load_database, redis_server.url, tmp_path / "serve.log", "other")
    async with server as target:
        # 3 donors (one per operator of the plan) and 10 paced users.
        text = await run_locust(
            target, tmp_path / "run", env, "-u", "13", "--rate", str(rate), "--plan-reader", "crc"
        )
    with (tmp_path / "run_stats.csv").open(newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    with (tmp_path / "run_failures.csv").open(newline="") as failures_file:
        failures = list(csv.DictReader(failures_file))
    for rpc in RPCS:
        assert int(rows[rpc]["Request Count"]) > int(rows[rpc]["Failure Count"]), (rpc, text)
    # A number drawn twice is refused while its first request lives; nothing else may fail.
    assert all(f["Error"].startswith("ALREADY_EXISTS") for f in failures), failures
    # Unpaced, these users make about 110 such calls in the run (180 in 8 s); the bound is 70.
    paced = sum(int(rows[rpc]["Request Count"]) for rpc in PACED_RPCS)
    assert paced <= rate * RUN_SECONDS * 1.5 + 10, (paced, text)
    conn = await asyncpg.connect(load_database)
    try:
        pairs = await conn.fetch("SELECT DISTINCT recipient, donor FROM port_requests")
        answered = await conn.fetchval(
            "SELECT count(*) FROM port_requests WHERE answered_at IS NOT NULL"
        )
    finally:
        await conn.close()
    assert {r["recipient"] for r in pairs} | {r["donor"] for r in pairs} == set(OTHER_OPERATORS)
    assert all(r["recipient"] != r["donor"] for r in pairs)
    assert answered >= int(rows["AnswerPortRequest"]["Request Count"]) - 10
