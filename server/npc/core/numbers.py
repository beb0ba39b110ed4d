"""The numbering registry, as every flow asks it: who serves a number, and the one way a number
changes hands.

The registry flow owns `number_ranges`, `ported_numbers` and `number_history`; it imports them and
serves lookups from its cache. Every other flow asks through these functions, never with its own
SQL: portability and returns check who serves the numbers of a request, SGU and suspension who
serves one number, and an execution, a return or a disconnection moves numbers with
`move_numbers`, in the transaction of the step that causes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from npc.core.events import CLEARINGHOUSE
from npc.store import operators
from npc.store.database import Database, Txn
from npc.store.operators import OperatorSpec

REGISTRY = "registry"
NUMBERS_CHANGED = "registry.numbers_changed"
IMPORTED = "registry.imported"


@dataclass(frozen=True)
class Serving:
    """Who serves one number: its range holder, its range's service and its serving operator.

    All three are None for a number outside the numbering plan; `ported` is True when it is
    served away from its range holder.
    """

    number: str
    holder: str | None
    service: str | None
    serving: str | None
    ported: bool


# The array comes through a subquery, which the planner cannot see into: given the array, it
# planned each call anew for its length (0.2 to 0.5 ms of PostgreSQL's time a request); not
# given it, it keeps one generic plan, as good for the few numbers of a request.
_WHO_SERVES = """
SELECT n.i, n.number, r.operator_id AS holder, r.service,
       COALESCE(p.serving_operator, r.operator_id) AS serving,
       p.serving_operator IS NOT NULL AS ported
