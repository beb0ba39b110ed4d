"""The central registry's writes: who serves each number, and the broadcast of every change.

Every change goes through `move_numbers`, in the transaction of the process step that causes it
(an execution, a return, a disconnection). It updates `ported_numbers`, appends to the history and
emits one `registry.numbers_changed` broadcast, which is what operators' local copies follow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg

from npc.core.events import CLEARINGHOUSE
from npc.store.database import Txn

FLOW = "registry"
NUMBERS_CHANGED = "registry.numbers_changed"


async def move_numbers(
    txn: Txn, numbers: Sequence[str], to_operator: str, *, reason: str, case_id: str
) -> int:
    """Make `to_operator` the serving operator of `numbers`; return how many changed.

    A number coming home to its range holder leaves `ported_numbers` (the NPAC's snapback); any
    other gets or updates its row. Numbers outside the numbering plan are ignored: requests are
    checked against the plan before they get here.
    """
    rows = await txn.conn.fetch(
        """WITH n AS (
               SELECT x.number, r.operator_id AS holder, r.service,
                      COALESCE(p.serving_operator, r.operator_id) AS serving
               FROM unnest($1::text[]) AS x(number)
               JOIN number_ranges r ON r.numbers @> x.number::bigint
               LEFT JOIN ported_numbers p ON p.number = x.number),
           home AS (
               DELETE FROM ported_numbers p USING n
               WHERE p.number = n.number AND n.holder = $2 RETURNING p.number),
           away AS (
               INSERT INTO ported_numbers (number, service, range_holder, serving_operator,
                                           ported_at, case_id)
               SELECT n.number, n.service, n.holder, $2, $3, $4 FROM n
               WHERE n.holder <> $2 AND n.serving <> $2
               ON CONFLICT (number) DO UPDATE SET serving_operator = EXCLUDED.serving_operator,
                   ported_at = EXCLUDED.ported_at, case_id = EXCLUDED.case_id
               RETURNING number)
           SELECT n.number, n.serving FROM n WHERE n.serving <> $2 ORDER BY n.number""",
        list(numbers),
        to_operator,
        txn.now,
        case_id,
    )
    if not rows:
        return 0
    await txn.conn.execute(
        """INSERT INTO number_history (number, from_operator, to_operator, changed_at, reason, case_id)
           SELECT u.number, u.serving, $3, $4, $5, $6
           FROM unnest($1::text[], $2::text[]) AS u(number, serving)""",
        [r["number"] for r in rows],
        [r["serving"] for r in rows],
        to_operator,
        txn.now,
        reason,
        case_id,
    )
    by_origin: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_origin[row["serving"]].append(row["number"])
    routing_code = await txn.conn.fetchval(
        "SELECT routing_code FROM operators WHERE id = $1", to_operator
    )
    txn.emit(
        FLOW,
        NUMBERS_CHANGED,
        case_id=case_id,
        sender=CLEARINGHOUSE,
        broadcast=True,
        payload={
            "to_operator": to_operator,
            "routing_code": routing_code,
            "reason": reason,
            "changed_at": txn.now.isoformat(),
            "moves": [{"from_operator": k, "numbers": v} for k, v in sorted(by_origin.items())],
        },
    )
    return len(rows)


async def unsequenced_origins(conn: asyncpg.Connection) -> dict[str, str]:
    """For changes committed but not positioned yet: each number's operator before them."""
    pending = await conn.fetch(
        "SELECT payload FROM events WHERE position IS NULL AND type = $1 ORDER BY id",
        NUMBERS_CHANGED,
    )
    before: dict[str, str] = {}
    for event in pending:
        for move in event["payload"]["moves"]:
            for number in move["numbers"]:
                before.setdefault(number, move["from_operator"])
    return before


async def serving_before(conn: asyncpg.Connection, before: dict[str, str]) -> list[Any]:
    """Range holder and since-when of numbers served by `before[number]` (as they were before
    changes not yet positioned): rows of number, serving, holder, since."""
    rows: list[Any] = await conn.fetch(
        """SELECT n.number, n.serving, r.operator_id AS holder,
                  (SELECT max(h.changed_at) FROM number_history h
                   WHERE h.number = n.number AND h.to_operator = n.serving
                     AND h.from_operator <> n.serving) AS since
           FROM unnest($1::text[], $2::text[]) AS n(number, serving)
           JOIN number_ranges r ON r.numbers @> n.number::bigint""",
        list(before),
        list(before.values()),
    )
    return rows
