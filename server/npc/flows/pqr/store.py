"""SQL of the PQR flow: CUN ranges, PQRs, SMS QUEJA requests and the monthly counts.

Functions taking a connection run on the caller's (transaction's) connection.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime

import asyncpg
from asyncpg import Record

from npc.core.cases import CaseTable
from npc.flows.pqr.rules import FLOW, Kind, SmsState

CASES = CaseTable(FLOW, "pqrs", "pqr", ("provider",))
SMS = CaseTable(FLOW, "pqr_sms_requests", "sms_request", ("provider",))


# ------------------------------------------------------------------ CUN ranges


async def insert_cun_range(
    conn: asyncpg.Connection, provider: str, first: str, last: str, at: datetime, by: str
) -> Record:
    """Assign `first`..`last` to `provider`; raises ExclusionViolationError on an overlap."""
    row: Record | None = await conn.fetchrow(
        """INSERT INTO cun_ranges (operator_id, numbers, width, next_value, assigned_at,
                                   assigned_by)
           VALUES ($1, int8range($2, $3, '[]'), $4, $2, $5, $6) RETURNING *""",
        provider,
        int(first),
        int(last),
        len(first),
        at,
        by,
    )
    assert row is not None
    return row


async def insert_cun_range_if_free(
    conn: asyncpg.Connection, provider: str, first: str, last: str, at: datetime, by: str
) -> None:
    """Assign `first`..`last` to `provider` unless a range already covers part of it."""
    await conn.execute(
        """INSERT INTO cun_ranges (operator_id, numbers, width, next_value, assigned_at,
                                   assigned_by)
           SELECT $1, int8range($2, $3, '[]'), $4, $2, $5, $6
           WHERE NOT EXISTS (SELECT 1 FROM cun_ranges
                             WHERE numbers && int8range($2, $3, '[]'))""",
        provider,
        int(first),
        int(last),
        len(first),
        at,
        by,
    )


async def take_next_cun(conn: asyncpg.Connection, provider: str) -> str | None:
    """The next CUN of the provider's lowest range with room, or None when a concurrent filing
    exhausted the range this one waited on.

    The range row is locked while its counter moves, so concurrent filings never share a CUN.
    """
    row: Record | None = await conn.fetchrow(
        """UPDATE cun_ranges SET next_value = next_value + 1
           WHERE id = (SELECT id FROM cun_ranges
                       WHERE operator_id = $1 AND next_value < upper(numbers)
                       ORDER BY lower(numbers) LIMIT 1 FOR UPDATE)
             AND next_value < upper(numbers)
           RETURNING next_value - 1 AS value, width""",
        provider,
    )
    return None if row is None else str(row["value"]).zfill(row["width"])


async def has_cun_left(conn: asyncpg.Connection, provider: str) -> bool:
    """True when one of the provider's ranges still has a CUN to issue."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM cun_ranges WHERE operator_id = $1"
            " AND next_value < upper(numbers))",
            provider,
        )
    )


