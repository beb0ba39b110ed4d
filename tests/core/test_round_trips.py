"""What a port costs in PostgreSQL round trips: each statement a command's transaction sends is
one, and round trips were most of a command's CPU (issue 14). The bounds fail when a change adds
statements to the hot path; they are counts, not timings."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import pytest

from npc.store.database import TRANSACTION_LABEL, CommandAnswer
from npc.v1 import portability_pb2 as pb
from tests.helpers import block, port_end_to_end, port_request, rid, settle

# Round trips per transaction, BEGIN and COMMIT included, of the commands of a port and of the
# execution deadline: the case lock rides with the case's read; the case row's update, deadlines,
# events and answer go with COMMIT in one query; a request's donor is checked with its numbers;
# the deadline's case lock, row lock and firing are one statement; the execution releases its
# numbers and moves them, with their history and the routing code, in another.
MOST_ROUND_TRIPS = {
    "SubmitPortRequest": 4,
    "AnswerPortRequest": 3,
    "SchedulePort": 3,
    "ConfirmPortExecution": 3,
    "deadline": 4,
}


async def test_a_port_s_commands_stay_within_their_round_trips(app, operators, clock):
    statements: defaultdict[str, list[str]] = defaultdict(list)

    def logged(query: Any) -> None:
        label = TRANSACTION_LABEL.get()
        if label is not None:
            statements[label].append(query.query)

    assert app.core is not None
    await app.core.db.add_query_logger(logged)
    claro, movistar = operators["claro"], operators["movistar"]
    filed = await port_end_to_end(app, clock, claro, movistar, [block("940000031")])
    for operator, step in (
        (movistar, pb.EXECUTION_STEP_DONOR_DISABLED),
        (claro, pb.EXECUTION_STEP_RECIPIENT_ENABLED),
    ):
        await operator.call(
            "ConfirmPortExecution",
            pb.ConfirmPortExecutionRequest(request_id=rid(), port_request_id=filed.id, step=step),
        )
    await settle(app)
    await asyncio.sleep(0)  # the loggers run in call_soon callbacks
    transactions = Counter(
        {label: sum(q == "BEGIN;" for q in qs) for label, qs in statements.items()}
    )
    for method, most in MOST_ROUND_TRIPS.items():
        assert transactions[method] >= 1, method
        assert len(statements[method]) / transactions[method] <= most, method


async def test_an_unsequenced_event_only_ever_gets_its_position(app):
    """The guard of 0013 decides in WHEN clauses and column lists: an event not yet sequenced
    can be neither rewritten, deleted, nor updated without a position, even by the owner."""
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        # Uncommitted, so no sequencer sees it: it stays unsequenced for the whole test.
        event_id = await conn.fetchval(
            "INSERT INTO events (occurred_at, flow, type, sender, payload)"
            " VALUES (now(), 'test', 'test.written', 'claro', '{}') RETURNING id"
        )
        refused = {
            "UPDATE events SET payload = '{\"x\": 1}' WHERE id = $1": "immutable",
            "UPDATE events SET sender = 'entel', position = 1000000000 WHERE id = $1": "immutable",
            "UPDATE events SET hash = '\\x01' WHERE id = $1": "immutable",
            "DELETE FROM events WHERE id = $1": "append-only",
        }
        for sql, message in refused.items():
            with pytest.raises(asyncpg.RaiseError, match=message):
                async with conn.transaction():
                    await conn.execute(sql, event_id)
        await conn.execute(
            "UPDATE events SET position = 1000000000, hash = '\\x01' WHERE id = $1", event_id
        )
        assert (
            await conn.fetchval("SELECT position FROM events WHERE id = $1", event_id)
            == 1_000_000_000
        )
        await transaction.rollback()  # a made-up position must not reach the log


async def test_a_refusal_is_stored_in_one_round_trip(app, operators, clock):
    """A refused command's answer is stored with one INSERT ... RETURNING after its rollback: no
    read before it (a conflict says an answer exists) and none after it (it is the answer)."""
    claro, entel = operators["claro"], operators["entel"]
    await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000032")]))
    answers: list[str] = []

    def logged(query: Any) -> None:
        if "command_results" in query.query and TRANSACTION_LABEL.get() is None:
            answers.append(query.query)

    assert app.core is not None
    await app.core.db.add_query_logger(logged)
    late = port_request(clock, numbers=[block("940000032")])
    for _ in range(2):  # the retry is answered by the stored refusal
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await entel.call("SubmitPortRequest", late)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await asyncio.sleep(0)  # the loggers run in call_soon callbacks
    assert [q.split()[0] for q in answers] == ["INSERT", "INSERT", "SELECT"]


async def test_the_flush_sent_with_commit_keeps_its_arguments_and_a_failure_leaves_nothing(app):
    """`Txn.commit` writes its arguments as SQL literals: quotes, backslashes and bytes arrive
    as sent. A flush that fails (a request id answered twice) commits nothing of its
    transaction, and the connection serves the next one."""
    assert app.core is not None
    db = app.core.db
    tricky = {"text": "it's \\' ); COMMIT; DROP TABLE events; --", "n": 1}
    answer = CommandAnswer("claro", "flush-literal", "Test", b"\x00'\\", 0, b"\x27\x00", None, None)
    now = datetime.now(UTC)
    async with db.transaction("test", now) as txn:
        txn.emit("test", "test.literal", case_id="c1", sender="claro", payload=tricky)
        txn.record_answer(answer)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with db.transaction("test", now) as txn:
            txn.emit("test", "test.literal", case_id="c2", sender="claro", payload=tricky)
            txn.set_deadline("test", "k", "c2", now, "rule")
            txn.record_answer(answer)
    async with db.transaction("test", now) as txn:
        txn.emit("test", "test.after", case_id="c3", sender="claro", payload={})
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT case_id, payload FROM events WHERE flow = 'test'")
        stored = await conn.fetchrow(
            "SELECT request_digest, response FROM command_results WHERE request_id = $1",
            "flush-literal",
        )
        deadlines = await conn.fetchval("SELECT count(*) FROM deadlines WHERE case_id = 'c2'")
    assert sorted((r["case_id"], r["payload"]) for r in rows) == [("c1", tricky), ("c3", {})]
    assert (stored["request_digest"], stored["response"]) == (b"\x00'\\", b"\x27\x00")
    assert deadlines == 0
