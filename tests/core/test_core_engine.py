"""The event core on real PostgreSQL and Redis: gap-free positions, the hash chain, durable
deadlines that fire once, the append-only guarantee and migrations."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from npc.core.cases import CaseTable
from npc.core.clock import FakeClock
from npc.core.deadlines import Deadline
from npc.core.events import GENESIS_HASH, chain_hash
from npc.core.runtime import Core
from npc.store.database import Database, Txn
from tests.conftest import DEFAULT_START


@pytest.fixture
async def cores(database_url, redis_server):
    """Two cores on one database: two server processes as far as the database can tell."""
    made: list[Core] = []

    async def make(clock: FakeClock) -> Core:
        db = await Database.connect(database_url, min_size=1, max_size=10)
        core = Core(
            db, aioredis.Redis.from_url(redis_server.url), clock, redis_prefix=f"core{len(made)}"
        )
        await core.start(background=False)
        made.append(core)
        return core

    yield make
    for core in made:
        await core.stop()
        await core.redis.aclose()
        await core.db.close()


async def _write_events(core: Core, writer: int, count: int) -> None:
    for index in range(count):
        async with core.db.transaction("test", core.clock.now()) as txn:
            txn.emit(
                "test",
                "test.event",
                case_id=f"c{writer}",
                sender="t",
                payload={"i": index, "part": 1},
            )
            txn.emit(
                "test",
                "test.event",
                case_id=f"c{writer}",
                sender="t",
                payload={"i": index, "part": 2},
            )


async def test_positions_gap_free_and_chained_under_concurrent_writers(cores):
    clock = FakeClock(DEFAULT_START)
    a, b = await cores(clock), await cores(clock)
    writers = [_write_events(core, w, 25) for w, core in enumerate([a, b, a, b])]
    sequencing = [a.sequencer.catch_up() for _ in range(3)] + [
        b.sequencer.catch_up() for _ in range(3)
    ]
    await asyncio.gather(*writers, *sequencing)
    await a.sequencer.catch_up()
    async with a.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM events ORDER BY position")
        head = await conn.fetchrow("SELECT position, hash FROM event_head")
    assert [r["position"] for r in rows] == list(range(1, 201))
    assert head["position"] == 200
    previous = GENESIS_HASH
    for row in rows:
        previous = chain_hash(previous, row["position"], row)
        assert bytes(row["hash"]) == previous
    assert bytes(head["hash"]) == previous
    # Events of one case keep the order their transactions committed in.
    for writer in range(4):
        mine = [
            (r["payload"]["i"], r["payload"]["part"]) for r in rows if r["case_id"] == f"c{writer}"
        ]
        assert mine == [(i, part) for i in range(25) for part in (1, 2)]


async def test_sequencing_a_flow_of_events_costs_one_round_trip_per_batch(cores):
    """While events keep waiting, each round trip positions one batch and reads the next: three
    batches cost the first read, three positionings and the read that finds nothing left."""
    core = await cores(FakeClock(DEFAULT_START))
    await _write_events(core, 0, 15)  # 30 events
    statements: list[str] = []
    await core.db.add_query_logger(lambda query: statements.append(query.query))
    core.sequencer.batch_size = 10
    await core.sequencer.catch_up()
    await asyncio.sleep(0)  # the loggers run in call_soon callbacks
    # The sequencer's own statements (asyncpg's one-off type introspection left out).
    kinds = [s.split()[0] for s in statements if "event_head" in s]
    assert kinds == ["SELECT"] + ["WITH"] * 3 + ["SELECT"], kinds
    async with core.db.pool.acquire() as conn:
        head = await conn.fetchval("SELECT position FROM event_head")
        waiting = await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL")
    assert (head, waiting) == (30, 0)


async def test_an_event_committed_after_later_ids_were_positioned_still_gets_its_position(cores):
    """The sequencer reads above a floor of settled ids; an event whose id was drawn early and
    committed late is above it until its transaction ends, so it is never skipped."""
    core = await cores(FakeClock(DEFAULT_START))
    held = await asyncpg.connect(core.db.dsn)
    try:
        await held.execute("BEGIN")
        late_id = await held.fetchval(
            "INSERT INTO events (occurred_at, flow, type, case_id, sender, payload)"
            " VALUES (now(), 'test', 'test.late', 'late', 't', '{}') RETURNING id"
        )
        # First with nothing else written: the held transaction has the newest transaction id,
        # so no snapshot's xmax (the last completed id plus one) is above it.
        for _ in range(5):
            await core.sequencer.catch_up()
            assert core.sequencer.floor.settled < late_id
        for round_ in range(10):
            await _write_events(core, round_, 3)
            await core.sequencer.catch_up()
            assert core.sequencer.floor.settled < late_id
        await held.execute("COMMIT")
    finally:
        await held.close()
    # The floor rises a few reads behind, once no transaction older than those reads runs (the
    # harness may be creating the next test's database meanwhile: seconds at most).
    for _ in range(200):
        await _write_events(core, 99, 1)
        await core.sequencer.catch_up()
        if core.sequencer.floor.settled >= late_id:
            break
        await asyncio.sleep(0.05)
    async with core.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT position, type, id FROM events ORDER BY position")
        waiting = await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL")
    assert waiting == 0
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["type"] for r in rows].count("test.late") == 1
    # The floor did rise past the late event once it was positioned.
    assert core.sequencer.floor.settled >= late_id


async def test_event_log_is_append_only(cores):
    core = await cores(FakeClock(DEFAULT_START))
    await _write_events(core, 0, 1)
    await core.sequencer.catch_up()
    async with core.db.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM events")
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await conn.execute("UPDATE events SET payload = '{}'::jsonb")
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await conn.execute("UPDATE events SET position = position + 100")
        assert await conn.fetchval("SELECT count(*) FROM events") == 2


async def test_rolled_back_transaction_leaves_no_event_and_no_gap(cores):
    core = await cores(FakeClock(DEFAULT_START))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with core.db.transaction("test", core.clock.now()) as txn:
            txn.emit("test", "test.lost", case_id="x", sender="t", payload={})
            raise Boom
    await _write_events(core, 1, 1)
    await core.sequencer.catch_up()
    async with core.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT position, type FROM events ORDER BY position")
    assert [(r["position"], r["type"]) for r in rows] == [(1, "test.event"), (2, "test.event")]


async def test_deadline_fires_once_across_two_processes_and_not_before_due(cores):
    clock = FakeClock(DEFAULT_START)
    a, b = await cores(clock), await cores(clock)
    fired: list[tuple[str, str]] = []

    def handler_for(name: str):
        async def handler(txn: Txn, deadline: Deadline) -> None:
            await asyncio.sleep(0.01)  # hold the row lock a little, so both processes overlap
            fired.append((name, deadline.case_id))
            txn.emit("test", "test.fired", case_id=deadline.case_id, sender="t", payload={})

        return handler

    a.deadlines.register("test", "tick", handler_for("a"))
    b.deadlines.register("test", "tick", handler_for("b"))
    async with a.db.transaction("test", clock.now()) as txn:
        for case in range(20):
            txn.set_deadline(
                "test", "tick", f"case{case}", clock.now() + timedelta(minutes=5), "test rule"
            )
    clock.advance(timedelta(minutes=4, seconds=59))
    assert await a.deadlines.fire_due() == 0
    clock.advance(timedelta(seconds=1))
    counts = await asyncio.gather(a.deadlines.fire_due(), b.deadlines.fire_due())
    assert sum(counts) == 20
    assert sorted(case for _, case in fired) == sorted(f"case{c}" for c in range(20))
    assert await a.deadlines.fire_due() == 0
    await a.sequencer.catch_up()
    async with a.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE type = 'test.fired'") == 20


async def test_failing_handler_is_retried_later_not_in_a_loop(cores):
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    calls = 0

    async def flaky(txn: Txn, deadline: Deadline) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("downstream hiccup")
        txn.emit("test", "test.done", case_id=deadline.case_id, sender="t", payload={})

    core.deadlines.register("test", "flaky", flaky)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "flaky", "c1", clock.now(), "test rule")
    assert await core.deadlines.fire_due() == 0
    assert calls == 1
    assert await core.deadlines.fire_due() == 0  # backing off, not spinning
    assert calls == 1
    clock.advance(timedelta(minutes=5))
    assert await core.deadlines.fire_due() == 1
    async with core.db.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT attempts, fired_at, due_at FROM deadlines WHERE case_id = 'c1'"
        )
    assert row["attempts"] == 1
    assert row["fired_at"] == clock.now()
    assert row["due_at"] == DEFAULT_START  # the due instant itself is kept for lateness and audit


async def test_cancelled_and_moved_deadlines(cores):
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    seen: list[str] = []

    async def handler(txn: Txn, deadline: Deadline) -> None:
        seen.append(deadline.case_id)

    core.deadlines.register("test", "k", handler)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "k", "cancel-me", clock.now() + timedelta(minutes=1), "r")
        txn.set_deadline("test", "k", "move-me", clock.now() + timedelta(minutes=1), "r")
    async with core.db.transaction("test", clock.now()) as txn:
        txn.cancel_deadlines("test", "cancel-me")
        txn.set_deadline("test", "k", "move-me", clock.now() + timedelta(minutes=10), "r")
    clock.advance(timedelta(minutes=2))
    assert await core.deadlines.fire_due() == 0
    clock.advance(timedelta(minutes=10))
    assert await core.deadlines.fire_due() == 1
    assert seen == ["move-me"]


async def test_migrations_are_recorded_and_idempotent(cores):
    core = await cores(FakeClock(DEFAULT_START))
    assert await core.db.migrate() == []
    async with core.db.pool.acquire() as conn:
        versions = [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) >= 3


async def test_command_and_deadline_on_one_case_do_not_deadlock(cores):
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    async with core.db.pool.acquire() as conn:
        await conn.execute("CREATE TABLE test_cases (id text PRIMARY KEY, state text)")
        await conn.execute("INSERT INTO test_cases VALUES ('c1', 'open')")

    async def handler(txn: Txn, deadline: Deadline) -> None:
        await txn.conn.execute(
            "UPDATE test_cases SET state = 'expired' WHERE id = $1", deadline.case_id
        )

    core.deadlines.register("test", "expiry", handler)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "expiry", "c1", clock.now(), "test rule")

    command_holds_case = asyncio.Event()

    async def command() -> None:
        # A command that answers the case just as its deadline is due, and cancels the deadline.
        async with core.db.transaction("test", clock.now()) as txn:
            await txn.lock_case("test", "c1")
            await txn.conn.execute("UPDATE test_cases SET state = 'answered' WHERE id = 'c1'")
            command_holds_case.set()
            await asyncio.sleep(0.3)
            txn.cancel_deadlines("test", "c1", "expiry")

    async def fire() -> int:
        await command_holds_case.wait()
        return await core.deadlines.fire_due()

    _, fired = await asyncio.gather(command(), fire())
    assert fired == 0
    async with core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT state FROM test_cases WHERE id = 'c1'") == "answered"
        deadline = await conn.fetchrow("SELECT * FROM deadlines WHERE case_id = 'c1'")
    assert deadline["cancelled_at"] is not None
    assert deadline["fired_at"] is None
    assert (deadline["attempts"], deadline["last_error"]) == (0, None)  # no deadlock was detected


async def test_deadline_cancelled_and_set_again_in_one_transaction_ends_set(cores):
    """Cancellations apply before settings, and the last setting of one deadline wins."""
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    seen: list[tuple[str, str]] = []

    async def handler(txn: Txn, deadline: Deadline) -> None:
        seen.append((deadline.case_id, deadline.rule))

    core.deadlines.register("test", "k", handler)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "k", "rearmed", clock.now() + timedelta(minutes=1), "first")
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "k", "rearmed", clock.now() + timedelta(minutes=5), "second")
        txn.cancel_deadlines("test", "rearmed")
        txn.set_deadline("test", "k", "twice", clock.now() + timedelta(minutes=1), "early")
        txn.set_deadline("test", "k", "twice", clock.now() + timedelta(minutes=3), "late")
    clock.advance(timedelta(minutes=2))
    assert await core.deadlines.fire_due() == 0
    clock.advance(timedelta(minutes=4))
    assert await core.deadlines.fire_due() == 2
    assert sorted(seen) == [("rearmed", "second"), ("twice", "late")]


async def _generic_plan_on_stale_statistics(core: Core, sql: str, *args: object) -> str:
    """The plan of `sql` as a cached generic plan, on statistics that say `deadlines` is nearly
    empty while it holds 20,000 pending deadlines."""
    async with core.db.pool.acquire() as conn:
        await conn.execute("ANALYZE deadlines")  # statistics of a nearly empty table
        await conn.execute(
            "INSERT INTO deadlines (flow, kind, case_id, due_at, next_attempt_at, rule,"
            " created_at) SELECT 'bulk', 'k', 'c' || g, $1, $1, 'r', $1"
            " FROM generate_series(1, 20000) AS g",
            core.clock.now(),
        )
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            return "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql, *args))


async def test_cancelling_a_deadline_reads_its_key_even_with_stale_statistics(cores):
    """The planner, told by old statistics that the table is tiny, must still find a case's
    deadlines by their key, never by walking every pending deadline."""
    from npc.store.database import _CANCEL

    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    plan = await _generic_plan_on_stale_statistics(core, _CANCEL, "bulk", "c17", None, clock.now())
    assert "deadlines_flow_case_id_kind_key" in plan, plan
    assert "deadlines_pending" not in plan, plan


async def _hold_case(core: Core, case_id: str, release: asyncio.Event) -> asyncio.Task[None]:
    """A transaction (a command, say) holding the lock of test case `case_id` until `release`;
    returned once it holds it."""
    holding = asyncio.Event()

    async def hold() -> None:
        async with core.db.transaction("command", core.clock.now()) as txn:
            await txn.lock_case("test", case_id)
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await holding.wait()
    return task


async def test_a_busy_case_does_not_hold_up_other_cases_deadlines(cores):
    """While a command holds a case, the scheduler fires the other cases' due deadlines, and
    the busy case's own deadlines, in their order, once the command is done."""
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    core.deadlines.busy_retries = 2
    fired: list[str] = []

    async def handler(txn: Txn, deadline: Deadline) -> None:
        fired.append(f"{deadline.case_id}/{deadline.rule}")

    core.deadlines.register("test", "first", handler)
    core.deadlines.register("test", "second", handler)
    due = clock.now() + timedelta(minutes=1)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "first", "busy", due, "1")
        txn.set_deadline("test", "second", "busy", due, "2")
        txn.set_deadline("test", "first", "free", due, "1")
    clock.advance(timedelta(minutes=2))

    release = asyncio.Event()
    command = await _hold_case(core, "busy", release)
    assert await core.deadlines.fire_due() == 1
    assert fired == ["free/1"]
    release.set()
    await command
    assert await core.deadlines.fire_due() == 2
    assert fired == ["free/1", "busy/1", "busy/2"]


