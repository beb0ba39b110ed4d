"""The registry's reads for its lookups: origins of changes not yet positioned in the log.

Who serves a number, and the one way numbers change hands (`move_numbers`), are the kernel's
(`npc.core.numbers`): every flow asks there.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from npc.core.numbers import NUMBERS_CHANGED, REGISTRY

FLOW = REGISTRY


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
