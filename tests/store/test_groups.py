"""Group commit (`npc.store.groups`): commands that wait for a connection share a transaction
and its COMMIT, each keeping its own result and its own failure (issue 14, lever 2). Real
PostgreSQL; one or two runners, so that commands queue and the tests know who waits for whom."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from npc.core.cases import CaseTable
from npc.store.database import Database, Txn, case_lock_key
from npc.store.groups import TransactionGroups

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
ROUNDS = 10
CASES = CaseTable("grouptest", "group_cases", "case", ("holder",), deferred_updates=True)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = await Database.connect(database_url, min_size=1, max_size=3)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE group_cases (id text PRIMARY KEY, holder text, state text NOT NULL)"
        )
    try:
        yield db
    finally:
        try:
            await asyncio.wait_for(db.close(), 10)
        except TimeoutError:  # a failed test left a command held: its connection goes
            db.pool.terminate()


Body = Callable[[Txn], Awaitable[Any]]


class Command:
    """A command that writes its own row, notes its transaction, and can be held or failed."""

    def __init__(
        self,
        case_id: str,
        *,
        fail: Exception | None = None,
        lock: str | None = None,
        lock_row: bool = False,
    ) -> None:
        self.case_id = case_id
        self.fail = fail
        self.lock = lock  # a case whose lock it takes first
        self.lock_row = lock_row  # with its row, as flows do (`CaseTable.lock`)
        self.gate = asyncio.Event()
        self.gate.set()
        self.inside = asyncio.Event()  # its write is done and it waits at the gate
        self.attempts = 0
        self.txid: int | None = None
        self.pid: int | None = None

    def hold(self) -> Command:
        self.gate.clear()
        return self

    async def __call__(self, txn: Txn) -> str:
        self.attempts += 1
        if self.lock is not None and self.lock_row:
            assert await CASES.lock(txn, self.lock) is not None
        elif self.lock is not None:
            await txn.lock_case("grouptest", self.lock)
        self.txid = await txn.conn.fetchval("SELECT txid_current()")
        self.pid = await txn.conn.fetchval("SELECT pg_backend_pid()")
        await txn.conn.execute(
            "INSERT INTO group_cases (id, state) VALUES ($1, 'filed')", self.case_id
        )
        self.inside.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.case_id


async def rows(db: Database) -> set[str]:
    async with db.pool.acquire() as conn:
        return {r["id"] for r in await conn.fetch("SELECT id FROM group_cases")}


def start(groups: TransactionGroups, body: Body) -> asyncio.Task[Any]:
    return asyncio.ensure_future(groups.run("test", NOW, body))


async def forgetting(groups: TransactionGroups, body: Body) -> Any:
    """The command's result, or its error with the error's frames cleared as soon as it arrives
    (the gRPC interceptor does it, to free the request): the runner is still in the group."""
    try:
        return await groups.run("test", NOW, body)
    except Exception as error:
        assert error.__traceback__ is not None  # the command's own frames are kept
        traceback.clear_frames(error.__traceback__)
        return error


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition()` until true, failing after 10 seconds."""
    async with asyncio.timeout(10):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def queued(groups: TransactionGroups, count: int) -> None:
    await until(lambda: groups.waiting >= count)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_commands_that_wait_together_commit_in_one_transaction(db):
    groups = TransactionGroups(db, size=8, runners=1)
    first = Command("c0").hold()
    others = [Command(f"c{i}") for i in range(1, 5)]
    groups_before = metric("npc_db_commit_group_commands_count")
    commands_before = metric("npc_db_commit_group_commands_sum")
    running = [start(groups, first)] + [start(groups, c) for c in others]
    await first.inside.wait()
    await queued(groups, 4)
    first.gate.set()
    assert await asyncio.gather(*running) == ["c0", "c1", "c2", "c3", "c4"]
    assert {c.txid for c in [first, *others]} == {first.txid}
    assert await rows(db) == {"c0", "c1", "c2", "c3", "c4"}
    assert metric("npc_db_commit_group_commands_count") - groups_before == 1
    assert metric("npc_db_commit_group_commands_sum") - commands_before == 5


