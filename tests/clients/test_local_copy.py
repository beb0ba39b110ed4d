"""An operator's local copy of the registry: snapshot, then the stream, surviving restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from npc.app import Clearinghouse
from npc.v1 import registry_pb2
from npc_clients import OperatorClient
from npc_clients.local_copy import LocalRegistry, RegistryFollower
from tests.helpers import block, port_end_to_end, settle

SAMPLE = [
    "940000100",  # ported, then home again
    "940000101",
    "940000105",  # ported to claro
    "940000110",  # ported to claro, then on to entel
    "940000111",
    "940000119",
    "940000120",  # never ported
    "940000200",  # ported to bitel
    "940000209",
    "980000001",  # bitel's, ported to claro
    "910000000",  # first and last of a range
    "919999999",
    "12000005",  # fixed
    "13999999",
    "99999999",  # outside the plan
    "999999999",
    "120000050",  # nine digits: outside the plan
]


async def _truth(app: Clearinghouse) -> dict[str, str]:
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT number, serving_operator FROM ported_numbers")
    return {r["number"]: r["serving_operator"] for r in rows}


async def _last_for(app: Clearinghouse, operator: str) -> int:
    """The last position of the log that `operator`'s stream delivers."""
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT max(position) FROM events WHERE broadcast OR $1 = ANY(audience)", operator
        )


async def _change_positions(app: Clearinghouse, after: int) -> list[int]:
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT position FROM events WHERE type = 'registry.numbers_changed'"
            " AND position > $1 ORDER BY position",
            after,
        )
    return [r["position"] for r in rows]


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def _caught_up(app: Clearinghouse, position: Callable[[], int | None]) -> None:
    await settle(app)
    target = await _last_for(app, "bitel")
    await _until(lambda: (position() or 0) >= target)
    assert position() == target


async def _assert_lookups_match(registry: LocalRegistry, client: OperatorClient) -> None:
    reply = await client.registry.LookupNumbers(
        registry_pb2.LookupNumbersRequest(numbers=SAMPLE), metadata=client.metadata, timeout=5
    )
    for server in reply.results:
        local = registry.lookup(server.number)
        if not server.in_plan:
            assert local is None, server.number
            continue
        assert local is not None, server.number
        assert (
            local.serving_operator,
            local.routing_code,
            local.ported,
            local.range_holder,
            local.service,
        ) == (
            server.serving_operator,
            server.routing_code,
            server.ported,
            server.range_holder,
            server.service,
        ), server.number
        if server.ported:
            assert local.ported_since == server.ported_since.ToDatetime(tzinfo=UTC).isoformat()


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_snapshot_then_stream_while_ports_execute(app, operators, clock, tmp_path):
    claro, movistar, entel, bitel = (operators[o] for o in ("claro", "movistar", "entel", "bitel"))
    await port_end_to_end(app, clock, claro, movistar, [block("940000100", "940000119")])
    await settle(app)

    registry = LocalRegistry(str(tmp_path / "copy.db"))
    assert registry.position() is None
    assert registry.lookup("940000100") is None  # nothing loaded yet
    follower = RegistryFollower(bitel, registry, chunk_size=3)
    task = asyncio.create_task(follower.sync())
    try:

        async def ports() -> None:
            await port_end_to_end(app, clock, bitel, movistar, [block("940000200", "940000209")])
            await port_end_to_end(app, clock, movistar, claro, [block("940000100", "940000104")])
            await port_end_to_end(app, clock, entel, claro, [block("940000110", "940000112")])
            await port_end_to_end(app, clock, claro, bitel, [block("980000001", "980000003")])

        await asyncio.wait_for(ports(), 60)
        await _caught_up(app, registry.position)
        assert follower.snapshots == 1
        assert follower.applied >= 1
        truth = await _truth(app)
        assert registry.ported() == truth
        assert len(truth) == 15 + 10 + 3
        await _assert_lookups_match(registry, bitel)
    finally:
        await _stop(task)
        registry.close()


