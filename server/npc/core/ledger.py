"""Reads of the compliance ledger: pages of records and counts per operator and rule, under one
filter. Who may read what is the caller's business (``npc.api.compliance``); these only read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asyncpg import Record

from npc.core.compliance import NO_SEVERITY
from npc.store.database import Database

_COLUMNS = """id, operator_id, flow, case_id, rule, infraction, article, severity, description,
              due_at, observed_at, evidence, source_kind, source_document, source_note"""

# Every condition of a filter, numbered as `_arguments` gives them.
_WHERE = (
    """flow = ANY($1::text[])
            AND ($2::text IS NULL OR operator_id = $2)
            AND ($3::text[] IS NULL OR rule = ANY($3::text[]))
            AND ($4::timestamptz IS NULL OR observed_at >= $4)
            AND ($5::timestamptz IS NULL OR observed_at < $5)
            AND ($6::text[] IS NULL OR coalesce(severity, '"""
    + NO_SEVERITY
    + """') = ANY($6))"""
)


@dataclass(frozen=True)
class LedgerFilter:
    """Which records: those of `flows`, and of the other fields where they are set.

    Attributes:
        flows: the flows the reader may see (its country's).
        operator: only this operator's records.
        rules: only these rule keys.
        start: observed at or after this instant.
        end: observed before this instant.
        severities: only these severities (``none`` for records whose source gives none).
    """

    flows: tuple[str, ...]
    operator: str | None = None
    rules: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    severities: tuple[str, ...] | None = None

    def _arguments(self) -> tuple[object, ...]:
        return (
            list(self.flows),
            self.operator,
            list(self.rules) if self.rules is not None else None,
            self.start,
            self.end,
            list(self.severities) if self.severities is not None else None,
        )


async def records(
    db: Database, where: LedgerFilter, after: tuple[datetime, int] | None, limit: int
) -> Sequence[Record]:
    """Up to `limit` records under `where`, oldest first (observation instant, then id), after
    the record `after` (its instant and id) when given."""
    async with db.pool.acquire() as conn:
        rows: Sequence[Record] = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM compliance_records
                WHERE {_WHERE}
                  AND ($7::timestamptz IS NULL OR (observed_at, id) > ($7, $8::bigint))
                ORDER BY observed_at, id
                LIMIT $9""",
            *where._arguments(),
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    return rows


async def counts(db: Database, where: LedgerFilter) -> Sequence[Record]:
    """The number of records under `where` per operator and rule (with the rule's infraction,
    severity and source kind as recorded), by operator, flow and rule."""
    async with db.pool.acquire() as conn:
        rows: Sequence[Record] = await conn.fetch(
            f"""SELECT operator_id, flow, rule, infraction, severity, source_kind,
                       count(*) AS records
                FROM compliance_records
                WHERE {_WHERE}
                GROUP BY operator_id, flow, rule, infraction, severity, source_kind
                ORDER BY operator_id, flow, rule, source_kind NULLS FIRST""",
            *where._arguments(),
        )
    return rows
