"""`npc demo --profile peru-2024` end to end, as a subprocess on a configured database: the
traffic profile's operators file, answer and complete ports on a compressed day."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from npc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

pytestmark = pytest.mark.slow  # starts processes


@pytest.fixture
def demo_database(pg_server: EmbeddedPostgres, template_database: str) -> Iterator[str]:
    """A fresh migrated database without operators: the demo loads its market."""
    name = f"demo_profile_{os.getpid()}"
    dsn = pg_server.create_database(name, template=template_database)
    yield dsn
    pg_server.drop_database(name)


async def run_demo(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "npc",
        "demo",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.timeout(120)
async def test_demo_with_the_peru_profile_completes_ports(
    demo_database: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_")}
    env.update(
        NPC_DATABASE_URL=demo_database,
        NPC_REDIS_URL=redis_server.url,
        NPC_REDIS_PREFIX="demo-profile",
        NPC_GRPC_PORT=str(free_port()),
        NPC_HTTP_PORT=str(free_port()),
    )
    code, text = await run_demo(
        env, tmp_path, "--profile", "peru-2024", "--day-minutes", "3", "--ports", "4", "--seed", "3"
    )
    assert code == 0, text
    assert "traffic: peru-2024" in text, text
    assert "shares claro 29%, movistar 27%, entel 21%, bitel 23%" in text, text
    summary = re.search(r"^summary: (\d+) ports completed .*traffic offered (\d+)", text, re.M)
    assert summary is not None, text
    assert int(summary.group(1)) == 4, text
    assert int(summary.group(2)) >= 4, text
    conn = await asyncpg.connect(demo_database)
    try:
        completed = await conn.fetch(
            "SELECT recipient, donor FROM port_requests WHERE state = 'completed'"
        )
    finally:
        await conn.close()
    assert len(completed) == 4
    names = {"claro", "movistar", "entel", "bitel"}
    assert all(r["recipient"] in names and r["donor"] in names for r in completed)

    # A profile whose operators the demo market lacks is refused, naming them.
    code, text = await run_demo(env, tmp_path, "--profile", "colombia-2023", "--ports", "1")
    assert code == 2, text
    assert "tigo, wom" in text, text