async def test_an_import_reloads_the_snapshot(app, operators, clock, tmp_path):
    claro, movistar, bitel = operators["claro"], operators["movistar"], operators["bitel"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000100", "940000104")])
    await settle(app)
    registry = LocalRegistry(str(tmp_path / "copy.db"))
    follower = RegistryFollower(bitel, registry)
    task = asyncio.create_task(follower.sync())
    try:
        await _caught_up(app, registry.position)
        assert follower.snapshots == 1
        # A bulk import rewrites the registry without per-number changes, then says so.
        async with app.core.db.transaction("test", clock.now()) as txn:
            await txn.conn.execute(
                "UPDATE ported_numbers SET serving_operator = 'entel' WHERE number = '940000101'"
            )
            txn.emit(
                "registry",
                "registry.imported",
                case_id=None,
                sender="clearinghouse",
                payload={},
                broadcast=True,
            )
        await _caught_up(app, registry.position)
        assert follower.snapshots == 2
        assert registry.ported() == await _truth(app)
        routing = registry.lookup("940000101")
        assert routing is not None and routing.serving_operator == "entel"
    finally:
        await _stop(task)
        registry.close()


class _Recording(LocalRegistry):
    """Remembers the position of every change it applies and every position it stores."""

    def __init__(self, path: str, changes: list[int], positions: list[int]) -> None:
        super().__init__(path)
        self.changes = changes
        self.positions = positions

    def apply_changes(self, position, *args) -> bool:  # type: ignore[override]
        done = super().apply_changes(position, *args)
        if done:
            self.changes.append(position)
            self.positions.append(position)
        return done

    def advance(self, position: int) -> bool:
        done = super().advance(position)
        if done:
            self.positions.append(position)
        return done


async def test_a_restarted_follower_misses_nothing_and_applies_nothing_twice(
    app, operators, clock, tmp_path
):
    claro, movistar, entel, bitel = (operators[o] for o in ("claro", "movistar", "entel", "bitel"))
    target = f"127.0.0.1:{app.grpc_port}"
    path = str(tmp_path / "copy.db")
    changes: list[int] = []
    positions: list[int] = []

    async def port(recipient, donor, first, last="") -> None:
        await asyncio.wait_for(
            port_end_to_end(app, clock, recipient, donor, [block(first, last)]), 30
        )

    # 1. Snapshot, then follow; cancelled while changes are flowing.
    registry = _Recording(path, changes, positions)
    client = OperatorClient(target, "dev-token-bitel", operator="bitel")
    follower = RegistryFollower(client, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    await _until(lambda: registry.position() is not None)
    snapshot_position = registry.position()
    assert snapshot_position is not None
    await port(claro, movistar, "940000100", "940000119")
    await settle(app)
    await _until(lambda: bool(changes))
    more = asyncio.create_task(port(bitel, movistar, "940000200", "940000209"))
    await settle(app)
    await _stop(task)
    await more
    stopped_at = registry.position()
    assert stopped_at is not None
    registry.close()
    await client.close()

    # 2. Ports while it is down.
    await port(movistar, claro, "940000100", "940000104")
    await port(entel, claro, "940000110", "940000112")
    await settle(app)
    assert (await _last_for(app, "bitel")) > stopped_at

    # 3. Restarted on the same file: resumes from the stored position, no new snapshot.
    registry = _Recording(path, changes, positions)
    assert registry.position() == stopped_at
    client = OperatorClient(target, "dev-token-bitel", operator="bitel")
    follower = RegistryFollower(client, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    await _caught_up(app, registry.position)
    assert follower.snapshots == 0
    assert registry.ported() == await _truth(app)

    # 4. Its channel closed under it: it keeps retrying and stops on request.
    await client.close()
    await port(claro, bitel, "980000001", "980000003")
    await settle(app)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    stopped_at = registry.position()
    assert stopped_at is not None
    registry.close()

    # 5. Restarted once more with a new connection: catches up.
    registry = _Recording(path, changes, positions)
    client = OperatorClient(target, "dev-token-bitel", operator="bitel")
    follower = RegistryFollower(client, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    try:
        await _caught_up(app, registry.position)
        assert follower.snapshots == 0
        assert (registry.position() or 0) > stopped_at
        assert registry.ported() == await _truth(app)
        await _assert_lookups_match(registry, bitel)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        registry.close()
        await client.close()

    assert positions == sorted(set(positions))  # strictly increasing, across restarts
    assert changes == await _change_positions(app, snapshot_position)


def _stored_position(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None  # not created yet
    return None if row is None else int(row[0])


def _stored_ported(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(conn.execute("SELECT number, serving_operator FROM ported_numbers"))
    finally:
        conn.close()


async def _command(*args: str, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "npc_clients.local_copy", *args, stdout=out, stderr=out, env=env
        )


@pytest.mark.slow
async def test_the_command_survives_sigkill(app, operators, clock, tmp_path):
    claro, movistar, entel, bitel = (operators[o] for o in ("claro", "movistar", "entel", "bitel"))
    db = tmp_path / "copy.db"
    log = tmp_path / "follower.log"
    follow: tuple[str, ...] = (
        "--target",
        f"127.0.0.1:{app.grpc_port}",
        "--token",
        "dev-token-bitel",
    )
    follow += ("--db", str(db))

    def position() -> int | None:
        return _stored_position(db)

    async def port(recipient, donor, first, last="") -> None:
        await asyncio.wait_for(
            port_end_to_end(app, clock, recipient, donor, [block(first, last)]), 30
        )

    proc = await _command(*follow, log=log)
    try:
        await _until(lambda: position() is not None, 20)
        await port(claro, movistar, "940000100", "940000119")
        await port(bitel, movistar, "940000200", "940000209")
        await settle(app)
        first_change = (await _change_positions(app, 0))[0]
        await _until(lambda: (position() or 0) >= first_change)
        more = asyncio.create_task(port(movistar, claro, "940000100", "940000104"))
        await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        await more
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    killed_at = position()
    assert killed_at is not None

    await port(entel, claro, "940000110", "940000112")
    await port(claro, bitel, "980000001", "980000003")
    await settle(app)
    assert (await _last_for(app, "bitel")) > killed_at

    proc = await _command(*follow, log=log)
    try:
        await _caught_up(app, position)
        assert _stored_ported(db) == await _truth(app)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert log.read_text().count("snapshot loaded") == 1  # the restart resumed, no snapshot

    async def lookup(number: str) -> dict:
        out = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc_clients.local_copy",
            "--db",
            str(db),
            "--lookup",
            number,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(out.communicate(), 20)
        assert out.returncode == 0
        return json.loads(stdout)

    assert (await lookup("940000111"))["serving_operator"] == "entel"
    assert (await lookup("940000100"))["ported"] is False
    assert (await lookup("980000002"))["routing_code"] == "21"
    assert (await lookup("99999999")) == {"number": "99999999", "in_plan": False}