async def test_a_command_alone_commits_alone_and_a_group_holds_at_most_its_size(db):
    groups = TransactionGroups(db, size=2, runners=1)
    assert await groups.run("test", NOW, Command("alone")) == "alone"
    first = Command("g0").hold()
    others = [Command(f"g{i}") for i in range(1, 4)]
    running = [start(groups, first)] + [start(groups, c) for c in others]
    await first.inside.wait()
    await queued(groups, 3)
    first.gate.set()
    await asyncio.gather(*running)
    # g0 with g1, then g2 with g3: two transactions of two.
    assert first.txid == others[0].txid != others[1].txid == others[2].txid
    assert await rows(db) == {"alone", "g0", "g1", "g2", "g3"}


@pytest.mark.parametrize("failing", [0, 2, 4])
async def test_a_command_s_failure_rolls_back_its_own_work_only(db, failing):
    """Whichever command fails (the first, one in the middle, the last), its caller gets its
    error and its row is gone; the others' rows are committed. The callers clear the frames of
    what they get at once, as the gRPC interceptor does: the runner goes on regardless."""
    groups = TransactionGroups(db, size=8, runners=1)
    for round in range(ROUNDS):
        commands = [
            Command(f"r{round}c{i}", fail=ValueError(f"refused {i}") if i == failing else None)
            for i in range(5)
        ]
        commands[0].hold()
        running = [asyncio.ensure_future(forgetting(groups, c)) for c in commands]
        await commands[0].inside.wait()
        await queued(groups, 4)
        commands[0].gate.set()
        results = await asyncio.gather(*running)
        for i, result in enumerate(results):
            if i == failing:
                assert isinstance(result, ValueError) and str(result) == f"refused {i}"
            else:
                assert result == f"r{round}c{i}"
        committed = {f"r{round}c{i}" for i in range(5) if i != failing}
        assert {r for r in await rows(db) if r.startswith(f"r{round}c")} == committed
        # The ones after a failing first share one transaction; the others share the first's.
        sharing = {c.txid for i, c in enumerate(commands) if i not in (0, failing)}
        assert len(sharing) == 1


@pytest.mark.parametrize("lock_row", [False, True], ids=["lock_case", "case_table"])
async def test_a_command_whose_case_is_locked_elsewhere_leads_a_group_of_its_own(db, lock_row):
    """A command after the first may not wait for a case lock (it holds the others'): it is sent
    back to the queue's head, leads the next group, waits there, and commits once the lock is
    free; the commands of the groups around it go on meanwhile."""
    async with db.pool.acquire() as conn:
        await conn.execute("INSERT INTO group_cases VALUES ('busy', 'claro', 'filed')")
    groups = TransactionGroups(db, size=8, runners=2)
    first, second = Command("first").hold(), Command("second").hold()
    locked = Command("locked", lock="busy", lock_row=lock_row)
    after = Command("after")
    async with db.pool.acquire() as holder, holder.transaction():
        await holder.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            case_lock_key("grouptest", "busy"),
        )
        running = [start(groups, first), start(groups, second)]
        await first.inside.wait()
        await second.inside.wait()
        waiting = [start(groups, locked), start(groups, after)]
        await queued(groups, 2)
        first.gate.set()  # `locked` follows `first`, finds the lock taken, and goes to lead
        await until(lambda: locked.attempts >= 2)
        second.gate.set()  # `after` follows `second`: it does not wait behind `locked`
        done = await asyncio.wait_for(asyncio.gather(*running, waiting[1]), 10)
        assert done == ["first", "second", "after"]
        assert first.txid != locked.txid and second.txid == after.txid
        assert not waiting[0].done()
        assert await rows(db) == {"busy", "first", "second", "after"}
    assert await asyncio.wait_for(waiting[0], 10) == "locked"
    assert locked.attempts == 2
    assert await rows(db) == {"busy", "first", "second", "after", "locked"}