async def test_a_cancelled_pass_takes_its_firings_along_and_the_deadline_stays_due(cores):
    """Stopping the scheduler mid-pass leaves no firing running behind it, and what it was firing
    fires once, on the next pass."""
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    started, cancelled = asyncio.Event(), asyncio.Event()
    fired: list[str] = []

    async def handler(txn: Txn, deadline: Deadline) -> None:
        if not started.is_set():
            started.set()
            try:
                await asyncio.Event().wait()  # a firing still under way when the pass stops
            except asyncio.CancelledError:
                cancelled.set()
                raise
        fired.append(deadline.case_id)

    core.deadlines.register("test", "slow", handler)
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("test", "slow", "c1", clock.now() + timedelta(minutes=1), "r")
    clock.advance(timedelta(minutes=2))
    firing = asyncio.ensure_future(core.deadlines.fire_due())
    await started.wait()
    firing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await firing
    assert cancelled.is_set()
    assert await core.deadlines.fire_due() == 1
    assert fired == ["c1"]


async def test_case_row_is_locked_only_after_the_case_lock(cores):
    """`CaseTable.lock` takes the case lock and the row lock in one statement, in that order:
    while another transaction holds the case, the waiting statement holds no row lock."""

    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    table = CaseTable("test", "test_locked_cases", "test case", ("party",))
    async with core.db.pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE test_locked_cases (id text PRIMARY KEY, party text, state text)"
        )
        await conn.execute("INSERT INTO test_locked_cases VALUES ('c1', 'p', 'open')")

    release = asyncio.Event()
    held = await _hold_case(core, "c1", release)

    async def locker() -> str:
        async with core.db.transaction("locker", clock.now()) as txn:
            row = await table.lock(txn, "c1")
            assert row is not None
            return str(row["state"])

    waiting = asyncio.create_task(locker())
    async with core.db.pool.acquire() as conn:
        # Wait until the locker is blocked on the case lock...
        for _ in range(200):
            blocked = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            if blocked:
                break
            await asyncio.sleep(0.01)
        assert blocked == 1
        # ...and check that the row is free meanwhile.
        async with conn.transaction():
            row = await conn.fetchrow(
                "SELECT state FROM test_locked_cases WHERE id = 'c1' FOR UPDATE NOWAIT"
            )
            assert row["state"] == "open"
    assert not waiting.done()
    release.set()
    await held
    assert await waiting == "open"
    async with core.db.transaction("missing", clock.now()) as txn:
        assert await table.lock(txn, "nope") is None


