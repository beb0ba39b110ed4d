"""The registry flow's SQL: its reads of the numbering plan and the ported numbers, and the
returns of numbers.

The bulk import's staging, checks and writes are here too (`importer` drives them).

Who serves a number, and the one way numbers change hands (`move_numbers`), are the kernel's
(`npc.core.numbers`): every flow asks there. Operators' names and routing codes are the operators
store's (`npc.store.operators`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import fields
from datetime import datetime

import asyncpg
from asyncpg import Record

from npc.core.cases import CaseTable
from npc.core.numbers import NUMBERS_CHANGED, REGISTRY
from npc.flows.registry.model import NewReturn

FLOW = REGISTRY

RETURNS = CaseTable(FLOW, "number_returns", "return", ("donor", "recipient"))


async def log_position(conn: asyncpg.Connection) -> int:
    """The position of the last event of the log (what a snapshot read now is consistent at)."""
    return int(await conn.fetchval("SELECT position FROM event_head"))


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


async def serving_before(conn: asyncpg.Connection, before: dict[str, str]) -> list[Record]:
    """Range holder and since-when of numbers served by `before[number]` (as they were before
    changes not yet positioned): rows of number, serving, holder, since."""
    rows: list[Record] = await conn.fetch(
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


async def routing_rows(conn: asyncpg.Connection, numbers: Sequence[str]) -> list[Record]:
    """For each of `numbers`, in order: rows of number, holder, service (None outside the plan),
    serving_operator and ported_at (None when not ported)."""
    rows: list[Record] = await conn.fetch(
        """SELECT n.number, r.operator_id AS holder, r.service, p.serving_operator, p.ported_at
           FROM unnest($1::text[]) WITH ORDINALITY AS n(number, i)
           LEFT JOIN number_ranges r ON r.numbers @> n.number::bigint
           LEFT JOIN ported_numbers p ON p.number = n.number
           ORDER BY n.i""",
        list(numbers),
    )
    return rows


async def plan_ranges(conn: asyncpg.Connection) -> list[Record]:
    """The numbering plan in order: rows of first, last (inclusive), operator_id, service."""
    rows: list[Record] = await conn.fetch(
        "SELECT lower(numbers) AS first, upper(numbers) - 1 AS last, operator_id, service"
        " FROM number_ranges ORDER BY lower(numbers)"
    )
    return rows


def ported_in_order(
    conn: asyncpg.Connection, excluding: Sequence[str], prefetch: int
) -> AsyncIterable[Record]:
    """A cursor over the ported numbers but `excluding`, by number: rows of number,
    serving_operator, ported_at (iterate it inside a transaction)."""
    cursor: AsyncIterable[Record] = conn.cursor(
        "SELECT number, serving_operator, ported_at FROM ported_numbers"
        " WHERE NOT (number = ANY($1::text[])) ORDER BY number",
        list(excluding),
        prefetch=prefetch,
    )
    return cursor


def all_ported(conn: asyncpg.Connection, prefetch: int) -> AsyncIterable[Record]:
    """A cursor over every ported number, in no order: rows of number, serving_operator,
    ported_at (iterate it inside a transaction)."""
    cursor: AsyncIterable[Record] = conn.cursor(
        "SELECT number, serving_operator, ported_at FROM ported_numbers", prefetch=prefetch
    )
    return cursor


# ----------------------------------------------------------------------------------- returns


async def next_return_id(conn: asyncpg.Connection) -> str:
    """A new return's case id, RT and ten digits."""
    return f"RT{await conn.fetchval('SELECT nextval($1)', 'number_return_seq'):010d}"


async def insert_return(conn: asyncpg.Connection, new: NewReturn) -> Record:
    """Store a new return (asyncpg.UniqueViolationError when its port already has one under
    way); return its row."""
    values = {f.name: getattr(new, f.name) for f in fields(new)}
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row: Record = await conn.fetchrow(
        f"INSERT INTO number_returns ({columns}) VALUES ({placeholders}) RETURNING *",
        *values.values(),
    )
    return row


