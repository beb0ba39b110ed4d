"""SQL of the portability flow. Every function runs on the caller's transaction connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg import Record

from npc.core.cases import CaseTable
from npc.core.numbers import NumberSource
from npc.core.ports import PortRecord
from npc.flows.portability.model import NewConsultation, NewPortRequest
from npc.flows.portability.rules import FLOW
from npc.flows.portability.validation import NumberEntry

REQUESTS = CaseTable(
    FLOW, "port_requests", "port_request", ("recipient", "donor"), deferred_updates=True
)
CONSULTATIONS = CaseTable(FLOW, "prior_consultations", "prior_consultation", ("recipient", "donor"))


async def next_id(conn: asyncpg.Connection, prefix: str) -> str:
    """A new case number: SP0000000001 or CP0000000001."""
    sequence = "port_request_seq" if prefix == "SP" else "prior_consultation_seq"
    value = await conn.fetchval(f"SELECT nextval('{sequence}')")
    return f"{prefix}{value:010d}"


def _insert(columns: Sequence[str]) -> tuple[str, str]:
    """The column list and placeholders of an INSERT of `columns`, JSON columns cast."""
    placeholders = [
        f"${i}::jsonb" if name in _JSON_COLUMNS else f"${i}"
        for i, name in enumerate(columns, start=1)
    ]
    return ", ".join(columns), ", ".join(placeholders)


# Columns of the case tables that hold JSON documents.
_JSON_COLUMNS = frozenset({"document", "numbers", "subscriber"})
_CONSULTATION_COLUMNS = tuple(f.name for f in fields(NewConsultation))
_REQUEST_COLUMNS = tuple(f.name for f in fields(NewPortRequest))
_INSERT_CONSULTATION = "INSERT INTO prior_consultations ({}) VALUES ({}) RETURNING *".format(
    *_insert(_CONSULTATION_COLUMNS)
)
_NEW_ID = "'SP' || lpad(nextval('port_request_seq')::text, 10, '0')"
_INSERT_REQUEST = """WITH request AS (
       INSERT INTO port_requests (id, {0})
       VALUES ({new_id}, {1})
       RETURNING *
   ), numbers AS (
       INSERT INTO port_request_numbers (port_request_id, number, modality)
       SELECT request.id, u.n, u.m
       FROM request, unnest(${n}::text[], ${m}::text[]) AS u(n, m)
       ON CONFLICT (number) WHERE live DO NOTHING
       RETURNING number
   )
   SELECT * FROM request
   WHERE (SELECT count(*) FROM numbers) = cardinality(${n}::text[])""".format(
    *_insert(_REQUEST_COLUMNS),
    new_id=_NEW_ID,
    n=len(_REQUEST_COLUMNS) + 1,
    m=len(_REQUEST_COLUMNS) + 2,
)


async def insert_consultation(conn: asyncpg.Connection, consultation: NewConsultation) -> Record:
    """Insert a prior consultation and return its row."""
    row: Record | None = await conn.fetchrow(
        _INSERT_CONSULTATION, *(getattr(consultation, c) for c in _CONSULTATION_COLUMNS)
    )
    assert row is not None
    return row


async def insert_request(
    conn: asyncpg.Connection, request: NewPortRequest, numbers: Sequence[NumberEntry]
) -> Record | None:
    """Insert a port request under a new case number (SP0000000001) and its numbers (each number
    live), in one statement; None when a number already has a live request (the caller must roll
    back: the request row was written). A conflict skips the number instead of failing the
    statement, so that the transaction can still name the live request (`live_holder`)."""
    row: Record | None = await conn.fetchrow(
        _INSERT_REQUEST,
        *(getattr(request, c) for c in _REQUEST_COLUMNS),
        [n.number for n in numbers],
        [str(n.modality) for n in numbers],
    )
    return row


async def live_holder(conn: asyncpg.Connection, numbers: Sequence[str]) -> Record | None:
    """After `insert_request` returned None: the first of `numbers` that another live request
    holds, and that request (the one just written, this session's last id, is left out)."""
    row: Record | None = await conn.fetchrow(
        "SELECT number, port_request_id FROM port_request_numbers"
        " WHERE number = ANY($1::text[]) AND live"
        f" AND port_request_id <> {_NEW_ID.replace('nextval', 'currval')}"
        " ORDER BY number LIMIT 1",
        list(numbers),
    )
    return row


async def consultation_parties(conn: asyncpg.Connection, consultation_id: str) -> Record | None:
    """The recipient, donor and state of a prior consultation, or None."""
    row: Record | None = await conn.fetchrow(
        "SELECT recipient, donor, state FROM prior_consultations WHERE id = $1", consultation_id
    )
    return row


async def release_numbers(conn: asyncpg.Connection, case_id: str) -> None:
    """The request can no longer lead to a port: its numbers are free for a new request."""
    await conn.execute(
        "UPDATE port_request_numbers SET live = false WHERE port_request_id = $1 AND live", case_id
    )


def executed_numbers(case_id: str) -> NumberSource:
    """At the execution: the request's numbers, released for new requests as `release_numbers`
    does, read by the move itself (`numbers.move_numbers_from`): one round trip for the
    release, the move, its history and the routing code (the execution's cost bounds how late
    the change window's deadlines fire)."""
    return NumberSource(
        """released AS (
               UPDATE port_request_numbers SET live = false
               WHERE port_request_id = $1::text AND live),""",
        "(SELECT number FROM port_request_numbers WHERE port_request_id = $1::text)",
        case_id,
    )


async def request_numbers(conn: asyncpg.Connection, case_id: str) -> list[str]:
    """The numbers of a request."""
    rows = await conn.fetch(
        "SELECT number FROM port_request_numbers WHERE port_request_id = $1 ORDER BY number",
        case_id,
    )
    return [r["number"] for r in rows]


async def request_modalities(conn: asyncpg.Connection, case_id: str) -> list[str]:
    """The modality the form gives each number of a request, in the numbers' order."""
    rows = await conn.fetch(
        "SELECT modality FROM port_request_numbers WHERE port_request_id = $1 ORDER BY number",
        case_id,
    )
    return [r["modality"] for r in rows]


async def public_status_row(
    conn: asyncpg.Connection, case_id: str, document: str, first_numbers: int
) -> Record | None:
    """A port request with its first `first_numbers` numbers, found only when `document` is its
    subscriber's document number (compared without case), by one and the same query."""
    row: Record | None = await conn.fetchrow(
        """SELECT r.*,
                  ARRAY(SELECT n.number FROM port_request_numbers n
                        WHERE n.port_request_id = r.id ORDER BY n.number LIMIT $3)
                      AS first_numbers
           FROM port_requests r
           WHERE r.id = $1 AND upper(r.subscriber->'document'->>'number') = upper($2)""",
        case_id,
        document,
        first_numbers,
    )
    return row


async def request_counts(
    conn: asyncpg.Connection, start: datetime, end: datetime, operator: str | None
) -> list[dict[str, Any]]:
    """Port requests submitted in [start, end) by recipient, donor, service and state (with the
    donor's silences); with `operator`, only those where it is a party."""
    rows = await conn.fetch(
        """SELECT recipient, donor, service, state, count(*) AS requests,
                  count(*) FILTER (WHERE donor_silent) AS donor_silent
           FROM port_requests
           WHERE submitted_at >= $1 AND submitted_at < $2
             AND ($3::text IS NULL OR recipient = $3 OR donor = $3)
           GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
        start,
        end,
        operator,
    )
    return [dict(r) for r in rows]


# The donor's answer time of each message it owed in a period (CP and SP), answered or not.
_OWED = """
    SELECT donor, donor_silent, submitted_at, answered_at FROM prior_consultations
    WHERE submitted_at >= $1 AND submitted_at < $2 AND ($3::text IS NULL OR donor = $3)
    UNION ALL
    SELECT donor, donor_silent, submitted_at, answered_at FROM port_requests
    WHERE submitted_at >= $1 AND submitted_at < $2 AND ($3::text IS NULL OR donor = $3)
"""


async def donor_answer_times(
    conn: asyncpg.Connection, start: datetime, end: datetime, operator: str | None, term: float
) -> list[dict[str, Any]]:
    """Per donor, the prior consultations and port requests submitted in [start, end): answers,
    those within `term` seconds, silences, and the median, 95th percentile and longest answer
    time in seconds (None without answers); with `operator`, only it as donor."""
    rows = await conn.fetch(
        f"""WITH owed AS ({_OWED}),
                answered AS (
                    SELECT donor, extract(epoch FROM answered_at - submitted_at)::float8 AS s
                    FROM owed WHERE answered_at IS NOT NULL AND NOT donor_silent)
            SELECT o.donor,
                   count(*) AS owed,
                   count(*) FILTER (WHERE o.donor_silent) AS silences,
                   (SELECT count(*) FROM answered a WHERE a.donor = o.donor) AS answers,
                   (SELECT count(*) FROM answered a WHERE a.donor = o.donor AND a.s <= $4)
                       AS in_time,
                   (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a.s)
                    FROM answered a WHERE a.donor = o.donor) AS median_seconds,
                   (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY a.s)
                    FROM answered a WHERE a.donor = o.donor) AS p95_seconds,
                   (SELECT max(a.s) FROM answered a WHERE a.donor = o.donor) AS max_seconds
            FROM owed o GROUP BY o.donor ORDER BY o.donor""",
        start,
        end,
        operator,
        term,
    )
    return [dict(r) for r in rows]


async def daily_ports(
    conn: asyncpg.Connection, start: datetime, end: datetime, operator: str | None, zone: str
) -> list[dict[str, Any]]:
    """Ports executed in [start, end) per local day (`zone`), donor and recipient, with their
    numbers; with `operator`, only those where it is a party."""
    rows = await conn.fetch(
        """SELECT (executed_at AT TIME ZONE $4)::date AS day, donor, recipient,
                  count(*) AS ports, sum(number_count)::bigint AS numbers
           FROM port_requests
           WHERE executed_at >= $1 AND executed_at < $2
             AND ($3::text IS NULL OR recipient = $3 OR donor = $3)
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        start,
        end,
        operator,
        zone,
    )
    return [dict(r) for r in rows]


