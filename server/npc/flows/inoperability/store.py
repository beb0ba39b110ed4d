"""All the SQL of the inoperability registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from asyncpg import Connection, Record

from npc.flows.inoperability.model import NewEvent
from npc.flows.inoperability.rules import ClosingReason, CriticalTransaction, Scenario

# An event with its attention point and the counts of critical transactions served during it.
_EVENT_COLUMNS = f"""e.*, p.name AS point_name, p.kind AS point_kind,
    (SELECT count(*) FROM inoperability_critical_transactions c
     WHERE c.event_id = e.id AND c.kind = '{CriticalTransaction.BLOCK_STOLEN_OR_LOST}')
     AS critical_block,
    (SELECT count(*) FROM inoperability_critical_transactions c
     WHERE c.event_id = e.id AND c.kind = '{CriticalTransaction.CLAIM_FILING}') AS critical_claims"""
_EVENT_FROM = """inoperability_events e
    JOIN attention_points p ON p.operator_id = e.operator_id AND p.code = e.attention_point_code"""

# Unique index refusing a second open event per attention point and request type.
ONE_OPEN = "inoperability_one_open"


async def upsert_attention_point(
    conn: Connection,
    operator: str,
    *,
    code: str,
    name: str,
    kind: str,
    address: str,
    location: str,
    now: datetime,
) -> Record:
    """Register an attention point, or update its data (its registration instant stays)."""
    row: Record | None = await conn.fetchrow(
        """INSERT INTO attention_points (operator_id, code, name, kind, address, location,
                                         registered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (operator_id, code) DO UPDATE
           SET name = EXCLUDED.name, kind = EXCLUDED.kind, address = EXCLUDED.address,
               location = EXCLUDED.location
           RETURNING *""",
        operator,
        code,
        name,
        kind,
        address,
        location,
        now,
    )
    assert row is not None
    return row


async def attention_point_exists(conn: Connection, operator: str, code: str) -> bool:
    """Whether the operator registered this attention point."""
    found = await conn.fetchval(
        "SELECT 1 FROM attention_points WHERE operator_id = $1 AND code = $2", operator, code
    )
    return found is not None


async def attention_points(conn: Connection, operator: str) -> list[dict[str, Any]]:
    """The operator's registered attention points, by code."""
    rows = await conn.fetch(
        "SELECT code, name, kind, address, location FROM attention_points"
        " WHERE operator_id = $1 ORDER BY code",
        operator,
    )
    return [dict(row) for row in rows]


async def next_event_number(conn: Connection, operator: str) -> int:
    """The operator's next correlative event number.

    The counter row stays locked until commit: concurrent registrations of the operator take
    numbers one after the other, and a rollback returns the number, so the registry has no gaps.
    """
    number: int = await conn.fetchval(
        """INSERT INTO inoperability_counters (operator_id, last_number) VALUES ($1, 1)
           ON CONFLICT (operator_id) DO UPDATE
           SET last_number = inoperability_counters.last_number + 1
           RETURNING last_number""",
        operator,
    )
    return number


async def insert_event(conn: Connection, event: NewEvent) -> None:
    """Store an opened event; asyncpg's UniqueViolationError (`ONE_OPEN`) when its attention
    point already has one open for the request type."""
    values = asdict(event)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))
    await conn.execute(
        f"INSERT INTO inoperability_events ({', '.join(values)}) VALUES ({placeholders})",
        *values.values(),
    )


async def event(conn: Connection, operator: str, number: int) -> Record | None:
    """An event with its attention point and critical transaction counts."""
    row: Record | None = await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM {_EVENT_FROM} WHERE e.operator_id = $1 AND e.number = $2",
        operator,
        number,
    )
    return row


async def lock_event_row(conn: Connection, operator: str, number: int) -> None:
    """Lock an event's row until commit (after its case lock)."""
    await conn.execute(
        "SELECT 1 FROM inoperability_events WHERE operator_id = $1 AND number = $2 FOR UPDATE",
        operator,
        number,
    )


async def lock_event_by_id(conn: Connection, event_id: str) -> Record | None:
    """An event's plain row by case id, locked until commit (after its case lock)."""
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM inoperability_events WHERE id = $1 FOR UPDATE", event_id
    )
    return row


async def close_event(
    conn: Connection,
    event_id: str,
    *,
    ended_at: datetime,
    closing_reason: str,
    closing_note: str,
    closed_at: datetime,
    report_due_at: datetime | None,
) -> None:
    """Record an event's end, its closing reason and when its report is due."""
    await conn.execute(
        """UPDATE inoperability_events
           SET ended_at = $2, closing_reason = $3, closing_note = $4, closed_at = $5,
               report_due_at = $6
           WHERE id = $1""",
        event_id,
        ended_at,
        closing_reason,
        closing_note,
        closed_at,
        report_due_at,
    )


async def insert_critical_transaction(
    conn: Connection, event_id: str, kind: str, reference: str, served_at: datetime
) -> None:
    """Record a critical transaction served during an event."""
    await conn.execute(
        """INSERT INTO inoperability_critical_transactions (event_id, kind, reference, served_at)
           VALUES ($1, $2, $3, $4)""",
        event_id,
        kind,
        reference,
        served_at,
    )


async def insert_report(conn: Connection, operator: str, submitted_at: datetime) -> str:
    """Store a consolidated report; its id: ``IR0000000001``."""
    seq: int = await conn.fetchval("SELECT nextval('inoperability_report_seq')")
    report_id = f"IR{seq:010d}"
    await conn.execute(
        "INSERT INTO inoperability_reports (id, operator_id, submitted_at) VALUES ($1, $2, $3)",
        report_id,
        operator,
        submitted_at,
    )
    return report_id


async def mark_reported(
    conn: Connection, operator: str, numbers: Sequence[int], report_id: str, at: datetime
) -> None:
    """Record that these events of the operator are in the report."""
    await conn.execute(
        """UPDATE inoperability_events SET report_id = $3, reported_at = $4
           WHERE operator_id = $1 AND number = ANY($2::bigint[])""",
        operator,
        list(numbers),
        report_id,
        at,
    )


async def reportable_events(
    conn: Connection, operator: str, since: datetime, until: datetime
) -> list[Record]:
    """The operator's events started in [since, until), error/test records excluded, by number."""
    rows: list[Record] = await conn.fetch(
        f"""SELECT {_EVENT_COLUMNS} FROM {_EVENT_FROM}
            WHERE e.operator_id = $1 AND e.started_at >= $2 AND e.started_at < $3
              AND e.scenario <> '{Scenario.ERROR_OR_TEST}'
              AND e.closing_reason IS DISTINCT FROM '{ClosingReason.USER_ERROR}'
            ORDER BY e.number""",
        operator,
        since,
        until,
    )
    return rows


async def open_event_of(
    conn: Connection, operator: str, attention_point: str, request_type: str
) -> str:
    """The id of the attention point's open event for the request type ('' if none)."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM inoperability_events WHERE operator_id = $1"
        " AND attention_point_code = $2 AND request_type = $3 AND ended_at IS NULL",
        operator,
        attention_point,
        request_type,
    )
    return found or ""
