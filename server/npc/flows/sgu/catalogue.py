"""The SGU catalogue of categories and subcategories: its checks, its upsert, and the CSV load
`npc admin sgu-catalogue` runs. The RPC and the command share the same rules."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import asyncpg
from asyncpg import Record

from npc.core.validation import Violations, printable
from npc.flows.sgu import store
from npc.flows.sgu.events import emit_catalogue_changed
from npc.flows.sgu.model import Subcategory
from npc.flows.sgu.rules import (
    CATEGORY,
    CATEGORY_NAME_LIMIT,
    DEADLINE_UNIT_REQUIRED,
    MAX_BUSINESS_DAYS,
    MAX_HOURS,
    NAME_LIMIT,
    SUBCATEGORY,
    DeadlineUnit,
)
from npc.store.database import Database, Txn

CSV_COLUMNS = (
    "code",
    "name",
    "category",
    "category_name",
    "service",
    "deadline_unit",
    "deadline_amount",
    "claimable",
    "claim_business_days",
)
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def check_subcategory(v: Violations, s: Subcategory, field: str = "subcategory") -> None:
    """A catalogue entry: code CATEGORY-NN, names, service, deadline and claim deadline."""
    if not SUBCATEGORY.fullmatch(s.code):
        v.add(f"{field}.code", "required: CATEGORY-NN, e.g. REC-01")
    elif s.code.split("-")[0] != s.category:
        v.add(f"{field}.category", "must be the code's prefix")
    if not CATEGORY.fullmatch(s.category):
        v.add(f"{field}.category", "required: 2 to 8 capital letters")
    if not printable(s.name, limit=NAME_LIMIT):
        v.add(f"{field}.name", f"required: up to {NAME_LIMIT} printable characters")
    if not printable(s.category_name, limit=CATEGORY_NAME_LIMIT):
        v.add(
            f"{field}.category_name", f"required: up to {CATEGORY_NAME_LIMIT} printable characters"
        )
    if s.service not in ("mobile", "fixed"):
        v.add(f"{field}.service", "required: mobile or fixed")
    if s.deadline_unit is None:
        v.add(f"{field}.deadline_unit", DEADLINE_UNIT_REQUIRED)
    limit = MAX_HOURS if s.deadline_unit == DeadlineUnit.HOURS else MAX_BUSINESS_DAYS
    if not 1 <= s.deadline_amount <= limit:
        v.add(f"{field}.deadline_amount", f"required: 1 to {limit}")
    if not 1 <= s.claim_business_days <= MAX_BUSINESS_DAYS:
        v.add(f"{field}.claim_business_days", f"required: 1 to {MAX_BUSINESS_DAYS} business days")


async def upsert(txn: Txn, s: Subcategory, sender: str) -> Record:
    """Add or change a checked subcategory and announce it on the event log."""
    row = await store.upsert_subcategory(txn, s)
    emit_catalogue_changed(txn, s.code, s.active, sender)
    return row


class CatalogueImportError(Exception):
    """A bad line of a catalogue file; nothing was loaded."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _entry(line: int, values: dict[str, str]) -> Subcategory:
    def number(name: str) -> int:
        text = values.get(name, "").strip()
        if not text.isdigit():
            raise CatalogueImportError(line, f"{name}: a whole number")
        return int(text)

    def flag(name: str, default: bool | None = None) -> bool:
        text = values.get(name, "").strip().lower()
        if not text and default is not None:
            return default
        if text not in _BOOLEANS:
            raise CatalogueImportError(line, f"{name}: true or false")
        return _BOOLEANS[text]

    unit = values.get("deadline_unit", "").strip()
    if unit not in {u.value for u in DeadlineUnit}:
        raise CatalogueImportError(line, "deadline_unit: business_days or hours")
    entry = Subcategory(
        code=values.get("code", "").strip(),
        name=values.get("name", "").strip(),
        category=values.get("category", "").strip(),
        category_name=values.get("category_name", "").strip(),
        service=values.get("service", "").strip(),
        deadline_unit=DeadlineUnit(unit),
        deadline_amount=number("deadline_amount"),
        claimable=flag("claimable"),
        claim_business_days=number("claim_business_days"),
        active=flag("active", True),
    )
    v = Violations()
    check_subcategory(v, entry, "")
    if v.items:
        first = v.items[0]
        raise CatalogueImportError(line, f"{first.field.lstrip('.')}: {first.description}")
    return entry


async def load_catalogue_csv(db: Database, path: Path, *, now: datetime, sender: str) -> int:
    """Add or change every subcategory of a CSV file in one transaction; return how many.

    The header names the columns (CSV_COLUMNS, and optionally `active`). The first bad line fails
    the whole load with its line number.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueImportError(1, f"missing columns: {', '.join(missing)}")
        entries = [_entry(reader.line_num, row) for row in reader]
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.code in seen:
            raise CatalogueImportError(index + 2, f"code {entry.code} appears twice")
        seen.add(entry.code)
    try:
        async with db.transaction("sgu.catalogue.load", now) as txn:
            for entry in entries:
                await upsert(txn, entry, sender)
    except asyncpg.CheckViolationError as exc:
        raise CatalogueImportError(0, str(exc)) from None
    return len(entries)
