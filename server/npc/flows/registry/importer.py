"""Bulk import of the numbering plan and of numbers already ported, from CSV files.

Both files are UTF-8 text, one record per line, fields separated by commas, no quoting (no field
can contain a comma). The first line is the header, exactly as below; line numbers in error
messages count it as line 1. Surrounding spaces in a field, CRLF line ends and blank lines are
tolerated.

Numbering plan (`npc admin import plan FILE`)::

    operator,service,first,last
    wom,mobile,970000000,979999999
    wom,fixed,14000000,14999999

    operator  an operator already registered (`npc admin add-operator`)
    service   mobile or fixed
    first     first number of the range; mobile numbers are 9 digits starting with 9, fixed
    last      numbers 8 digits; first <= last, the range includes both ends

  Every range is added to the plan; none may overlap another range of the file or of the plan.

Ported numbers (`npc admin import ported FILE`)::

    number,serving_operator,ported_at
    970000001,claro,2024-03-01T10:15:00-05:00

    number            a number of the plan (mobile: 9 digits starting with 9; fixed: 8 digits)
    serving_operator  the operator serving it now, a registered operator other than its range
                      holder
    ported_at         when it was ported: ISO 8601 date and time with a UTC offset (or Z)

  Each number is recorded as served by `serving_operator` (the range holder comes from the plan),
  replacing what the registry held for it; numbers not in the file are left as they are. A number
  may appear once. Every number whose serving operator changes gets a history row (reason
  `import`).

An import is one transaction: the file is copied into a temporary staging table, validated in SQL,
then written. The first bad row (in file order) fails the whole import with its line number and
the reason, and nothing is loaded. A successful import emits one `registry.imported` broadcast,
payload ``{"kind": "plan" | "ported" | "operators" | "seed", "rows": N}``: operators' local copies of the registry reload
a snapshot.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from npc.core.numbers import emit_imported
from npc.store.database import Database, Txn

PLAN_HEADER = "operator,service,first,last"
PORTED_HEADER = "number,serving_operator,ported_at"

_CHUNK = 1 << 20


class RegistryImportError(Exception):
    """A bad row: the import loaded nothing."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: `phase` is copy (reading the file), validate or write."""

    phase: str
    bytes_read: int
    total_bytes: int
    lines: int


Progress = Callable[[ImportProgress], None]


@dataclass(frozen=True)
class ImportReport:
    """What an import loaded."""

    kind: str  # plan or ported
    rows: int  # data rows in the file
    changed: int  # ranges added (plan), numbers whose serving operator changed (ported)
    bytes: int
    seconds: float


# --------------------------------------------------------------------------------- staging


async def _read_chunks(path: Path, total: int, progress: Progress | None) -> AsyncIterator[bytes]:
    read = 0
    lines = 0
    file = await asyncio.to_thread(path.open, "rb")
    with file:
        while True:
            chunk = await asyncio.to_thread(file.read, _CHUNK)
            if not chunk:
                break
            read += len(chunk)
            lines += chunk.count(b"\n")
            if progress is not None:
                progress(ImportProgress("copy", read, total, lines))
            # PostgreSQL wants one line end throughout; CRLF files are fine.
            yield chunk.replace(b"\r", b"")


async def _stage(txn: Txn, path: Path, header: str, progress: Progress | None) -> int:
    """Copy the file, one line per row, into `import_staging`; check the header; return the size."""
    conn = txn.conn
    await conn.execute(
        """CREATE TEMP TABLE import_staging (line bigserial NOT NULL, raw text NOT NULL)
           ON COMMIT DROP"""
    )
    total = (await asyncio.to_thread(path.stat)).st_size
    try:
        # CSV with a delimiter and quote that never occur: each line is one field, taken as is.
        await conn.copy_to_table(
            "import_staging",
            source=_read_chunks(path, total, progress),
            columns=["raw"],
            format="csv",
            delimiter="\x1f",
            quote="\x1e",
            force_not_null=["raw"],
        )
    except (asyncpg.DataError, asyncpg.BadCopyFileFormatError) as exc:
        where = re.search(r"line (\d+)", getattr(exc, "context", None) or "")
        raise RegistryImportError(
            int(where.group(1)) if where else 0, f"bad format: {exc}"
        ) from exc
    first = await conn.fetchval("SELECT raw FROM import_staging WHERE line = 1 LIMIT 1")
    got = (first or "").removeprefix("\ufeff").rstrip("\r").replace(" ", "")
    if got != header:
        raise RegistryImportError(1, f"bad format: the header must be {header!r}")
    if progress is not None:
        progress(ImportProgress("validate", total, total, 0))
    return total


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


async def _first_error(txn: Txn, table: str) -> None:
    row = await txn.conn.fetchrow(
        f"SELECT line, error FROM {table} WHERE error IS NOT NULL ORDER BY line LIMIT 1"
    )
    if row is not None:
        raise RegistryImportError(row["line"], row["error"])


# ------------------------------------------------------------------------------------ plan


async def import_plan(
    db: Database, path: str | Path, progress: Progress | None = None, *, now: datetime | None = None
) -> ImportReport:
    """Add the ranges of a numbering-plan CSV file (see the module docstring) to the plan."""
    path = Path(path)
    started = time.perf_counter()
    async with db.transaction("registry.import_plan", now or datetime.now(UTC)) as txn:
        conn = txn.conn
        await conn.execute("LOCK TABLE number_ranges IN EXCLUSIVE MODE")
        total = await _stage(txn, path, PLAN_HEADER, progress)
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
                FROM v LEFT JOIN operators o ON o.id = v.operator"""
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
        await _first_error(txn, "import_plan_checked")
        if progress is not None:
            progress(ImportProgress("write", total, total, 0))
        added = await conn.fetchval(
            """WITH added AS (
                   INSERT INTO number_ranges (operator_id, service, numbers)
                   SELECT operator, service, numbers FROM import_plan ORDER BY line
                   RETURNING 1)
               SELECT count(*) FROM added"""
        )
        emit_imported(txn, "plan", added)
    return ImportReport("plan", added, added, total, time.perf_counter() - started)


# ---------------------------------------------------------------------------------- ported


async def import_ported(
    db: Database, path: str | Path, progress: Progress | None = None, *, now: datetime | None = None
) -> ImportReport:
    """Record the ported numbers of a CSV file (see the module docstring) in the registry."""
    path = Path(path)
    started = time.perf_counter()
    async with db.transaction("registry.import_ported", now or datetime.now(UTC)) as txn:
        conn = txn.conn
        # Reads (lookups, snapshots) go on; ports executing meanwhile wait for the import.
        await conn.execute("LOCK TABLE ported_numbers IN EXCLUSIVE MODE")
        total = await _stage(txn, path, PORTED_HEADER, progress)
        # Sorting millions of rows (duplicates, upsert) in memory rather than in temp files.
        await conn.execute("SET LOCAL work_mem = '256MB'")
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
                LEFT JOIN operators o ON o.id = v.serving
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
        await _first_error(txn, "import_ported_checked")
        if progress is not None:
            progress(ImportProgress("write", total, total, 0))
        rows = await conn.fetchval("SELECT count(*) FROM import_ported")
        changed = await conn.fetchval(
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
            txn.now,
        )
        emit_imported(txn, "ported", rows)
    return ImportReport("ported", rows, changed, total, time.perf_counter() - started)