async def has_cun_range(conn: asyncpg.Connection, provider: str) -> bool:
    """True when the provider holds a CUN range (it is under the PQR regime)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM cun_ranges WHERE operator_id = $1)", provider
        )
    )


async def range_holders(conn: asyncpg.Connection, provider: str | None) -> list[str]:
    """The providers holding a CUN range (only `provider` when given), by id."""
    rows = await conn.fetch(
        "SELECT DISTINCT operator_id FROM cun_ranges"
        " WHERE $1::text IS NULL OR operator_id = $1 ORDER BY operator_id",
        provider,
    )
    return [r["operator_id"] for r in rows]


# ------------------------------------------------------------------ PQRs


@dataclass(frozen=True)
class NewPqr:
    """The columns of a PQR at filing (its columns' names)."""

    id: str
    provider: str
    kind: str
    channel: str
    subject: str
    state: str
    user_name: str
    document_type: str
    document_number: str
    email: str | None
    address: str | None
    phone: str | None
    facts: str
    sms_request_id: str | None
    filed_at: datetime
    answer_due: datetime


_NEW_PQR_COLUMNS = [f.name for f in fields(NewPqr)]
_INSERT_PQR = (
    f"INSERT INTO pqrs ({', '.join(_NEW_PQR_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(_NEW_PQR_COLUMNS) + 1))}) RETURNING *"
)


async def insert_pqr(conn: asyncpg.Connection, pqr: NewPqr) -> Record:
    """Store a new PQR and return its row."""
    row: Record | None = await conn.fetchrow(_INSERT_PQR, *astuple(pqr))
    assert row is not None
    return row


async def read_pqr(conn: asyncpg.Connection, cun: str) -> Record | None:
    """The PQR with that CUN, unlocked, or None."""
    row: Record | None = await conn.fetchrow("SELECT * FROM pqrs WHERE id = $1", cun)
    return row


# ------------------------------------------------------------------ SMS QUEJA requests


async def next_sms_request_id(conn: asyncpg.Connection) -> str:
    """A new SMS QUEJA request id: SQ0000000001."""
    return f"SQ{await conn.fetchval('SELECT nextval($1)', 'pqr_sms_seq'):010d}"


async def insert_sms_request(
    conn: asyncpg.Connection,
    sms_id: str,
    provider: str,
    msisdn: str,
    text: str,
    *,
    received_at: datetime,
    ack_due: datetime,
    call_due: datetime,
) -> Record:
    """Store a received SMS QUEJA request and return its row."""
    row: Record | None = await conn.fetchrow(
        """INSERT INTO pqr_sms_requests (id, provider, msisdn, text, state, received_at,
               ack_due, call_due)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
        sms_id,
        provider,
        msisdn,
        text,
        SmsState.RECEIVED.value,
        received_at,
        ack_due,
        call_due,
    )
    assert row is not None
    return row


# ------------------------------------------------------------------ monthly indicators


async def sms_counts(conn: asyncpg.Connection, start: datetime, end: datetime) -> dict[str, Record]:
    """By provider: SMS requests received in [start, end), acknowledged and contacted in time,
    and closed unreachable."""
    rows = await conn.fetch(
        """SELECT provider, count(*) AS n,
                  count(*) FILTER (WHERE acknowledged_at < ack_due) AS ack,
                  count(*) FILTER (WHERE contacted_at < call_due) AS contacted,
                  count(*) FILTER (WHERE state = $3) AS unreachable
           FROM pqr_sms_requests WHERE received_at >= $1 AND received_at < $2
           GROUP BY provider""",
        start,
        end,
        SmsState.CLOSED_UNREACHABLE.value,
    )
    return {r["provider"]: r for r in rows}


async def pqr_counts(conn: asyncpg.Connection, start: datetime, end: datetime) -> dict[str, Record]:
    """By provider: PQRs filed, silences applied, transfers to the SIC, answers (both stages)
    and answers in time, each counted in [start, end) by the instant it happened."""
    rows = await conn.fetch(
        """SELECT provider,
             count(*) FILTER (WHERE filed_at >= $1 AND filed_at < $2) AS filed,
             count(*) FILTER (WHERE silence_at >= $1 AND silence_at < $2) AS silences,
             count(*) FILTER (WHERE transferred_at >= $1 AND transferred_at < $2)
                 AS transfers,
             count(*) FILTER (WHERE answered_at >= $1 AND answered_at < $2)
               + count(*) FILTER (WHERE rec_answered_at >= $1 AND rec_answered_at < $2)
                 AS answers,
             count(*) FILTER (WHERE answered_at >= $1 AND answered_at < $2
                              AND answered_at < answer_due)
               + count(*) FILTER (WHERE rec_answered_at >= $1 AND rec_answered_at < $2
                                  AND rec_answered_at < rec_answer_due)
                 AS answers_in_time
           FROM pqrs GROUP BY provider""",
        start,
        end,
    )
    return {r["provider"]: r for r in rows}


async def late_counts(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    """(provider, rule key) -> the flow's compliance records due in [start, end)."""
    rows = await conn.fetch(
        """SELECT operator_id, rule, count(*) AS n FROM compliance_records
           WHERE flow = $1 AND due_at >= $2 AND due_at < $3
           GROUP BY operator_id, rule""",
        FLOW,
        start,
        end,
    )
    return {(r["operator_id"], r["rule"]): r["n"] for r in rows}


async def complaint_subjects(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> dict[str, list[tuple[str, int]]]:
    """By provider: (subject, complaints filed in [start, end)), most frequent first."""
    subjects: dict[str, list[tuple[str, int]]] = {}
    for r in await conn.fetch(
        """SELECT provider, subject, count(*) AS n FROM pqrs
           WHERE kind = $3 AND filed_at >= $1 AND filed_at < $2
           GROUP BY provider, subject ORDER BY provider, n DESC, subject""",
        start,
        end,
        Kind.COMPLAINT.value,
    ):
        subjects.setdefault(r["provider"], []).append((r["subject"], r["n"]))
    return subjects


async def overlapping_cun_range(conn: asyncpg.Connection, first: str, last: str) -> str:
    """An assigned CUN range overlapping `first`..`last`, as "first-last" ('' if none)."""
    row: Record | None = await conn.fetchrow(
        "SELECT lower(numbers) AS first, upper(numbers) - 1 AS last, width FROM cun_ranges"
        " WHERE numbers && int8range($1, $2, '[]') ORDER BY lower(numbers) LIMIT 1",
        int(first),
        int(last),
    )
    if row is None:
        return ""
    width = row["width"]
    return f"{row['first']:0{width}d}-{row['last']:0{width}d}"