async def test_one_flush_cancels_a_case_deadline_and_keeps_what_it_sets_again(cores):
    """The last cancellation of a transaction is written with its settings in one statement:
    a case's other pending deadlines are cancelled, the one set again stays set, and earlier
    cancellations apply too."""
    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    seen: list[str] = []

    async def handler(txn: Txn, deadline: Deadline) -> None:
        seen.append(f"{deadline.case_id}/{deadline.kind}/{deadline.rule}")

    for kind in ("a", "b", "c"):
        core.deadlines.register("test", kind, handler)
    soon = clock.now() + timedelta(minutes=1)
    async with core.db.transaction("test", clock.now()) as txn:
        for case in ("one", "two"):
            for kind in ("a", "b", "c"):
                txn.set_deadline("test", kind, case, soon, "first")
    async with core.db.transaction("test", clock.now()) as txn:
        txn.cancel_deadlines("test", "two", "c")  # an earlier cancellation, a statement of its own
        txn.cancel_deadlines("test", "one")  # every pending deadline of the case...
        txn.set_deadline("test", "b", "one", soon, "again")  # ...but this one is set again
    async with core.db.transaction("test", clock.now()) as txn:
        txn.cancel_deadlines("test", "two", "a")  # a cancellation alone
    clock.advance(timedelta(minutes=2))
    assert await core.deadlines.fire_due() == 2
    assert sorted(seen) == ["one/b/again", "two/b/first"]


