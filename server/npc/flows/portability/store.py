"""SQL of the portability flow. Every function runs on the caller's transaction connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg import Record

from npc.core.cases import CaseTable
from npc.core.ports import PortRecord
from npc.flows.portability.rules import FLOW
from npc.flows.portability.validation import NumberEntry

REQUESTS = CaseTable(FLOW, "port_requests", "port_request", ("recipient", "donor"))
CONSULTATIONS = CaseTable(FLOW, "prior_consultations", "prior_consultation", ("recipient", "donor"))


async def next_id(conn: asyncpg.Connection, prefix: str) -> str:
    """A new case number: SP0000000001 or CP0000000001."""
    sequence = "port_request_seq" if prefix == "SP" else "prior_consultation_seq"
    value = await conn.fetchval(f"SELECT nextval('{sequence}')")
    return f"{prefix}{value:010d}"


async def insert_consultation(conn: asyncpg.Connection, values: dict[str, Any]) -> Record:
    """Insert a prior consultation and return its row."""
    row = await conn.fetchrow(
        """INSERT INTO prior_consultations (id, recipient, donor, service, document, numbers,
               number_count, state, submitted_at, donor_deadline)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10) RETURNING *""",
        values["id"],
        values["recipient"],
        values["donor"],
        values["service"],
        values["document"],
        values["numbers"],
        values["number_count"],
        values["state"],
        values["submitted_at"],
        values["donor_deadline"],
    )
    assert row is not None
    return row


async def insert_request(
    conn: asyncpg.Connection, values: dict[str, Any], numbers: Sequence[NumberEntry]
) -> Record:
    """Insert a port request under a new case number (SP0000000001) and its numbers (each number
    live), in one statement. Raises UniqueViolationError when a number already has a live
    request."""
    row = await conn.fetchrow(
        """WITH request AS (
               INSERT INTO port_requests (id, recipient, donor, service, subscriber, numbers,
                   number_count, special_client, state, form_number, prior_consultation_id,
                   received_at, submitted_at, donor_deadline, installation_date, execution_limit)
               VALUES ('SP' || lpad(nextval('port_request_seq')::text, 10, '0'), $1, $2, $3,
                       $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
               RETURNING *
           ), numbers AS (
               INSERT INTO port_request_numbers (port_request_id, number, modality)
               SELECT request.id, u.n, u.m
               FROM request, unnest($16::text[], $17::text[]) AS u(n, m)
           )
           SELECT * FROM request""",
        values["recipient"],
        values["donor"],
        values["service"],
        values["subscriber"],
        values["numbers"],
        values["number_count"],
        values["special_client"],
        values["state"],
        values["form_number"],
        values["prior_consultation_id"],
        values["received_at"],
        values["submitted_at"],
        values["donor_deadline"],
        values["installation_date"],
        values["execution_limit"],
        [n.number for n in numbers],
        [n.modality for n in numbers],
    )
    assert row is not None
    return row


async def release_numbers(conn: asyncpg.Connection, case_id: str) -> None:
    """The request can no longer lead to a port: its numbers are free for a new request."""
    await conn.execute(
        "UPDATE port_request_numbers SET live = false WHERE port_request_id = $1 AND live", case_id
    )


async def request_numbers(conn: asyncpg.Connection, case_id: str) -> list[str]:
    """The numbers of a request."""
    rows = await conn.fetch(
        "SELECT number FROM port_request_numbers WHERE port_request_id = $1 ORDER BY number",
        case_id,
    )
    return [r["number"] for r in rows]


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