async def deadline_due(conn: asyncpg.Connection, case_id: str, kind: str) -> datetime | None:
    """When the pending deadline `kind` of return `case_id` falls due, or None."""
    due: datetime | None = await conn.fetchval(
        "SELECT due_at FROM deadlines WHERE flow = $1 AND case_id = $2 AND kind = $3",
        FLOW,
        case_id,
        kind,
    )
    return due


# ------------------------------------------------------------------------------- bulk import
# An import stages its file in temporary tables (dropped at commit), checks them in SQL and
# writes from them: see `importer`.


async def create_staging(conn: asyncpg.Connection) -> None:
    """The table a file is copied into, one line a row (`line` counts from 1, the header)."""
    await conn.execute(
        """CREATE TEMP TABLE import_staging (line bigserial NOT NULL, raw text NOT NULL)
           ON COMMIT DROP"""
    )


async def copy_into_staging(conn: asyncpg.Connection, source: AsyncIterator[bytes]) -> None:
    """Copy a file's bytes into `import_staging`, each line one field taken as is
    (asyncpg.DataError or BadCopyFileFormatError on a malformed file)."""
    # CSV with a delimiter and quote that never occur: each line is one field, taken as is.
    await conn.copy_to_table(
        "import_staging",
        source=source,
        columns=["raw"],
        format="csv",
        delimiter="\x1f",
        quote="\x1e",
        force_not_null=["raw"],
    )


async def staged_header(conn: asyncpg.Connection) -> str | None:
    """The first line of the staged file, or None when it is empty."""
    first: str | None = await conn.fetchval("SELECT raw FROM import_staging WHERE line = 1 LIMIT 1")
    return first


async def stage_operators(conn: asyncpg.Connection, ids: Sequence[str]) -> None:
    """The registered ids an import's rows are checked against, as a table for its joins."""
    await conn.execute("CREATE TEMP TABLE import_operators (id text PRIMARY KEY) ON COMMIT DROP")
    await conn.execute("INSERT INTO import_operators SELECT unnest($1::text[])", list(ids))


# Each data line split into fields (`f`, trimmed with btrim); blank lines are skipped.
_FIELDS = """
    SELECT s.line, f, cardinality(f) AS width
    FROM import_staging s, LATERAL string_to_array(s.raw, ',') AS f
    WHERE s.line > 1 AND btrim(s.raw) <> ''
"""

# ISO 8601 date and time with an offset (YYYY-MM-DD first, so the day can be checked against the
# month by position). No capture groups: PostgreSQL matches those much faster.
_INSTANT = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]"
    r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)$"
).replace("(", "(?:")

# The day of an instant that matched _INSTANT exists in its month.
_DAY_EXISTS = """(substr({0}, 9, 2) <= '28' OR substr({0}, 9, 2)::int <= extract(day FROM
    make_date(substr({0}, 1, 4)::int, substr({0}, 6, 2)::int, 1)
    + interval '1 month' - interval '1 day'))"""


async def first_import_error(conn: asyncpg.Connection, table: str) -> Record | None:
    """The first bad line of a checked staging table (line, error), in file order, or None."""
    row: Record | None = await conn.fetchrow(
        f"SELECT line, error FROM {table} WHERE error IS NOT NULL ORDER BY line LIMIT 1"
    )
    return row


async def lock_plan(conn: asyncpg.Connection) -> None:
    """Hold changes to the plan off until the import commits (reads go on)."""
    await conn.execute("LOCK TABLE number_ranges IN EXCLUSIVE MODE")