async def test_the_flush_cancels_by_the_deadline_key_even_with_stale_statistics(cores):
    """The cancellation inside the flush statement, as a generic plan on a table the statistics
    say is tiny, reads the (flow, case_id, kind) key."""
    from npc.store.database import _FLUSH

    clock = FakeClock(DEFAULT_START)
    core = await cores(clock)
    answer = [None] * 8  # no command answer
    plan = await _generic_plan_on_stale_statistics(
        core, _FLUSH, clock.now(), [], [], *answer, "bulk", "c17", "k", [], []
    )
    assert "Update on deadlines" in plan, plan
    assert "deadlines_flow_case_id_kind_key" in plan, plan
    assert "Seq Scan on deadlines" not in plan, plan
    assert "deadlines_pending" not in plan, plan


async def _deferring_table(
    cores: Any, clock: FakeClock, name: str, columns: str, ids: list[str]
) -> tuple[Core, CaseTable]:
    """A core, and a case table `name` (id, party, state and `columns`) that defers its updates,
    holding open cases `ids`."""
    core = await cores(clock)
    table = CaseTable("test", name, "test case", ("party",), deferred_updates=True)
    async with core.db.pool.acquire() as conn:
        await conn.execute(
            f"CREATE TABLE {name} (id text PRIMARY KEY, party text, state text, {columns})"
        )
        await conn.executemany(
            f"INSERT INTO {name} (id, party, state) VALUES ($1, 'p', 'open')",
            [(case_id,) for case_id in ids],
        )
    return core, table


