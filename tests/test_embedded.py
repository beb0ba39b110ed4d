"""Tests for npc.embedded: real PostgreSQL and Redis processes in tmp_path."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from npc.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    embedded_services,
    ephemeral_port_range,
    find_pg_bindir,
    free_port,
)


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = ephemeral_port_range()
    for _ in range(20):
        port = free_port()
        # Outgoing connections take their local ports from that range: never this one.
        assert not low <= port <= high
        assert 10000 <= port <= 65535
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_ephemeral_port_range_reads_the_kernels_or_falls_back(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t50000\n")
    assert ephemeral_port_range(setting) == (40000, 50000)
    setting.write_text("garbage\n")
    assert ephemeral_port_range(setting) == (32768, 60999)
    assert ephemeral_port_range(tmp_path / "absent") == (32768, 60999)


def test_free_port_skips_a_port_something_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = ephemeral_port_range()

    def index(port: int) -> int:
        """The inverse of free_port's mapping from an index to a port."""
        return port - 10000 if port < low else (low - 10000) + port - high - 1

    free = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        drawn: list[int] = []
        picks = iter([index(busy), index(busy), index(free)])

        def draw(n: int) -> int:
            drawn.append(next(picks))
            return drawn[-1]

        monkeypatch.setattr("npc.embedded.random.randrange", draw)
        assert free_port() == free
        assert drawn == [index(busy), index(busy), index(free)]


def test_find_pg_bindir() -> None:
    bindir = find_pg_bindir()
    for name in ("pg_ctl", "initdb", "postgres"):
        assert os.access(bindir / name, os.X_OK)


@pytest.mark.slow
async def test_start_query_stop_restart_keeps_data(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    rd = EmbeddedRedis(tmp_path / "redis")
    dsn = pg.start()
    url = rd.start()
    try:
        assert dsn == f"postgresql://npc@127.0.0.1:{pg.port}/npc" == pg.dsn
        assert url == f"redis://127.0.0.1:{rd.port}/0"

        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("SHOW max_connections") == "300"
            assert await conn.fetchval("SHOW fsync") == "off"
            assert await conn.fetchval("SELECT current_user") == "npc"
            assert await conn.fetchval("SHOW server_encoding") == "UTF8"
            await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        finally:
            await conn.close()

        client = aioredis.from_url(url)
        try:
            assert await client.ping()
            assert (await client.config_get("bind"))["bind"] == "127.0.0.1"
            assert (await client.config_get("save"))["save"] == ""
            assert (await client.config_get("appendonly"))["appendonly"] == "no"
        finally:
            await client.aclose()
    finally:
        rd.stop()
        pg.stop()
    # Idempotent.
    rd.stop()
    pg.stop()
    assert not (tmp_path / "pg" / "postmaster.pid").exists()

    # Same data dir again: the table survives, the new port may differ.
    pg2 = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    rd2 = EmbeddedRedis(tmp_path / "redis")
    try:
        conn = await asyncpg.connect(pg2.start())
        try:
            assert await conn.fetchval("SELECT v FROM kept") == 42
        finally:
            await conn.close()
        client = aioredis.from_url(rd2.start())
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    finally:
        rd2.stop()
        pg2.stop()


@pytest.mark.slow
async def test_postgres_restarts_after_kill(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    pg.start()
    pidfile = tmp_path / "pg" / "postmaster.pid"
    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    assert pidfile.exists()  # stale now

    pg2 = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    try:
        conn = await asyncpg.connect(pg2.start())
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        pg2.stop()


@pytest.mark.slow
async def test_leftover_running_server_is_replaced(tmp_path: Path) -> None:
    orphan = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    orphan.start()  # never stopped by its owner, as after a crash
    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    try:
        conn = await asyncpg.connect(pg.start())
        try:
            assert await conn.fetchval("SHOW port") == str(pg.port)
        finally:
            await conn.close()
    finally:
        pg.stop()
        orphan.stop()


@pytest.mark.slow
async def test_create_database_from_template(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", port=free_port(), fsync=False) as pg:
        conn = await asyncpg.connect(pg.dsn_for("postgres"))
        try:
            await conn.execute("CREATE DATABASE tpl")
        finally:
            await conn.close()
        conn = await asyncpg.connect(pg.dsn_for("tpl"))
        try:
            await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('hi')")
        finally:
            await conn.close()

        dsn = pg.create_database("copy1", template="tpl")
        assert dsn == f"postgresql://npc@127.0.0.1:{pg.port}/copy1"
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT v FROM t") == "hi"
        finally:
            await conn.close()

        with pytest.raises(asyncpg.DuplicateDatabaseError):
            pg.create_database("copy1")
        pg.drop_database("copy1")
        pg.drop_database("copy1")  # missing is fine
        pg.create_database("copy1")
        with pytest.raises(ValueError):
            pg.create_database('bad"; DROP')


@pytest.mark.slow
async def test_redis_kill_and_restart(tmp_path: Path) -> None:
    rd = EmbeddedRedis(tmp_path / "redis")
    rd.start()
    pid = rd.pid
    assert pid is not None
    rd.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    rd.kill()  # idempotent
    client = aioredis.from_url(rd.start())
    try:
        assert await client.ping()
    finally:
        await client.aclose()
        rd.stop()


@pytest.mark.slow
async def test_embedded_services(tmp_path: Path) -> None:
    with embedded_services(tmp_path / "var") as (database_url, redis_url):
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SHOW fsync") == "on"
        finally:
            await conn.close()
        client = aioredis.from_url(redis_url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    assert (tmp_path / "var" / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "var" / "postgres" / "postmaster.pid").exists()
    assert (tmp_path / "var" / "redis").is_dir()
