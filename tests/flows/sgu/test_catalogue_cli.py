"""`npc admin sgu-catalogue FILE`: the regulator loads the SGU catalogue from a CSV
file; the command runs in-process (`run_npc`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.helpers import run_npc

HEADER = (
    "code,name,category,category_name,service,deadline_unit,deadline_amount,claimable,"
    "claim_business_days,active\n"
)


async def _admin(dsn: str, path: Path) -> subprocess.CompletedProcess[str]:
    return await run_npc("admin", "sgu-catalogue", str(path), env={"NPC_DATABASE_URL": dsn})


async def _rows(dsn: str) -> dict[str, tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT code, deadline_unit, deadline_amount, claimable, active FROM sgu_subcategories"
        )
    finally:
        await conn.close()
    return {r["code"]: tuple(r.values())[1:] for r in rows}


async def test_a_catalogue_file_adds_and_changes_subcategories(
    database_url: str, tmp_path: Path
) -> None:
    before = await _rows(database_url)
    assert before["REC-01"] == ("hours", 24, True, True)
    path = tmp_path / "catalogo.csv"
    path.write_text(
        HEADER
        + "REC-01,Recarga no acreditada,REC,Recargas,mobile,hours,12,true,3,true\n"
        + "DAT-01,Internet móvil sin funcionar,DAT,Datos móviles,mobile,business_days,1,"
        "yes,3,\n"
        + "INF-01,Consulta sobre planes y tarifas,INF,Información,mobile,business_days,2,"
        "false,15,false\n",
        encoding="utf-8",
    )
    done = await _admin(database_url, path)
    assert done.returncode == 0, done.stderr
    assert "loaded 3 SGU subcategories" in done.stdout
    after = await _rows(database_url)
    assert after["REC-01"] == ("hours", 12, True, True)
    assert after["DAT-01"] == ("business_days", 1, True, True)
    assert after["INF-01"] == ("business_days", 2, False, False)
    assert len(after) == len(before) + 1


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("DAT-01,Datos,DAT,Datos,mobile,days,1,true,3,true", "deadline_unit"),
        ("DAT-01,Datos,DAT,Datos,mobile,hours,0,true,3,true", "deadline_amount"),
        ("DAT-01,Datos,XYZ,Datos,mobile,hours,4,true,3,true", "category"),
        ("DAT-01,Datos,DAT,Datos,mobile,hours,4,maybe,3,true", "claimable"),
        ("REC-01,Recarga,REC,Recargas,mobile,hours,4,true,3,true", "appears twice"),
    ],
)
async def test_a_bad_line_loads_nothing_and_names_the_line(
    database_url: str, tmp_path: Path, line: str, reason: str
) -> None:
    before = await _rows(database_url)
    path = tmp_path / "catalogo.csv"
    path.write_text(
        HEADER + "REC-01,Recarga no acreditada,REC,Recargas,mobile,hours,6,true,3,true\n" + line,
        encoding="utf-8",
    )
    failed = await _admin(database_url, path)
    assert failed.returncode == 1
    assert "line 3" in failed.stderr and reason in failed.stderr
    assert "nothing loaded" in failed.stderr
    assert await _rows(database_url) == before