async def test_a_deferred_update_is_prepared_once_per_connection_even_past_a_failure(cores):
    """A deferred update is the EXECUTE of an UPDATE its connection prepared the first time it
    met those columns (PREPARE riding in the same query). A query that fails after its PREPARE
    leaves the statement prepared on the session (no rollback undoes a PREPARE): the next one
    with the same columns still works, and the failed one wrote nothing."""
    clock = FakeClock(DEFAULT_START)
    core, table = await _deferring_table(
        cores, clock, "test_prepared_cases", "n int CHECK (n < 100)", [f"c{k}" for k in range(12)]
    )
    sent: list[str] = []
    await core.db.add_query_logger(lambda query: sent.append(query.query))

    async def update(case_id: str, n: int) -> None:
        async with core.db.transaction("prepared", clock.now()) as txn:
            await table.lock(txn, case_id)
            await table.update(txn, case_id, {"state": f"s{n}", "n": n})

    with pytest.raises(asyncpg.CheckViolationError):
        await update("c0", 500)  # fails in the query, after its PREPARE ran
    for k in range(12):
        await update(f"c{k}", k)
    async with core.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, state, n FROM test_prepared_cases ORDER BY n")
    assert [(r["id"], r["state"], r["n"]) for r in rows] == [
        (f"c{k}", f"s{k}", k) for k in range(12)
    ]
    statements = [statement for query in sent for statement in query.split("; ")]
    prepares = sum(s.startswith("PREPARE npc_update_") for s in statements)
    executed = [s for s in statements if not s.startswith("PREPARE")]
    assert not [s for s in executed if s.startswith("UPDATE test_prepared_cases")]
    assert sum(s.startswith("EXECUTE npc_update_") for s in executed) == 13
    # Once per connection, and once more for the failed attempt's connection at most.
    assert 1 <= prepares <= core.db.pool.get_max_size() + 1 < 13


