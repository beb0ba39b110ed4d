"""All the SQL of the cancellations tracking: reporting operators, daily reports, tracked
requests and the chain of daily-report deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from asyncpg import Connection, Record

from npc.flows.cancellations.model import ReportingOperator, StoredRecord
from npc.flows.cancellations.rules import FLOW, SCHEDULED, DeadlineKind

# ---------------------------------------------------------------- reporting operators


async def reporting_operator(conn: Connection, operator: str) -> ReportingOperator | None:
    """The reporting obligation of `operator`, if it has one."""
    row = await conn.fetchrow("SELECT * FROM reporting_operators WHERE operator_id = $1", operator)
    return None if row is None else ReportingOperator.of(row)


async def reporting_operators(conn: Connection, operator: str | None) -> list[ReportingOperator]:
    """Every reporting obligation (or `operator`'s), by operator."""
    rows = await conn.fetch(
        "SELECT * FROM reporting_operators WHERE ($1::text IS NULL OR operator_id = $1)"
        " ORDER BY operator_id",
        operator,
    )
    return [ReportingOperator.of(row) for row in rows]


async def ever_reporting(conn: Connection) -> list[str]:
    """The operators bound to report, now or before (their requests stay visible)."""
    rows = await conn.fetch("SELECT operator_id FROM reporting_operators")
    return [row["operator_id"] for row in rows]


async def upsert_reporting_operator(
    conn: Connection, operator: str, since: date, subscribers: int | None, now: datetime
) -> None:
    """Bind `operator` from `since` on; clears an earlier end, keeps its subscribers when None."""
    await conn.execute(
        """INSERT INTO reporting_operators (operator_id, since, until, subscribers, updated_at)
           VALUES ($1, $2, NULL, $3, $4)
           ON CONFLICT (operator_id) DO UPDATE SET since = EXCLUDED.since, until = NULL,
               subscribers = COALESCE(EXCLUDED.subscribers, reporting_operators.subscribers),
               updated_at = EXCLUDED.updated_at""",
        operator,
        since,
        subscribers,
        now,
    )


async def end_reporting_operator(
    conn: Connection, operator: str, until: date, now: datetime
) -> bool:
    """Make `until` the operator's last report date; False if it was not reporting."""
    updated = await conn.fetchval(
        "UPDATE reporting_operators SET until = $2, updated_at = $3 WHERE operator_id = $1"
        " RETURNING operator_id",
        operator,
        until,
        now,
    )
    return updated is not None


async def report_chain(conn: Connection, operator: str) -> tuple[date | None, int]:
    """The latest report date of the operator's daily-report deadlines, and how many are pending."""
    chain = await conn.fetchrow(
        """SELECT max((payload->>'report_date')::date) AS latest,
                  count(*) FILTER (WHERE fired_at IS NULL) AS pending
           FROM deadlines WHERE flow = $1 AND kind = $3
             AND payload->>'operator' = $2 AND cancelled_at IS NULL""",
        FLOW,
        operator,
        DeadlineKind.DAILY_REPORT.value,
    )
    assert chain is not None
    return chain["latest"], chain["pending"]


# ---------------------------------------------------------------- daily reports


async def lock_report(conn: Connection, operator: str, report_date: date) -> Record | None:
    """The stored report of this date (id, version), locked until commit."""
    row: Record | None = await conn.fetchrow(
        "SELECT id, version FROM cancellation_reports WHERE operator_id = $1"
        " AND report_date = $2 FOR UPDATE",
        operator,
        report_date,
    )
    return row


async def insert_report(
    conn: Connection,
    operator: str,
    report_date: date,
    due_at: datetime,
    now: datetime,
    record_count: int,
) -> Record:
    """Store the first version of a report date."""
    row: Record | None = await conn.fetchrow(
        """INSERT INTO cancellation_reports (operator_id, report_date, due_at,
               first_received_at, received_at, version, record_count)
           VALUES ($1, $2, $3, $4, $4, 1, $5) RETURNING *""",
        operator,
        report_date,
        due_at,
        now,
        record_count,
    )
    assert row is not None
    return row


async def replace_report(
    conn: Connection, report_id: int, now: datetime, record_count: int
) -> tuple[Record, list[str]]:
    """Drop a report's records for a new version; the new row and the request codes dropped."""
    replaced = await conn.fetch(
        "DELETE FROM cancellation_report_records WHERE report_id = $1 RETURNING request_code",
        report_id,
    )
    row: Record | None = await conn.fetchrow(
        """UPDATE cancellation_reports SET received_at = $2, version = version + 1,
               record_count = $3 WHERE id = $1 RETURNING *""",
        report_id,
        now,
        record_count,
    )
    assert row is not None
    return row, [r["request_code"] for r in replaced]


async def copy_records(conn: Connection, report_id: int, records: Sequence[StoredRecord]) -> None:
    """Store a report's records (COPY: a report holds up to hundreds of thousands)."""
    if records:
        await conn.copy_records_to_table(
            "cancellation_report_records",
            records=[(report_id, *r) for r in records],
            columns=["report_id", *StoredRecord._fields],
        )


async def first_received_at(conn: Connection, operator: str, report_date: date) -> datetime | None:
    """When the first version of a report date arrived (None: never)."""
    received: datetime | None = await conn.fetchval(
        "SELECT first_received_at FROM cancellation_reports WHERE operator_id = $1"
        " AND report_date = $2",
        operator,
        report_date,
    )
    return received


async def reports_between(
    conn: Connection, start: date, end: date, operator: str | None
) -> list[Record]:
    """The reports of dates start..end (inclusive): operator, date, first arrival, due instant."""
    rows: list[Record] = await conn.fetch(
        """SELECT operator_id, report_date, first_received_at, due_at
           FROM cancellation_reports
           WHERE report_date BETWEEN $1 AND $2
             AND ($3::text IS NULL OR operator_id = $3)""",
        start,
        end,
        operator,
    )
    return rows


# ---------------------------------------------------------------- tracked requests


async def tracked_states(conn: Connection, operator: str, codes: Sequence[str]) -> list[Record]:
    """State, execution and scheduled deadline of these tracked requests (before a report)."""
    rows: list[Record] = await conn.fetch(
        "SELECT id, state, executed_at, scheduled_deadline FROM tracked_requests"
        " WHERE operator_id = $1 AND request_code = ANY($2::text[])",
        operator,
        list(codes),
    )
    return rows


async def project_tracked(
    conn: Connection, operator: str, codes: Sequence[str], now: datetime, timezone: str
) -> list[Record]:
    """Bring these requests' `tracked_requests` rows to their latest reported record; returns
    id, request_code, state, executed_at and scheduled_deadline (the end of the scheduled date
    in `timezone`)."""
    rows: list[Record] = await conn.fetch(
        """INSERT INTO tracked_requests (id, operator_id, request_code, kind, service, channel,
               requested_at, document_type, document_number, service_number, service_status,
               scheduled_date, scheduled_deadline, state, executed_at, execution_reason,
               target_plan, last_report_date, first_reported_at, updated_at)
           SELECT 'BM' || lpad(nextval('tracked_request_seq')::text, 10, '0'), $1,
                  l.request_code, l.kind, l.service, l.channel, l.requested_at,
                  l.document_type, l.document_number, l.service_number, l.service_status,
                  l.scheduled_date,
                  ((l.scheduled_date + 1)::timestamp AT TIME ZONE $4),
                  l.state, l.executed_at, l.execution_reason, l.target_plan, l.report_date,
                  $3, $3
           FROM (SELECT DISTINCT ON (r.request_code) r.*, rep.report_date
                 FROM cancellation_report_records r
                 JOIN cancellation_reports rep ON rep.id = r.report_id
                 WHERE rep.operator_id = $1 AND r.request_code = ANY($2::text[])
                 ORDER BY r.request_code, rep.report_date DESC) l
           ORDER BY l.request_code
           ON CONFLICT (operator_id, request_code) DO UPDATE SET
               kind = EXCLUDED.kind, service = EXCLUDED.service, channel = EXCLUDED.channel,
               requested_at = EXCLUDED.requested_at, document_type = EXCLUDED.document_type,
               document_number = EXCLUDED.document_number,
               service_number = EXCLUDED.service_number,
               service_status = EXCLUDED.service_status,
               scheduled_date = EXCLUDED.scheduled_date,
               scheduled_deadline = EXCLUDED.scheduled_deadline, state = EXCLUDED.state,
               executed_at = EXCLUDED.executed_at,
               execution_reason = EXCLUDED.execution_reason,
               target_plan = EXCLUDED.target_plan,
               last_report_date = EXCLUDED.last_report_date, updated_at = EXCLUDED.updated_at
           RETURNING id, request_code, state, executed_at, scheduled_deadline""",
        operator,
        list(codes),
        now,
        timezone,
    )
    return rows


async def drop_unreported(conn: Connection, operator: str, codes: Sequence[str]) -> list[str]:
    """Delete the tracked requests of these codes no report mentions any more; their ids."""
    rows = await conn.fetch(
        """DELETE FROM tracked_requests t WHERE t.operator_id = $1
               AND t.request_code = ANY($2::text[])
               AND NOT EXISTS (SELECT 1 FROM cancellation_report_records r
                               JOIN cancellation_reports rep ON rep.id = r.report_id
                               WHERE rep.operator_id = t.operator_id
                                 AND r.request_code = t.request_code)
           RETURNING id""",
        operator,
        list(codes),
    )
    return [row["id"] for row in rows]


async def tracked_request(conn: Connection, request_id: str) -> Record | None:
    """A tracked request by its case id (a plain read, no lock)."""
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM tracked_requests WHERE id = $1", request_id
    )
    return row


async def tracked_request_by_code(
    conn: Connection, operator: str, request_code: str
) -> Record | None:
    """An operator's tracked request by its request code."""
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM tracked_requests WHERE operator_id = $1 AND request_code = $2",
        operator,
        request_code,
    )
    return row


async def public_request(
    conn: Connection, operator: str, request_code: str, document: str
) -> Record | None:
    """A tracked request whose subscriber document matches (case-insensitively), with `missed`:
    whether a compliance record judged its scheduled date."""
    row: Record | None = await conn.fetchrow(
        """SELECT t.*,
                  EXISTS (SELECT 1 FROM compliance_records c WHERE c.flow = $4
                          AND c.case_id = t.id AND c.rule = $5) AS missed
           FROM tracked_requests t
           WHERE t.operator_id = $1 AND t.request_code = $2
             AND upper(t.document_number) = upper($3)""",
        operator,
        request_code,
        document,
        FLOW,
        SCHEDULED.key,
    )
    return row