async def list_requests(
    conn: asyncpg.Connection,
    party: str | None,
    state: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Record]:
    """Port requests newest first: those where `party` is a party (all when None), in `state`
    (any when None), after the (submitted_at, id) cursor `after`; at most `limit`."""
    rows: list[Record] = await conn.fetch(
        """SELECT * FROM port_requests
           WHERE ($1::text IS NULL OR recipient = $1 OR donor = $1)
             AND ($2::text IS NULL OR state = $2)
             AND ($3::timestamptz IS NULL OR (submitted_at, id) < ($3, $4))
           ORDER BY submitted_at DESC, id DESC LIMIT $5""",
        party,
        state,
        after[0] if after else None,
        after[1] if after else "",
        limit,
    )
    return rows


class PortTables:
    """The portability flow's answers to other flows about ports (`npc.core.ports.PortRecords`)."""

    async def port(self, conn: asyncpg.Connection, port_request_id: str) -> PortRecord | None:
        """The port request `port_request_id`, or None."""
        row = await conn.fetchrow(
            """SELECT id, donor, recipient, state,
                      COALESCE(donor_disabled_at, executed_at) AS disabled_at
               FROM port_requests WHERE id = $1""",
            port_request_id,
        )
        if row is None:
            return None
        return PortRecord(
            row["id"], row["donor"], row["recipient"], row["state"], row["disabled_at"]
        )

    async def numbers_of(self, conn: asyncpg.Connection, port_request_id: str) -> list[str]:
        """The numbers of the port request, in order."""
        rows = await conn.fetch(
            "SELECT number FROM port_request_numbers WHERE port_request_id = $1 ORDER BY number",
            port_request_id,
        )
        return [r["number"] for r in rows]

    async def includes(self, conn: asyncpg.Connection, port_request_id: str, number: str) -> bool:
        """True when `number` is one of the port request's numbers."""
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM port_request_numbers WHERE port_request_id = $1 AND number = $2",
                port_request_id,
                number,
            )
        )

    async def with_live_request(self, conn: asyncpg.Connection, numbers: Sequence[str]) -> set[str]:
        """Those of `numbers` that a live port request holds."""
        rows = await conn.fetch(
            "SELECT number FROM port_request_numbers WHERE number = ANY($1::text[]) AND live",
            list(numbers),
        )
        return {r["number"] for r in rows}