async def test_a_deferred_case_update_is_written_with_the_commit_in_order_and_only_then(cores):
    """A table that defers its updates writes them with the flush: the returned row is the row
    as it will be; an update that cannot wait (an array) writes the deferred one first, so the
    later value of a column wins; a transaction that rolls back writes nothing; and a row the
    transaction did not lock is updated at once."""
    clock = FakeClock(DEFAULT_START)
    core, table = await _deferring_table(
        cores,
        clock,
        "test_deferred_cases",
        "due date, facts jsonb, seen_at timestamptz, tags text[], n int",
        ["c1", "c2"],
    )

    async def stored(case_id: str) -> dict[str, Any]:
        async with core.db.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM test_deferred_cases WHERE id = $1", case_id)
        return dict(row.items())

    quoted = "it's \\ done; DROP TABLE events; --"
    async with core.db.transaction("deferred", clock.now()) as txn:
        await table.lock(txn, "c1")
        row = await table.update(txn, "c1", {"state": quoted, "due": date(2026, 12, 4), "n": 1})
        assert (await stored("c1"))["state"] == "open"  # not written before the commit
        row = await table.update(txn, "c1", {"tags": ["a", "b"], "n": 2})  # cannot wait
        row = await table.update(txn, "c1", {"facts": {"k": "v'"}, "seen_at": clock.now(), "n": 3})
        txn.emit("test", "test.deferred", case_id="c1", sender="p", payload={})
    after = await stored("c1")
    assert after == row
    assert after["state"] == quoted and after["tags"] == ["a", "b"] and after["n"] == 3
    assert after["due"] == date(2026, 12, 4) and after["facts"] == {"k": "v'"}

    with pytest.raises(RuntimeError):
        async with core.db.transaction("deferred", clock.now()) as txn:
            await table.lock(txn, "c2")
            await table.update(txn, "c2", {"state": "closed"})
            raise RuntimeError("the command fails")
    assert (await stored("c2"))["state"] == "open"

    async with core.db.transaction("not locked", clock.now()) as txn:
        row = await table.update(txn, "c2", {"state": "moved"})
        assert (await stored("c2"))["state"] == "open"  # another connection: not committed
        assert row["state"] == "moved"
        assert txn.row_updates == {}  # written at once: this transaction did not lock the row
    assert (await stored("c2"))["state"] == "moved"