async def stage_plan(conn: asyncpg.Connection) -> None:
    """Parse the staged plan into `import_plan` and check every row into `import_plan_checked`
    (`error` set on a bad one)."""
    await conn.execute(
        f"""CREATE TEMP TABLE import_plan ON COMMIT DROP AS
                WITH p AS MATERIALIZED (
                    SELECT line, width, btrim(f[1]) AS operator, btrim(f[2]) AS service,
                           btrim(f[3]) AS first, btrim(f[4]) AS last
                    FROM ({_FIELDS}) AS fields),
                v AS MATERIALIZED (
                    SELECT p.*, CASE
                        WHEN width <> 4 THEN
                            format('bad format: expected 4 fields, found %s', width)
                        WHEN service NOT IN ('mobile', 'fixed') THEN
                            format('bad format: service %L is neither mobile nor fixed', service)
                        WHEN service = 'mobile'
                             AND (first !~ '^9[0-9]{{8}}$' OR last !~ '^9[0-9]{{8}}$') THEN
                            format('bad format: mobile numbers are 9 digits starting with 9'
                                   ' (%L, %L)', first, last)
                        WHEN service = 'fixed'
                             AND (first !~ '^[0-9]{{8}}$' OR last !~ '^[0-9]{{8}}$') THEN
                            format('bad format: fixed numbers are 8 digits (%L, %L)', first, last)
                        WHEN first::bigint > last::bigint THEN
                            format('bad format: first %s is after last %s', first, last)
                        END AS bad
                    FROM p)
                SELECT v.line, v.operator, v.service, v.first, v.last, v.bad,
                       o.id IS NOT NULL AS known,
                       CASE WHEN v.bad IS NULL
                            THEN int8range(v.first::bigint, v.last::bigint, '[]') END AS numbers
                FROM v LEFT JOIN import_operators o ON o.id = v.operator"""
    )
    await conn.execute("CREATE INDEX ON import_plan USING gist (numbers)")
    await conn.execute("ANALYZE import_plan")
    await conn.execute(
        """CREATE TEMP TABLE import_plan_checked ON COMMIT DROP AS
               SELECT a.line, CASE
                   WHEN a.bad IS NOT NULL THEN a.bad
                   WHEN NOT a.known THEN format('unknown operator %L', a.operator)
                   WHEN inside.line IS NOT NULL THEN
                       format('range %s-%s overlaps the range %s-%s on line %s', a.first,
                              a.last, inside.first, inside.last, inside.line)
                   WHEN held.operator_id IS NOT NULL THEN
                       format('range %s-%s overlaps the range %s-%s of %s already in the plan',
                              a.first, a.last, lower(held.numbers), upper(held.numbers) - 1,
                              held.operator_id)
                   END AS error
               FROM import_plan a
               LEFT JOIN LATERAL (
                   SELECT b.line, b.first, b.last FROM import_plan b
                   WHERE b.numbers && a.numbers AND b.line < a.line
                   ORDER BY b.line LIMIT 1) AS inside ON true
               LEFT JOIN LATERAL (
                   SELECT r.operator_id, r.numbers FROM number_ranges r
                   WHERE r.numbers && a.numbers ORDER BY lower(r.numbers) LIMIT 1) AS held ON true
            """
    )


async def write_plan(conn: asyncpg.Connection) -> int:
    """Add the staged ranges to the plan; return how many."""
    added: int = await conn.fetchval(
        """WITH added AS (
                   INSERT INTO number_ranges (operator_id, service, numbers)
                   SELECT operator, service, numbers FROM import_plan ORDER BY line
                   RETURNING 1)
               SELECT count(*) FROM added"""
    )
    return added


async def lock_ported(conn: asyncpg.Connection) -> None:
    """Hold executions off until the import commits (lookups and snapshots go on)."""
    await conn.execute("LOCK TABLE ported_numbers IN EXCLUSIVE MODE")
    # Sorting millions of rows (duplicates, upsert) in memory rather than in temp files.
    await conn.execute("SET LOCAL work_mem = '256MB'")


