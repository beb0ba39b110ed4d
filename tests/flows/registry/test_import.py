"""Bulk import of the numbering plan and of ported numbers: good files load in one transaction,
the first bad row fails the whole import with its line number, and `npc admin import` works end to
end (in-process: `run_npc`)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from npc.admin import OperatorSpec, seed_demo, upsert_operator
from npc.flows.registry.importer import (
    ImportProgress,
    RegistryImportError,
    import_plan,
    import_ported,
)
from npc.store.database import Database
from tests.conftest import DatabaseSupply
from tests.helpers import run_npc

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PLAN = "operator,service,first,last\n"
PORTED = "number,serving_operator,ported_at\n"


@contextlib.asynccontextmanager
async def _market_with_wom(database_url: str) -> AsyncIterator[Database]:
    """The demo market plus operator `wom`, which holds no range yet."""
    database = await Database.connect(database_url, min_size=1, max_size=4)
    try:
        await seed_demo(database)
        await upsert_operator(database, OperatorSpec("wom", "WOM Perú", "25"))
        yield database
    finally:
        await database.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The demo market plus operator `wom`, which holds no range yet."""
    async with _market_with_wom(database_url) as database:
        yield database


@pytest.fixture(scope="module")
def module_database_url(database_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh migrated database for the module's failing imports."""
    name, dsn = database_supply.take()
    yield dsn
    database_supply.drop(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_db(module_database_url: str) -> AsyncIterator[Database]:
    """`db` shared by the failing imports, which load nothing (each compares the counts)."""
    async with _market_with_wom(module_database_url) as database:
        yield database


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _counts(db: Database) -> tuple[int, ...]:
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM number_ranges), (SELECT count(*) FROM ported_numbers),
                      (SELECT count(*) FROM number_history), (SELECT count(*) FROM events)"""
        )
    return tuple(row)


async def _serving(db: Database, number: str) -> str | None:
    async with db.pool.acquire() as conn:
        value: str | None = await conn.fetchval(
            """SELECT COALESCE(p.serving_operator, r.operator_id)
               FROM number_ranges r LEFT JOIN ported_numbers p ON p.number = $1
               WHERE r.numbers @> $1::bigint""",
            number,
        )
    return value


async def test_a_plan_file_adds_its_ranges_and_broadcasts_once(db, tmp_path):
    path = _write(
        tmp_path,
        "plan.csv",
        PLAN + "wom,mobile,970000000,974999999\r\n wom , fixed , 14000000 , 14999999 \n\n"
        "entel,mobile,975000000,979999999\n",
    )
    seen: list[ImportProgress] = []
    report = await import_plan(db, path, seen.append, now=NOW)
    assert (report.kind, report.rows, report.changed) == ("plan", 3, 3)
    assert seen[0].phase == "copy" and seen[-1].phase == "write"
    assert seen[0].bytes_read == seen[0].total_bytes == path.stat().st_size
    assert await _serving(db, "972345678") == "wom"
    assert await _serving(db, "14000000") == "wom"
    assert await _serving(db, "979999999") == "entel"
    async with db.pool.acquire() as conn:
        service = await conn.fetchval(
            "SELECT service FROM number_ranges WHERE numbers @> 14999999::bigint"
        )
        events = await conn.fetch(
            "SELECT * FROM events WHERE type = 'registry.imported'"
            " AND payload->>'kind' NOT IN ('operators', 'seed')"
        )
    assert service == "fixed"
    assert len(events) == 1
    event = events[0]
    assert (event["flow"], event["broadcast"], event["sender"]) == (
        "registry",
        True,
        "clearinghouse",
    )
    assert event["payload"] == {"kind": "plan", "rows": 3}
    assert event["occurred_at"] == NOW


async def test_a_ported_file_sets_the_serving_operator_and_writes_history(db, tmp_path):
    async with db.pool.acquire() as conn:
        # 940000003 is already ported to claro; the file moves it on to entel.
        await conn.execute(
            """INSERT INTO ported_numbers VALUES
               ('940000003', 'mobile', 'movistar', 'claro', '2025-01-01T00:00:00Z', 'C1')"""
        )
    path = _write(
        tmp_path,
        "ported.csv",
        PORTED + "910000001,movistar,2024-03-01T10:15:00-05:00\n"
        "12000005,claro,2024-02-29 08:00:00.25+00:00\n"
        "940000003,entel,2025-06-30T12:00Z\n",
    )
    report = await import_ported(db, path, now=NOW)
    assert (report.kind, report.rows, report.changed) == ("ported", 3, 3)
    assert await _serving(db, "910000001") == "movistar"
    assert await _serving(db, "910000002") == "claro"
    assert await _serving(db, "12000005") == "claro"
    assert await _serving(db, "940000003") == "entel"
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM ported_numbers WHERE number = '910000001'")
        history = await conn.fetch(
            "SELECT number, from_operator, to_operator, changed_at, reason FROM number_history"
            " ORDER BY number"
        )
        payload = await conn.fetchval(
            "SELECT payload FROM events WHERE type = 'registry.imported'"
            " AND payload->>'kind' = 'ported'"
        )
    assert (row["service"], row["range_holder"], row["case_id"]) == ("mobile", "claro", None)
    assert row["ported_at"] == datetime(2024, 3, 1, 15, 15, tzinfo=UTC)
    assert [tuple(r) for r in history] == [
        ("12000005", "movistar", "claro", NOW, "import"),
        ("910000001", "claro", "movistar", NOW, "import"),
        ("940000003", "claro", "entel", NOW, "import"),
    ]
    assert payload == {"kind": "ported", "rows": 3}

    # Importing the same file again changes nothing, so it writes no history.
    again = await import_ported(db, path, now=NOW)
    assert (again.rows, again.changed) == (3, 0)


GOOD_PLAN = "wom,mobile,970000000,970999999\n"
GOOD_PORTED = "910000001,movistar,2024-03-01T10:15:00-05:00\n"


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("wom,mobile,970000000\n", 3, "bad format: expected 4 fields, found 3"),
        ("wom,cable,970000000,970000001\n", 3, "service 'cable' is neither mobile nor fixed"),
        ("wom,mobile,870000000,870000001\n", 3, "mobile numbers are 9 digits starting with 9"),
        ("wom,fixed,1400000,14000001\n", 3, "fixed numbers are 8 digits"),
        ("wom,mobile,971000009,971000001\n", 3, "first 971000009 is after last 971000001"),
        ("nobody,mobile,971000000,971000001\n", 3, "unknown operator 'nobody'"),
        (
            "wom,mobile,971000000,971999999\nwom,mobile,971500000,972000000\n",
            4,
            "range 971500000-972000000 overlaps the range 971000000-971999999 on line 3",
        ),
        ("wom,mobile,969999990,970000005\n", 3, "overlaps the range 970000000-970999999 on line 2"),
        (
            "wom,mobile,919999990,920000005\n",
            3,
            "overlaps the range 910000000-919999999 of claro already in the plan",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # loads nothing: one database for every case
async def test_a_bad_plan_row_fails_the_import_and_loads_nothing(
    module_db, tmp_path, body, line, reason
):
    db = module_db
    path = _write(tmp_path, "plan.csv", PLAN + GOOD_PLAN + body + GOOD_PLAN.replace("970", "973"))
    before = await _counts(db)
    with pytest.raises(RegistryImportError) as caught:
        await import_plan(db, path, now=NOW)
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert await _counts(db) == before


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("910000002,movistar\n", 3, "bad format: expected 3 fields, found 2"),
        ("91000000x,movistar,2024-03-01T10:15:00Z\n", 3, "number '91000000x' is neither"),
        ("81000000,movistar,2024-03-01T10:15:00Z\n", 3, "outside the numbering plan"),
        ("910000002,movistar,2024-03-01\n", 3, "ported_at '2024-03-01' is not an ISO 8601"),
        ("910000002,movistar,2024-03-01T10:15:00\n", 3, "is not an ISO 8601"),
        ("910000002,movistar,2023-02-29T10:15:00Z\n", 3, "is not an ISO 8601"),
        ("910000002,nobody,2024-03-01T10:15:00Z\n", 3, "unknown operator 'nobody'"),
        (
            "999999999,movistar,2024-03-01T10:15:00Z\n",
            3,
            "number 999999999 is outside the numbering plan",
        ),
        (
            "910000002,claro,2024-03-01T10:15:00Z\n",
            3,
            "number 910000002: its range holder claro is the serving operator",
        ),
        (
            "940000001,claro,2024-03-01T10:15:00Z\n910000001,entel,2024-03-01T10:15:00Z\n",
            4,
            "duplicate number 910000001 (also on line 2)",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # loads nothing: one database for every case
async def test_a_bad_ported_row_fails_the_import_and_loads_nothing(
    module_db, tmp_path, body, line, reason
):
    db = module_db
    path = _write(
        tmp_path, "ported.csv", PORTED + GOOD_PORTED + body + "940000009,bitel,2024-03-01T10:15Z\n"
    )
    before = await _counts(db)
    with pytest.raises(RegistryImportError) as caught:
        await import_ported(db, path, now=NOW)
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert await _counts(db) == before


async def test_a_wrong_header_or_bad_bytes_fail_on_their_line(db, tmp_path):
    path = _write(tmp_path, "plan.csv", "number,serving_operator,ported_at\n" + GOOD_PLAN)
    with pytest.raises(RegistryImportError) as caught:
        await import_plan(db, path, now=NOW)
    assert caught.value.line == 1 and "header" in caught.value.reason
    bad = tmp_path / "bad.csv"
    bad.write_bytes((PORTED + GOOD_PORTED).encode() + b"910000003,bitel,\xff\n")
    before = await _counts(db)
    with pytest.raises(RegistryImportError) as caught:
        await import_ported(db, bad, now=NOW)
    assert caught.value.line == 3 and caught.value.reason.startswith("bad format")
    assert await _counts(db) == before


async def test_a_hundred_thousand_ported_numbers(db, tmp_path):
    operators = ["movistar", "entel", "bitel"]
    lines = [PORTED]
    for i in range(100_000):
        lines.append(f"{910000000 + i},{operators[i % 3]},2024-03-01T10:15:00-05:00\n")
    path = _write(tmp_path, "ported.csv", "".join(lines))
    report = await import_ported(db, path, now=NOW)
    assert (report.rows, report.changed) == (100_000, 100_000)
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM ported_numbers") == 100_000
        assert await conn.fetchval("SELECT count(*) FROM number_history") == 100_000
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM ported_numbers WHERE serving_operator = 'bitel'"
            )
            == 33_333
        )


async def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await run_npc("admin", "import", *args, env={"NPC_DATABASE_URL": database_url})


async def test_npc_admin_import_end_to_end(db, database_url, tmp_path):
    plan = _write(tmp_path, "plan.csv", PLAN + "wom,mobile,970000000,970999999\n")
    done = await _run(database_url, "plan", str(plan))
    assert done.returncode == 0, done.stderr
    assert "imported 1 ranges added to the plan" in done.stdout
    assert "100.0%" in done.stderr

    ported = _write(
        tmp_path,
        "ported.csv",
        PORTED + "970000001,claro,2024-03-01T10:15:00-05:00\n970000002,wom,2024-03-01T10:15Z\n",
    )
    before = await _counts(db)
    failed = await _run(database_url, "ported", str(ported))
    assert failed.returncode == 1
    assert "line 3: number 970000002: its range holder wom is the serving operator" in failed.stderr
    assert await _counts(db) == before

    _write(tmp_path, "ported.csv", PORTED + "970000001,claro,2024-03-01T10:15:00-05:00\n")
    done = await _run(database_url, "ported", str(ported))
    assert done.returncode == 0, done.stderr
    assert "imported 1 ported numbers recorded" in done.stdout
    assert await _serving(db, "970000001") == "claro"

    missing = await _run(database_url, "ported", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
