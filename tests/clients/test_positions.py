"""Position stores and resumable subscriptions: after a restart of the operator's system, the
stream starts right after the last event it processed; nothing missed, nothing twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from npc_clients import FilePositionStore, OperatorClient, PositionStore, SqlitePositionStore
from tests.helpers import block, port_end_to_end


def _stores(tmp_path: Path) -> list[tuple[PositionStore, PositionStore]]:
    """Each kind of store, twice over the same place (as before and after a restart)."""
    return [
        (FilePositionStore(tmp_path / "a" / "pos"), FilePositionStore(tmp_path / "a" / "pos")),
        (
            SqlitePositionStore(tmp_path / "b.sqlite", "claro"),
            SqlitePositionStore(tmp_path / "b.sqlite", "claro"),
        ),
    ]


def test_a_store_starts_at_zero_and_keeps_what_was_saved_across_reopening(tmp_path: Path):
    for first, reopened in _stores(tmp_path):
        assert first.load() == 0
        first.save(41)
        first.save(42)
        assert reopened.load() == 42
        with pytest.raises(ValueError):
            first.save(-1)
        assert reopened.load() == 42


def test_the_file_store_leaves_no_temporary_file_behind(tmp_path: Path):
    store = FilePositionStore(tmp_path / "pos")
    for position in range(1, 20):
        store.save(position)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pos"]
    assert (tmp_path / "pos").read_text() == "19\n"


def test_sqlite_keeps_one_row_per_subscription(tmp_path: Path):
    claro = SqlitePositionStore(tmp_path / "p.sqlite", "claro-events")
    registry = SqlitePositionStore(tmp_path / "p.sqlite", "registry")
    claro.save(10)
    registry.save(3)
    assert (claro.load(), registry.load()) == (10, 3)


async def _take(subscription, count: int) -> list[int]:
    positions: list[int] = []
    async with asyncio.timeout(20):
        async for event in subscription:
            positions.append(event.position)
            if len(positions) == count:
                return positions
    raise AssertionError("the stream ended")


async def test_a_restarted_subscriber_resumes_after_what_it_processed(
    app, operators, clock, tmp_path: Path
):
    await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001")]
    )
    store_path = tmp_path / "claro.position"
    async with OperatorClient(f"127.0.0.1:{app.grpc_port}", "dev-token-claro") as reference:
        everything = await _take(reference.subscription(FilePositionStore(tmp_path / "ref")), 3)
    assert len(everything) == 3 and everything == sorted(everything)

    # First run: two events handled and marked, the third received but never marked (a crash).
    first = OperatorClient(f"127.0.0.1:{app.grpc_port}", "dev-token-claro")
    subscription = first.subscription(FilePositionStore(store_path))
    seen: list[int] = []
    async with asyncio.timeout(20):
        async for event in subscription:
            seen.append(event.position)
            if len(seen) <= 2:
                subscription.processed(event)
            if len(seen) == 3:
                break
    await first.close()

    # After the restart: the unmarked third event comes again, the first two never do.
    second = OperatorClient(f"127.0.0.1:{app.grpc_port}", "dev-token-claro")
    try:
        resumed = second.subscription(FilePositionStore(store_path))
        assert resumed.position == everything[1]
        again = await _take(resumed, 1)
    finally:
        await second.close()
    assert seen == everything
    assert again == [everything[2]]
