"""The `npc` command end to end: as subprocesses, `npc demo` completes ports, `npc serve` serves
gRPC health and HTTP and stops cleanly on SIGTERM, and `npc admin` without a database exits 2 (the
status the shell sees); in-process (`run_npc`), `npc admin` edits the reference data."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from npc.embedded import EmbeddedRedis, free_port
from tests.helpers import run_npc, wait_serving

_names = itertools.count()


def _env(database_url: str, redis: EmbeddedRedis, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    env.update(
        NPC_DATABASE_URL=database_url,
        NPC_REDIS_URL=redis.url,
        NPC_REDIS_PREFIX=f"cli{next(_names)}",
        NPC_VAR_DIR=str(tmp_path / "var"),
        NPC_DEV_MODE="1",
        **extra,
    )
    return env


async def _fetchval(dsn: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


@pytest.mark.slow  # starts processes
@pytest.mark.timeout(180)
async def test_demo_completes_the_requested_ports(
    database_url: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    env = _env(
        database_url,
        redis_server,
        tmp_path,
        NPC_GRPC_PORT=str(free_port()),
        NPC_HTTP_PORT=str(free_port()),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "npc",
        "demo",
        "--ports",
        "5",
        "--seed",
        "7",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 150)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    summary = re.search(r"^summary: (\d+) ports completed .*?([\d.]+) complete ports/s", text, re.M)
    assert summary is not None, text
    assert int(summary.group(1)) == 5, text
    assert float(summary.group(2)) > 0, text
    assert re.search(r"^\[ *[\d.]+s\] .* completed \d+", text, re.M), text  # progress lines
    # The demo seeded the empty database and really ported: five requests are completed.
    assert await _fetchval(database_url, "SELECT count(*) FROM operators") == 5
    completed = await _fetchval(
        database_url, "SELECT count(*) FROM port_requests WHERE state = 'completed'"
    )
    assert completed == 5, text
    assert not (tmp_path / "var").exists()  # configured databases: nothing embedded started


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_serve_answers_health_and_metrics_and_stops_on_sigterm(
    database_url: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    grpc_port, http_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc",
            "serve",
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            env=_env(database_url, redis_server, tmp_path),
            cwd=tmp_path,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await wait_serving(f"127.0.0.1:{grpc_port}", process)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(f"http://127.0.0.1:{http_port}/healthz") as response:
                assert response.status == 200
                health = await response.json()
            assert health["status"] == "ok"
            assert health["checks"] == {"postgres": "ok", "redis": "ok"}
            async with http.get(f"http://127.0.0.1:{http_port}/metrics") as response:
                assert response.status == 200
                metrics = await response.text()
            assert "npc_event_log_head_position" in metrics

        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = log_path.read_text(errors="replace")
    assert code == 0, text
    assert f"gRPC 127.0.0.1:{grpc_port}, HTTP http://127.0.0.1:{http_port}" in text, text
    assert "Traceback" not in text, text
    # A configured database is never seeded with the demo market.
    assert await _fetchval(database_url, "SELECT count(*) FROM operators") == 0


def _npc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "npc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _npc_variables(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith("NPC_")}


@pytest.mark.timeout(120)
async def test_admin_commands(
    database_url: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    env = _npc_variables(_env(database_url, redis_server, tmp_path))

    done = await run_npc("admin", "migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert "schema up to date" in done.stdout

    done = await run_npc(
        "admin", "add-operator", "acme", "Acme Telecom", "31", "--token", "tok-acme", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "added operator acme" in done.stdout

    done = await run_npc(
        "admin", "add-operator", "nova", "Nova Móvil", "32", "--country", "CO", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "API token (shown once" in done.stdout  # generated for a new operator
    country = "SELECT country FROM operators WHERE id = $1"
    assert await _fetchval(database_url, country, "nova") == "CO"
    assert await _fetchval(database_url, country, "acme") == "PE"

    done = await run_npc("admin", "add-range", "acme", "mobile", "970000000", "970000999", env=env)
    assert done.returncode == 0, done.stderr
    overlapping = await run_npc(
        "admin", "add-range", "nova", "mobile", "970000500", "970001500", env=env
    )
    assert overlapping.returncode == 1
    assert "overlaps" in overlapping.stderr
    unknown = await run_npc(
        "admin", "add-range", "nobody", "mobile", "971000000", "971000999", env=env
    )
    assert unknown.returncode == 1
    assert "unknown operator" in unknown.stderr

    done = await run_npc("admin", "seed-demo", env=env)
    assert done.returncode == 0, done.stderr
    assert "nothing loaded" in done.stdout  # operators exist already

    assert await _fetchval(database_url, "SELECT count(*) FROM operators") == 2
    assert (
        await _fetchval(
            database_url, "SELECT count(*) FROM number_ranges WHERE operator_id = 'acme'"
        )
        == 1
    )


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_admin_without_a_database_exits_2_naming_npc_database_url(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """The exit status the shell sees: the entry point's, so a real process."""
    env = _env("", redis_server, tmp_path)
    del env["NPC_DATABASE_URL"]
    refused = _npc(env, "admin", "migrate")
    assert refused.returncode == 2
    assert "NPC_DATABASE_URL" in refused.stderr