FROM unnest((SELECT $1::text[])) WITH ORDINALITY AS n(number, i)
LEFT JOIN number_ranges r ON r.numbers @> n.number::bigint
LEFT JOIN ported_numbers p ON p.number = n.number
"""


async def who_serves(conn: asyncpg.Connection, numbers: Sequence[str]) -> list[Serving]:
    """For each of `numbers`, in order: its range holder, service and serving operator."""
    rows = await conn.fetch(f"{_WHO_SERVES} ORDER BY n.i", list(numbers))
    return [_serving(r) for r in rows]


async def who_serves_with_party(
    conn: asyncpg.Connection, numbers: Sequence[str], party: str
) -> tuple[bool, list[Serving]]:
    """Whether `party` is a registered operator (`operators.is_operator`), and `who_serves`
    of `numbers`: one round trip where a request checks its donor and its numbers."""
    rows = await conn.fetch(
        f"""SELECT {operators.is_operator_sql("$2")} AS party_known, s.*
            FROM (SELECT 1) AS one LEFT JOIN ({_WHO_SERVES}) AS s ON true
            ORDER BY s.i""",
        list(numbers),
        party,
    )
    known = bool(rows[0]["party_known"])  # one row at least, with no numbers
    return known, [_serving(r) for r in rows if r["i"] is not None]


def _serving(row: asyncpg.Record) -> Serving:
    return Serving(row["number"], row["holder"], row["service"], row["serving"], row["ported"])


async def ported_to(conn: asyncpg.Connection, number: str) -> str | None:
    """The operator serving `number` when it is ported; None when it is with its range holder."""
    (answer,) = await who_serves(conn, [number])
    return answer.serving if answer.ported else None


async def ported_counts(conn: asyncpg.Connection) -> list[tuple[str, str, int]]:
    """(serving operator, service, how many) of the numbers served away from their range."""
    rows = await conn.fetch(
        "SELECT serving_operator, service, count(*) AS n FROM ported_numbers"
        " GROUP BY serving_operator, service"
    )
    return [(r["serving_operator"], r["service"], int(r["n"])) for r in rows]


async def range_holders(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """(operator, service) of every range holder, each once."""
    rows = await conn.fetch("SELECT DISTINCT operator_id, service FROM number_ranges")
    return [(r["operator_id"], r["service"]) for r in rows]


async def add_range(txn: Txn, operator: str, service: str, first: str, last: str) -> None:
    """Assign the inclusive number range first..last to `operator` (no event: see emit_imported)."""
    await txn.conn.execute(
        """INSERT INTO number_ranges (operator_id, service, numbers)
           VALUES ($1, $2, int8range($3::bigint, $4::bigint, '[]'))""",
        operator,
        service,
        int(first),
        int(last),
    )


def emit_imported(txn: Txn, kind: str, rows: int) -> None:
    """Tell everyone following the log that the plan or the ported numbers changed in bulk."""
    txn.emit(
        REGISTRY,
        IMPORTED,
        case_id=None,
        sender=CLEARINGHOUSE,
        broadcast=True,
        payload={"kind": kind, "rows": rows},
    )


@dataclass(frozen=True)
class NumberSource:
    """Where `move_numbers_from` reads the numbers it moves: `relation`, an SQL expression of
    one text column read `AS x(number)`, after the common table expressions `ctes` (each ending
    with a comma, or ""), both naming their one argument `$1`. A flow's statement that reads
    (and changes) its own tables rides with the move: one round trip less."""

    ctes: str
    relation: str
    argument: Any


async def move_numbers(
    txn: Txn, numbers: Sequence[str], to_operator: str, *, reason: str, case_id: str
) -> int:
    """Make `to_operator` the serving operator of `numbers`; return how many changed.

    Updates `ported_numbers`, appends to the history and emits one `registry.numbers_changed`
    broadcast, which is what operators' local copies follow. A number coming home to its range
    holder leaves `ported_numbers` (the NPAC's snapback); any other gets or updates its row.
    Numbers outside the numbering plan are ignored: requests are checked against the plan before
    they get here.
    """
    moved, _ = await move_numbers_from(
        txn,
        NumberSource("", "unnest((SELECT $1::text[]))", list(numbers)),  # see _WHO_SERVES
        to_operator,
        reason=reason,
        case_id=case_id,
    )
    return moved


async def move_numbers_from(
    txn: Txn, source: NumberSource, to_operator: str, *, reason: str, case_id: str
) -> tuple[int, str | None]:
    """`move_numbers` of the numbers `source` reads; return how many changed and the routing
    code of `to_operator` (None when none changed: the statement read it with the moves)."""
    # One statement, one round trip: the move, its history and the recipient's routing code.
    rows = await txn.conn.fetch(
        f"""WITH {source.ctes}
           n AS (
               SELECT x.number, r.operator_id AS holder, r.service,
                      COALESCE(p.serving_operator, r.operator_id) AS serving
               FROM {source.relation} AS x(number)
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
               RETURNING number),
           history AS (
               INSERT INTO number_history (number, from_operator, to_operator, changed_at,
                                           reason, case_id)
               SELECT n.number, n.serving, $2, $3, $5, $4 FROM n
               WHERE n.serving <> $2 ORDER BY n.number
               RETURNING 1)
           SELECT n.number, n.serving, {operators.routing_code_sql("$2")} AS routing_code
           FROM n WHERE n.serving <> $2 ORDER BY n.number""",
        source.argument,
        to_operator,
        txn.now,
        case_id,
        reason,
    )
    if not rows:
        return 0, None
    by_origin: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_origin[row["serving"]].append(row["number"])
    code = rows[0]["routing_code"]
    txn.emit(
        REGISTRY,
        NUMBERS_CHANGED,
        case_id=case_id,
        sender=CLEARINGHOUSE,
        broadcast=True,
        payload={
            "to_operator": to_operator,
            "routing_code": code,
            "reason": reason,
            "changed_at": txn.now.isoformat(),
            "moves": [{"from_operator": k, "numbers": v} for k, v in sorted(by_origin.items())],
        },
    )
    return len(rows), None if code is None else str(code)


async def register_operator(
    db: Database, spec: OperatorSpec, *, now: datetime | None = None
) -> None:
    """Register (or update) an operator and its API token.

    Emits `registry.imported` (kind "operators"): a routing code may have changed, and servers'
    hot data and operators' local copies reload the plan when they see it.
    """
    async with db.transaction("admin.upsert_operator", now or datetime.now(UTC)) as txn:
        await operators.upsert(txn, spec)
        emit_imported(txn, "operators", 1)