async def stage_ported(conn: asyncpg.Connection) -> None:
    """Parse the staged ported numbers into `import_ported` and check the bad rows into
    `import_ported_checked`."""
    await conn.execute(
        f"""CREATE TEMP TABLE import_ported ON COMMIT DROP AS
                WITH v AS MATERIALIZED (
                    SELECT line, number, serving, ported_at, CASE
                        WHEN width <> 3 THEN
                            format('bad format: expected 3 fields, found %s', width)
                        WHEN number !~ '^(?:9[0-9]{{8}}|[0-9]{{8}})$' THEN
                            format('bad format: number %L is neither 9 digits starting with 9'
                                   ' (mobile) nor 8 digits (fixed)', number)
                        WHEN ported_at !~ '{_INSTANT}' OR NOT {_DAY_EXISTS.format("ported_at")}
                        THEN
                            format('bad format: ported_at %L is not an ISO 8601 date and time'
                                   ' with an offset', ported_at)
                        END AS bad
                    FROM (SELECT line, width, btrim(f[1]) AS number, btrim(f[2]) AS serving,
                                 btrim(f[3]) AS ported_at
                          FROM ({_FIELDS}) AS fields) AS p)
                SELECT v.line, v.number, v.serving, v.bad,
                       CASE WHEN v.bad IS NULL THEN v.ported_at::timestamptz END AS ported_at,
                       o.id IS NOT NULL AS known, r.operator_id AS holder, r.service,
                       min(v.line) OVER (PARTITION BY v.number) AS first_line
                FROM v
                LEFT JOIN import_operators o ON o.id = v.serving
                LEFT JOIN number_ranges r
                    ON r.numbers @> (CASE WHEN v.bad IS NULL THEN v.number::bigint END)"""
    )
    await conn.execute(
        """CREATE TEMP TABLE import_ported_checked ON COMMIT DROP AS
               SELECT line, CASE
                   WHEN bad IS NOT NULL THEN bad
                   WHEN NOT known THEN format('unknown operator %L', serving)
                   WHEN holder IS NULL THEN
                       format('number %s is outside the numbering plan', number)
                   WHEN holder = serving THEN
                       format('number %s: its range holder %s is the serving operator',
                              number, holder)
                   WHEN first_line < line THEN
                       format('duplicate number %s (also on line %s)', number, first_line)
                   END AS error
               FROM import_ported
               WHERE bad IS NOT NULL OR NOT known OR holder IS NULL OR holder = serving
                     OR first_line < line"""
    )


async def write_ported(conn: asyncpg.Connection, now: datetime) -> tuple[int, int]:
    """Record the staged ported numbers, with a history row (at `now`) for every number whose
    serving operator changes; return (rows, numbers changed)."""
    rows: int = await conn.fetchval("SELECT count(*) FROM import_ported")
    changed: int = await conn.fetchval(
        """WITH before AS (
                   SELECT i.number, i.serving, COALESCE(p.serving_operator, i.holder) AS previous
                   FROM import_ported i LEFT JOIN ported_numbers p ON p.number = i.number),
               upserted AS (
                   INSERT INTO ported_numbers (number, service, range_holder, serving_operator,
                                               ported_at, case_id)
                   SELECT number, service, holder, serving, ported_at, NULL FROM import_ported
                   ON CONFLICT (number) DO UPDATE SET service = EXCLUDED.service,
                       range_holder = EXCLUDED.range_holder,
                       serving_operator = EXCLUDED.serving_operator,
                       ported_at = EXCLUDED.ported_at, case_id = NULL),
               history AS (
                   INSERT INTO number_history (number, from_operator, to_operator, changed_at,
                                               reason, case_id)
                   SELECT number, previous, serving, $1, 'import', NULL FROM before
                   WHERE previous <> serving
                   RETURNING 1)
               SELECT count(*) FROM history""",
        now,
    )
    return rows, changed


async def open_return_of(conn: asyncpg.Connection, port_request_id: str) -> str:
    """The id of the return under way for a port ('' if none)."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM number_returns WHERE port_request_id = $1"
        " AND state IN ('requested', 'scheduled')",
        port_request_id,
    )
    return found or ""