async def test_a_command_reads_what_one_before_it_in_the_group_wrote_to_its_case(db):
    """Each command's flush (its deferred case-row update included) runs when it ends, so the
    next one on the same case, in the same transaction, reads the row as it left it."""
    async with db.pool.acquire() as conn:
        await conn.execute("INSERT INTO group_cases VALUES ('case', 'claro', 'filed')")
    groups = TransactionGroups(db, size=8, runners=1)
    first = Command("other").hold()
    seen: list[str] = []

    async def answer(txn: Txn) -> str:
        await CASES.lock(txn, "case")
        row = await CASES.update(txn, "case", {"state": "answered"})
        return str(row["state"])

    async def read(txn: Txn) -> str:
        row = await CASES.lock(txn, "case")
        assert row is not None
        seen.append(row["state"])
        return str(await txn.conn.fetchval("SELECT txid_current()"))

    running = [start(groups, first), start(groups, answer), start(groups, read)]
    await first.inside.wait()
    await queued(groups, 2)
    first.gate.set()
    _, answered, txid = await asyncio.gather(*running)
    assert answered == "answered" and seen == ["answered"]
    assert int(txid) == first.txid


async def test_a_caller_that_goes_away_takes_its_command_with_it(db):
    """Gone while it waits: its command never runs. Gone while its command runs (a deadline
    passed): its work is rolled back, and the group's other commands commit."""
    groups = TransactionGroups(db, size=8, runners=1)
    for round in range(ROUNDS):
        first = Command(f"r{round}first").hold()
        abandoned = Command(f"r{round}abandoned")
        running_gone = Command(f"r{round}running").hold()
        last = Command(f"r{round}last")
        tasks = {c.case_id: start(groups, c) for c in (first, abandoned, running_gone, last)}
        await first.inside.wait()
        await queued(groups, 3)
        tasks[abandoned.case_id].cancel()
        first.gate.set()
        await running_gone.inside.wait()  # its row is written, in the group's transaction
        tasks[running_gone.case_id].cancel()
        assert await tasks[first.case_id] == first.case_id
        assert await tasks[last.case_id] == last.case_id
        for gone in (abandoned, running_gone):
            with pytest.raises(asyncio.CancelledError):
                await tasks[gone.case_id]
        assert abandoned.attempts == 0
        assert last.txid == first.txid
        mine = {r for r in await rows(db) if r.startswith(f"r{round}")}
        assert mine == {first.case_id, last.case_id}


async def test_a_group_whose_connection_dies_fails_every_command_and_the_next_groups_run(db):
    """The connection is lost with two commands of a group done and one running: none of the
    three is committed, each caller hears of it, and the next groups commit normally."""
    groups = TransactionGroups(db, size=8, runners=1)
    async with db.pool.acquire() as killer:
        for round in range(ROUNDS):
            commands = [Command(f"r{round}c{i}") for i in range(3)]
            commands[0].hold()
            commands[2].hold()
            tasks = [start(groups, c) for c in commands]
            await commands[0].inside.wait()
            await queued(groups, 2)
            commands[0].gate.set()
            await commands[2].inside.wait()
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", commands[2].pid)
            commands[2].gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(
                isinstance(r, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | OSError)
                for r in results
            ), results
            assert not {r for r in await rows(db) if r.startswith(f"r{round}")}
            assert await groups.run("test", NOW, Command(f"r{round}after")) == f"r{round}after"
    assert len(await rows(db)) == ROUNDS
    # No connection was left behind: the pool hands out all of them at once.
    async with asyncio.timeout(10):
        held = [await db.pool.acquire() for _ in range(3)]
    for conn in held:
        await db.pool.release(conn)
