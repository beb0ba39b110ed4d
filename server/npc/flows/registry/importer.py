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
from npc.flows.registry import store
from npc.store.database import Database, Txn
from npc.store.operators import registered_ids

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
    """Copy the file, one line per row, into the staging table and the registered operators
    beside it; check the header; return the size."""
    conn = txn.conn
    await store.create_staging(conn)
    total = (await asyncio.to_thread(path.stat)).st_size
    try:
        await store.copy_into_staging(conn, _read_chunks(path, total, progress))
    except (asyncpg.DataError, asyncpg.BadCopyFileFormatError) as exc:
        where = re.search(r"line (\d+)", getattr(exc, "context", None) or "")
        raise RegistryImportError(
            int(where.group(1)) if where else 0, f"bad format: {exc}"
        ) from exc
    first = await store.staged_header(conn)
    got = (first or "").removeprefix("\ufeff").rstrip("\r").replace(" ", "")
    if got != header:
        raise RegistryImportError(1, f"bad format: the header must be {header!r}")
    await store.stage_operators(conn, await registered_ids(conn))
    if progress is not None:
        progress(ImportProgress("validate", total, total, 0))
    return total


async def _first_error(txn: Txn, table: str) -> None:
    row = await store.first_import_error(txn.conn, table)
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
        await store.lock_plan(txn.conn)
        total = await _stage(txn, path, PLAN_HEADER, progress)
        await store.stage_plan(txn.conn)
        await _first_error(txn, "import_plan_checked")
        if progress is not None:
            progress(ImportProgress("write", total, total, 0))
        added = await store.write_plan(txn.conn)
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
        # Reads (lookups, snapshots) go on; ports executing meanwhile wait for the import.
        await store.lock_ported(txn.conn)
        total = await _stage(txn, path, PORTED_HEADER, progress)
        await store.stage_ported(txn.conn)
        await _first_error(txn, "import_ported_checked")
        if progress is not None:
            progress(ImportProgress("write", total, total, 0))
        rows, changed = await store.write_ported(txn.conn, txn.now)
        emit_imported(txn, "ported", rows)
    return ImportReport("ported", rows, changed, total, time.perf_counter() - started)
