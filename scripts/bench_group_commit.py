"""What a command's transaction costs PostgreSQL and the server, alone and grouped (issue 14).

A command here is what the portability commands do in PostgreSQL: its case lock with a read, then
the flush (two events, a deadline and the command's answer). Three ways, on one connection of a
private PostgreSQL (fsync on), one command after another, CPU of its backend (/proc) and of this
process per command:

* ``alone``: each command its own transaction, as the server runs them (BEGIN; lock and read;
  flush and COMMIT in one query);
* ``group``: ``--group`` commands in one transaction, each flushed as it ends, one COMMIT;
* ``merged``: ``--group`` commands in one transaction and one flush for them all (their answers
  in one INSERT sent with it), one COMMIT.

    PYTHONPATH=server python scripts/bench_group_commit.py [--commands 2400] [--group 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from npc.embedded import EmbeddedPostgres
from npc.store.database import CommandAnswer, Database, Txn, sql_literal

PAYLOAD = {
    "port_request_id": "SP0000000001",
    "recipient": "claro",
    "donor": "movistar",
    "numbers": [{"first": "940000001", "last": "940000001", "modality": "prepaid"}],
    "service": "mobile",
    "window": {"start": "2026-12-05T05:00:00+00:00", "end": "2026-12-05T07:00:00+00:00"},
}
LOCK_AND_READ = (
    "WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended($1, 0)))"
    " SELECT 1 FROM locked"
)
DIGEST, RESPONSE = b"d" * 32, b"r" * 120


def _command(txn: Txn, number: int, *, answer: bool = True) -> None:
    case = f"SP{number:010d}"
    for kind in ("portability.request.answered", "portability.request.admissible"):
        audience = ("claro", "movistar")
        txn.emit(
            "portability", kind, case_id=case, sender="claro", payload=PAYLOAD, audience=audience
        )
    txn.set_deadline("portability", "request.schedule", case, txn.now + timedelta(days=1), "r")
    if answer:
        txn.record_answer(
            CommandAnswer(
                "claro", f"rq-{number}", "AnswerPortRequest", DIGEST, 0, RESPONSE, None, None
            )
        )


def _answer_row(number: int, now: datetime) -> str:
    literals = ("'claro'", sql_literal(f"rq-{number}"), "'AnswerPortRequest'", sql_literal(DIGEST))
    return f"({', '.join(literals)}, 0, {sql_literal(RESPONSE)}, {sql_literal(now)})"


async def _alone(db: Database, numbers: itertools.count[int], now: datetime) -> None:
    number = next(numbers)
    async with db.transaction("alone", now) as txn:
        await txn.conn.fetch(LOCK_AND_READ, f"portability:{number}")
        _command(txn, number)


async def _grouped(
    db: Database, numbers: itertools.count[int], now: datetime, size: int, *, merged: bool
) -> None:
    async with db.pool.acquire() as conn, conn.transaction():
        answers: list[str] = []
        txn = Txn(conn=conn, now=now, label="merged")
        for index in range(size):
            number = next(numbers)
            await conn.fetch(LOCK_AND_READ, f"portability:{number}")
            if not merged:
                txn = Txn(conn=conn, now=now, label="group")
                _command(txn, number)
                await txn.flush("")  # the transaction's block commits them all
                continue
            _command(txn, number, answer=index == 0)  # the flush holds one answer
            if index:
                answers.append(_answer_row(number, now))
        if merged:
            await txn.flush(
                "INSERT INTO command_results (caller, request_id, method, request_digest,"
                f" status_code, response, created_at) VALUES {', '.join(answers)}"
            )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


async def measure(way: str, commands: int, group: int) -> dict[str, Any]:
    """Run `commands` commands `way` and return the CPU per command."""
    with tempfile.TemporaryDirectory() as data:
        pg = EmbeddedPostgres(Path(data) / "pg", fsync=True)
        pg.start()
        try:
            db = await Database.connect(pg.dsn, min_size=1, max_size=1)
            await db.migrate()
            await db.pool.expire_connections()  # the next one prepares the flush
            async with db.pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO operators (id, name, routing_code)"
                    " VALUES ('claro', 'Claro', '1'), ('movistar', 'Movistar', '2')"
                )
                backend = await conn.fetchval("SELECT pg_backend_pid()")
            numbers, now = itertools.count(1), datetime.now(UTC)
            for _ in range(50):
                await _alone(db, numbers, now)
            pg_before, before, wall = (
                _cpu_seconds(backend),
                time.process_time(),
                time.perf_counter(),
            )
            if way == "alone":
                for _ in range(commands):
                    await _alone(db, numbers, now)
            else:
                for _ in range(commands // group):
                    await _grouped(db, numbers, now, group, merged=way == "merged")
            ran = commands if way == "alone" else commands // group * group
            result = {
                "way": way,
                "group": 1 if way == "alone" else group,
                "postgres_ms_per_command": round(
                    (_cpu_seconds(backend) - pg_before) * 1e3 / ran, 3
                ),
                "client_ms_per_command": round((time.process_time() - before) * 1e3 / ran, 3),
                "wall_ms_per_command": round((time.perf_counter() - wall) * 1e3 / ran, 3),
            }
            await db.close()
            return result
        finally:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=2400)
    parser.add_argument("--group", type=int, default=8)
    args = parser.parse_args()
    for way in ("alone", "group", "merged"):
        print(json.dumps(asyncio.run(measure(way, args.commands, args.group))))


if __name__ == "__main__":
    main()
