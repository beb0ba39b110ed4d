"""Tracking of cancellations (bajas) and plan migrations: the operators' daily reports.

Operators with more than 500,000 subscribers (the `reporting_operators` table, managed with
`npc admin`) report every day, 7 days a week, every cancellation and plan migration request of
fixed and mobile telephony, internet and pay TV, from every channel. A report covers one local
report date D; resending it replaces it. Each request's current state is the one of the latest
report date that mentions it (`tracked_requests`), which subscribers look up on the regulator's
page.

Deadlines (both recorded in the compliance ledger):
- `daily_report`, one per reporting operator and report date: the report of D is due at
  `report_due_time` (default 23:59) local time on D+1. Missing then: a record against the
  operator. Firing arms the next date's deadline, so the chain runs every day of the week.
- `scheduled`, one per request with a scheduled date: at the end of that local day the request
  must be executed (or rejected/withdrawn). Still pending, or reported executed afterwards: a
  record against the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from npc.config import CancellationsSettings
from npc.core.compliance import Rule, record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import FailedPrecondition, NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.instants import timestamp, to_timestamp
from npc.core.runtime import Core
from npc.core.validation import Violations, check_document, check_operator, parse_date, printable
from npc.flows.cancellations.rules import DeadlineKind
from npc.store.database import Database, Txn
from npc.store.operators import name_of
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import common_pb2

FLOW = "cancellations"

DAILY_REPORT = Rule(
    "daily_report_missing",
    None,
    "Sistema de Seguimiento de Bajas y Migraciones: reporte diario (7 días a la semana)",
    "leve",
    "reporting operator",
    "Report every day, 7 days a week, every cancellation and plan migration request of the day.",
)
SCHEDULED = Rule(
    "scheduled_date_not_executed",
    None,
    "Sistema de Seguimiento de Bajas y Migraciones: fecha programada de baja o migración",
    "leve",
    "reporting operator",
    "Execute the cancellation or plan migration on its scheduled date.",
)

KINDS: dict[int, str] = {
    pb.REQUEST_KIND_CANCELLATION: "cancellation",
    pb.REQUEST_KIND_PLAN_MIGRATION: "migration",
}
SERVICES: dict[int, str] = {
    pb.TRACKED_SERVICE_FIXED_TELEPHONY: "fixed",
    pb.TRACKED_SERVICE_MOBILE_TELEPHONY: "mobile",
    pb.TRACKED_SERVICE_INTERNET: "internet",
    pb.TRACKED_SERVICE_PAY_TV: "pay_tv",
}
CHANNELS: dict[int, str] = {
    pb.ATTENTION_CHANNEL_STORE: "store",
    pb.ATTENTION_CHANNEL_PHONE: "phone",
    pb.ATTENTION_CHANNEL_WEB: "web",
    pb.ATTENTION_CHANNEL_MOBILE_APP: "mobile_app",
    pb.ATTENTION_CHANNEL_EMAIL: "email",
    pb.ATTENTION_CHANNEL_OTHER: "other",
}
SERVICE_STATUSES: dict[int, str] = {
    pb.SERVICE_STATUS_ACTIVE: "active",
    pb.SERVICE_STATUS_SUSPENDED: "suspended",
    pb.SERVICE_STATUS_CANCELLED: "cancelled",
    pb.SERVICE_STATUS_MIGRATED: "migrated",
}
STATES: dict[int, str] = {
    pb.TRACKED_REQUEST_STATE_PENDING: "pending",
    pb.TRACKED_REQUEST_STATE_EXECUTED: "executed",
    pb.TRACKED_REQUEST_STATE_REJECTED: "rejected",
    pb.TRACKED_REQUEST_STATE_WITHDRAWN: "withdrawn",
}
DOCUMENT_TYPES: dict[int, str] = {
    common_pb2.DOCUMENT_TYPE_DNI: "dni",
    common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA: "carnet_extranjeria",
    common_pb2.DOCUMENT_TYPE_RUC: "ruc",
    common_pb2.DOCUMENT_TYPE_OTHER: "other",
}


def _reverse(mapping: dict[int, str]) -> dict[str, int]:
    return {name: value for value, name in mapping.items()}


KIND_VALUES = _reverse(KINDS)
SERVICE_VALUES = _reverse(SERVICES)
CHANNEL_VALUES = _reverse(CHANNELS)
SERVICE_STATUS_VALUES = _reverse(SERVICE_STATUSES)
STATE_VALUES = _reverse(STATES)
DOCUMENT_VALUES = _reverse(DOCUMENT_TYPES)

REQUEST_CODE = re.compile(r"(?a)^[A-Za-z0-9._/-]{1,40}$")
SERVICE_NUMBER = re.compile(r"(?a)^[A-Za-z0-9-]{1,30}$")
MAX_PERIOD_DAYS = 366
# A report may describe requests presented long ago (a migration scheduled months ahead).
OLDEST_REQUEST = timedelta(days=3 * 365)

RECORD_COLUMNS = (
    "report_id",
    "request_code",
    "kind",
    "service",
    "channel",
    "requested_at",
    "document_type",
    "document_number",
    "service_number",
    "service_status",
    "scheduled_date",
    "state",
    "executed_at",
    "execution_reason",
    "target_plan",
)


def day_case(operator: str, report_date: date) -> str:
    """The case id of one operator's report date (its deadline and its compliance record)."""
    return f"{operator}/{report_date.isoformat()}"


@dataclass(frozen=True)
class ReportingOperator:
    """An operator bound to report, and the report dates it must cover."""

    operator: str
    since: date
    until: date | None
    subscribers: int | None

    def covers(self, report_date: date) -> bool:
        """True when the operator must report `report_date`."""
        return self.since <= report_date and (self.until is None or report_date <= self.until)


def record_message(row: Any) -> pb.RequestRecord:
    """A record row (of a report, or a tracked request) as its API message."""
    scheduled = row["scheduled_date"]
    return pb.RequestRecord(
        request_code=row["request_code"],
        kind=KIND_VALUES[row["kind"]],  # type: ignore[arg-type]
        service=SERVICE_VALUES[row["service"]],  # type: ignore[arg-type]
        channel=CHANNEL_VALUES[row["channel"]],  # type: ignore[arg-type]
        requested_at=to_timestamp(row["requested_at"]),
        subscriber_document=common_pb2.IdentityDocument(
            type=DOCUMENT_VALUES[row["document_type"]],  # type: ignore[arg-type]
            number=row["document_number"],
        ),
        service_number=row["service_number"] or "",
        service_status=SERVICE_STATUS_VALUES[row["service_status"]],  # type: ignore[arg-type]
        scheduled_date=scheduled.isoformat() if scheduled else "",
        state=STATE_VALUES[row["state"]],  # type: ignore[arg-type]
        executed_at=to_timestamp(row["executed_at"]),
        execution_reason=row["execution_reason"] or "",
        target_plan=row["target_plan"] or "",
    )


def tracked_message(row: Any) -> pb.TrackedRequest:
    """A tracked_requests row as its API message."""
    return pb.TrackedRequest(
        id=row["id"],
        operator=row["operator_id"],
        record=record_message(row),
        last_report_date=row["last_report_date"].isoformat(),
        first_reported_at=to_timestamp(row["first_reported_at"]),
        scheduled_deadline=to_timestamp(row["scheduled_deadline"]),
    )


def _needs_deadline(state: str, executed_at: datetime | None, deadline: datetime | None) -> bool:
    """Whether the scheduled-date deadline must (still) judge this request."""
    if deadline is None:
        return False
    if state == "pending":
        return True
    return state == "executed" and executed_at is not None and executed_at >= deadline


class CancellationsHandler:
    """Daily reports, tracked requests, their deadlines and the queries of the public pages."""

    def __init__(self, core: Core, settings: CancellationsSettings) -> None:
        self.core = core
        self.settings = settings
        self.calendar = core.calendar(settings.jurisdiction)

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.DAILY_REPORT, self._report_due)
        self.core.deadlines.register(FLOW, DeadlineKind.SCHEDULED, self._scheduled_passed)

    # ------------------------------------------------------------------ instants

    def report_due_at(self, report_date: date) -> datetime:
        """When the report of `report_date` is due: `report_due_time` local on the next day."""
        return self.calendar.at(report_date + timedelta(days=1), self.settings.report_due_time)

    def scheduled_deadline(self, scheduled: date) -> datetime:
        """The end (local midnight) of a scheduled date."""
        return self.calendar.at(scheduled + timedelta(days=1), datetime.min.time())

    def arm_report_deadline(self, txn: Txn, operator: str, report_date: date) -> None:
        """Set the deadline of one operator's report date."""
        txn.set_deadline(
            FLOW,
            DeadlineKind.DAILY_REPORT,
            day_case(operator, report_date),
            self.report_due_at(report_date),
            "daily cancellations and plan migrations report, 7 days a week",
            {"operator": operator, "report_date": report_date.isoformat()},
        )

    # ------------------------------------------------------------------ reporting operators

    @staticmethod
    async def reporting_operator(conn: Any, operator: str) -> ReportingOperator | None:
        """The reporting obligation of `operator`, if it has one."""
        row = await conn.fetchrow(
            "SELECT * FROM reporting_operators WHERE operator_id = $1", operator
        )
        if row is None:
            return None
        return ReportingOperator(row["operator_id"], row["since"], row["until"], row["subscribers"])

    # ------------------------------------------------------------------ reports

    def _check_record(
        self, v: Violations, field: str, record: pb.RequestRecord, report_date: date, now: datetime
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if not REQUEST_CODE.fullmatch(record.request_code):
            v.add(f"{field}.request_code", "required: 1 to 40 characters of [A-Za-z0-9._/-]")
        values["request_code"] = record.request_code
        for name, mapping, expected in (
            ("kind", KINDS, "CANCELLATION or PLAN_MIGRATION"),
            ("service", SERVICES, "FIXED_TELEPHONY, MOBILE_TELEPHONY, INTERNET or PAY_TV"),
            ("channel", CHANNELS, "the attention channel"),
            ("service_status", SERVICE_STATUSES, "ACTIVE, SUSPENDED, CANCELLED or MIGRATED"),
            ("state", STATES, "PENDING, EXECUTED, REJECTED or WITHDRAWN"),
        ):
            value = mapping.get(getattr(record, name))
            if value is None:
                v.add(f"{field}.{name}", f"required: {expected}")
            values[name] = value
        requested_at = timestamp(v, f"{field}.requested_at", record, "requested_at")
        if requested_at is not None and (
            self.calendar.local_date(requested_at) > report_date
            or requested_at < now - OLDEST_REQUEST
        ):
            v.add(
                f"{field}.requested_at",
                "must fall on or before the report date, within the last three years",
            )
        values["requested_at"] = requested_at
        if not record.HasField("subscriber_document"):
            v.add(f"{field}.subscriber_document", "required: the subscriber's identity document")
        else:
            check_document(v, f"{field}.subscriber_document", record.subscriber_document)
        values["document_type"] = DOCUMENT_TYPES.get(record.subscriber_document.type)
        values["document_number"] = record.subscriber_document.number
        if record.service_number and not SERVICE_NUMBER.fullmatch(record.service_number):
            v.add(f"{field}.service_number", "1 to 30 letters, digits or hyphens")
        values["service_number"] = record.service_number or None
        state = values["state"]
        scheduled = parse_date(record.scheduled_date) if record.scheduled_date else None
        if record.scheduled_date and scheduled is None:
            v.add(f"{field}.scheduled_date", "a date YYYY-MM-DD")
        elif scheduled is None and state in ("pending", "executed"):
            v.add(
                f"{field}.scheduled_date",
                "required: the date scheduled for the cancellation or migration",
            )
        values["scheduled_date"] = scheduled
        executed_at = timestamp(
            v, f"{field}.executed_at", record, "executed_at", required=state == "executed"
        )
        if executed_at is not None and state != "executed":
            v.add(f"{field}.executed_at", "only for executed requests")
        if executed_at is not None and (
            executed_at > now + timedelta(minutes=5)
            or (requested_at is not None and executed_at < requested_at)
        ):
            v.add(f"{field}.executed_at", "must lie between the request and now")
        values["executed_at"] = executed_at
        reason = record.execution_reason
        if reason and not printable(reason, limit=500):
            v.add(f"{field}.execution_reason", "at most 500 printable characters")
        elif not reason and state in ("executed", "rejected"):
            v.add(f"{field}.execution_reason", "required: the reason of the execution or rejection")
        values["execution_reason"] = reason or None
        plan = record.target_plan
        if plan and not printable(plan, limit=200):
            v.add(f"{field}.target_plan", "at most 200 printable characters")
        elif not plan and values["kind"] == "migration" and state in ("pending", "executed"):
            v.add(f"{field}.target_plan", "required: the plan the subscriber migrates to")
        values["target_plan"] = plan or None
        return values

    def _check_report(
        self, request: pb.SubmitDailyReportRequest, now: datetime
    ) -> tuple[date, list[dict[str, Any]]]:
        v = Violations()
        report_date = parse_date(request.report_date)
        today = self.calendar.local_date(now)
        if report_date is None:
            v.add("report_date", "required: the report date, YYYY-MM-DD")
        elif report_date > today:
            v.add("report_date", "a report covers a day that has begun (local time)")
        if len(request.records) > self.settings.max_records:
            v.add("records", f"at most {self.settings.max_records} records per report")
        v.raise_if_any()
        assert report_date is not None
        records = []
        seen: set[str] = set()
        for index, record in enumerate(request.records):
            field = f"records[{index}]"
            records.append(self._check_record(v, field, record, report_date, now))
            if record.request_code in seen:
                v.add(f"{field}.request_code", "appears twice in the report")
            seen.add(record.request_code)
            if len(v.items) >= 100:
                break  # enough to fix a systematic mistake; the rest would only repeat it
        v.raise_if_any()
        return report_date, records

    async def submit_report(
        self, txn: Txn, caller: Caller, request: pb.SubmitDailyReportRequest
    ) -> pb.DailyReportReceipt:
        """Store an operator's daily report, replacing any earlier version for the same date."""
        report_date, records = self._check_report(request, txn.now)
        operator = caller.operator
        if caller.is_regulator:
            raise PermissionDenied("the regulator reads reports; operators submit them")
        obligation = await self.reporting_operator(txn.conn, operator)
        if obligation is None:
            raise PermissionDenied(
                f"{operator} is not registered as a reporting operator (more than 500,000"
                " subscribers); the regulator registers it with `npc admin`"
            )
        if not obligation.covers(report_date):
            raise FailedPrecondition(
                f"{operator} reports dates from {obligation.since.isoformat()}"
                + (f" to {obligation.until.isoformat()}" if obligation.until else ""),
                violation_type="OUTSIDE_REPORTING_PERIOD",
                subject="report_date",
            )
        # Reports of one operator are ingested one at a time (they touch the same requests); the
        # day's lock is the one its deadline takes, so a report and its deadline never overlap.
        await txn.lock_case(FLOW, f"reports:{operator}")
        await txn.lock_case(FLOW, day_case(operator, report_date))
        due = self.report_due_at(report_date)
        previous = await txn.conn.fetchrow(
            "SELECT id, version FROM cancellation_reports WHERE operator_id = $1"
            " AND report_date = $2 FOR UPDATE",
            operator,
            report_date,
        )
        affected = {r["request_code"] for r in records}
        if previous is None:
            report = await txn.conn.fetchrow(
                """INSERT INTO cancellation_reports (operator_id, report_date, due_at,
                       first_received_at, received_at, version, record_count)
                   VALUES ($1, $2, $3, $4, $4, 1, $5) RETURNING *""",
                operator,
                report_date,
                due,
                txn.now,
                len(records),
            )
        else:
            replaced = await txn.conn.fetch(
                "DELETE FROM cancellation_report_records WHERE report_id = $1 RETURNING request_code",
                previous["id"],
            )
            affected.update(r["request_code"] for r in replaced)
            report = await txn.conn.fetchrow(
                """UPDATE cancellation_reports SET received_at = $2, version = version + 1,
                       record_count = $3 WHERE id = $1 RETURNING *""",
                previous["id"],
                txn.now,
                len(records),
            )
        assert report is not None
        if records:
            await txn.conn.copy_records_to_table(
                "cancellation_report_records",
                records=[
                    tuple(report["id"] if c == "report_id" else r[c] for c in RECORD_COLUMNS)
                    for r in records
                ],
                columns=list(RECORD_COLUMNS),
            )
        await self._project(txn, operator, sorted(affected))
        on_time = report["first_received_at"] < report["due_at"]
        txn.emit(
            FLOW,
            "cancellations.report_received",
            case_id=day_case(operator, report_date),
            sender=operator,
            audience=(operator,),
            payload={
                "operator": operator,
                "report_date": report_date.isoformat(),
                "records": len(records),
                "version": report["version"],
                "on_time": on_time,
            },
        )
        return pb.DailyReportReceipt(
            operator=operator,
            report_date=report_date.isoformat(),
            records=len(records),
            version=report["version"],
            received_at=to_timestamp(report["received_at"]),
            due_at=to_timestamp(report["due_at"]),
            on_time=on_time,
        )

    async def _project(self, txn: Txn, operator: str, codes: list[str]) -> None:
        """Bring `tracked_requests` of these request codes to their latest reported record."""
        if not codes:
            return
        before = {
            r["id"]: r
            for r in await txn.conn.fetch(
                "SELECT id, state, executed_at, scheduled_deadline FROM tracked_requests"
                " WHERE operator_id = $1 AND request_code = ANY($2::text[])",
                operator,
                codes,
            )
        }
        after = await txn.conn.fetch(
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
            codes,
            txn.now,
            self.calendar.timezone,
        )
        # A request whose only report was replaced by one without it is no longer tracked.
        gone = await txn.conn.fetch(
            """DELETE FROM tracked_requests t WHERE t.operator_id = $1
                   AND t.request_code = ANY($2::text[])
                   AND NOT EXISTS (SELECT 1 FROM cancellation_report_records r
                                   JOIN cancellation_reports rep ON rep.id = r.report_id
                                   WHERE rep.operator_id = t.operator_id
                                     AND r.request_code = t.request_code)
               RETURNING id""",
            operator,
            codes,
        )
        for row in gone:
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SCHEDULED)
        for row in after:
            old = before.get(row["id"])
            had = old is not None and _needs_deadline(
                old["state"], old["executed_at"], old["scheduled_deadline"]
            )
            needs = _needs_deadline(row["state"], row["executed_at"], row["scheduled_deadline"])
            unchanged = old is not None and old["scheduled_deadline"] == row["scheduled_deadline"]
            if needs and not (had and unchanged):
                txn.set_deadline(
                    FLOW,
                    DeadlineKind.SCHEDULED,
                    row["id"],
                    row["scheduled_deadline"],
                    "execute the cancellation or migration on its scheduled date",
                    {"request_code": row["request_code"]},
                )
            elif had and not needs:
                txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SCHEDULED)

    # ------------------------------------------------------------------ deadlines

    async def _report_due(self, txn: Txn, deadline: Deadline) -> None:
        operator = deadline.payload["operator"]
        report_date = date.fromisoformat(deadline.payload["report_date"])
        obligation = await self.reporting_operator(txn.conn, operator)
        if obligation is None or not obligation.covers(report_date):
            return  # no longer bound to report: the chain ends here
        received = await txn.conn.fetchval(
            "SELECT first_received_at FROM cancellation_reports WHERE operator_id = $1"
            " AND report_date = $2",
            operator,
            report_date,
        )
        if received is None:
            await record_breach(
                txn,
                flow=FLOW,
                rule=DAILY_REPORT,
                operator=operator,
                case_id=deadline.case_id,
                due_at=deadline.due_at,
                observed_at=txn.now,
                evidence={
                    "report_date": report_date.isoformat(),
                    "due_at": deadline.due_at.isoformat(),
                },
            )
        following = report_date + timedelta(days=1)
        if obligation.covers(following):
            self.arm_report_deadline(txn, operator, following)

    async def _scheduled_passed(self, txn: Txn, deadline: Deadline) -> None:
        # A plain read: the request's row lock may be held by a report being ingested, which
        # itself waits for this deadline's row; reading the committed state avoids the deadlock.
        row = await txn.conn.fetchrow(
            "SELECT * FROM tracked_requests WHERE id = $1", deadline.case_id
        )
        if row is None or not _needs_deadline(row["state"], row["executed_at"], deadline.due_at):
            return
        await record_breach(
            txn,
            flow=FLOW,
            rule=SCHEDULED,
            operator=row["operator_id"],
            case_id=row["id"],
            due_at=deadline.due_at,
            observed_at=txn.now,
            evidence={
                "request_code": row["request_code"],
                "kind": row["kind"],
                "scheduled_date": row["scheduled_date"].isoformat()
                if row["scheduled_date"]
                else None,
                "state": row["state"],
                "executed_at": row["executed_at"].isoformat() if row["executed_at"] else None,
            },
        )

    # ------------------------------------------------------------------ queries

    async def get_tracked_request(
        self, caller: Caller, request: pb.GetTrackedRequestRequest
    ) -> pb.TrackedRequest:
        """One request's current state, for the operator that reported it and the regulator."""
        v = Violations()
        operator = request.operator or ("" if caller.is_regulator else caller.operator)
        check_operator(v, "operator", operator)
        if not REQUEST_CODE.fullmatch(request.request_code):
            v.add("request_code", "required: the operator's request code")
        v.raise_if_any()
        if not caller.is_regulator and operator != caller.operator:
            raise PermissionDenied("operators read only their own requests")
        async with self.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM tracked_requests WHERE operator_id = $1 AND request_code = $2",
                operator,
                request.request_code,
            )
        if row is None:
            raise NotFound("tracked_request", f"{operator}/{request.request_code}")
        return tracked_message(row)

    async def public_status(
        self, operator: str, request_code: str, document: str
    ) -> dict[str, Any] | None:
        """A subscriber's view of one request, for the regulator's public page.

        `document` is the subscriber's identity document number as reported; a request is shown
        only when it matches, so a request code alone reveals nothing. Returns None when there is
        no such request (or the document does not match). Keys: operator, operator_name,
        request_code, kind (cancellation|migration), service (fixed|mobile|internet|pay_tv),
        channel, requested_at, state (pending|executed|rejected|withdrawn), service_status,
        scheduled_date, executed_at, execution_reason, target_plan, last_report_date,
        scheduled_date_missed (a compliance record exists for it).
        """
        if not (
            REQUEST_CODE.fullmatch(request_code)
            and re.fullmatch(r"[A-Za-z0-9-]{4,20}", document)
            and re.fullmatch(r"(?a)[a-z][a-z0-9_-]{1,31}", operator)
        ):
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
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
            if row is None:
                return None
            # A tracked request's operator is registered (foreign key): its name is found.
            operator_name = await name_of(conn, row["operator_id"])
        return {
            "operator": row["operator_id"],
            "operator_name": operator_name,
            "request_code": row["request_code"],
            "kind": row["kind"],
            "service": row["service"],
            "channel": row["channel"],
            "requested_at": row["requested_at"],
            "state": row["state"],
            "service_status": row["service_status"],
            "scheduled_date": row["scheduled_date"],
            "executed_at": row["executed_at"],
            "execution_reason": row["execution_reason"],
            "target_plan": row["target_plan"],
            "last_report_date": row["last_report_date"],
            "scheduled_date_missed": row["missed"],
        }

    async def daily_report_compliance(
        self, from_date: date, to_date: date, operator: str | None = None
    ) -> list[dict[str, Any]]:
        """Daily-report compliance per reporting operator over report dates from..to (inclusive).

        Only dates the operator had to report and whose due instant has passed count. Each item:
        operator, days_due, received, on_time (first version before the due instant), late,
        missing (never received), missing_dates and late_dates (lists of dates).
        """
        now = self.core.clock.now()
        async with self.core.db.pool.acquire() as conn:
            obligations = await conn.fetch(
                "SELECT * FROM reporting_operators WHERE ($1::text IS NULL OR operator_id = $1)"
                " ORDER BY operator_id",
                operator,
            )
            reports = await conn.fetch(
                """SELECT operator_id, report_date, first_received_at, due_at
                   FROM cancellation_reports
                   WHERE report_date BETWEEN $1 AND $2
                     AND ($3::text IS NULL OR operator_id = $3)""",
                from_date,
                to_date,
                operator,
            )
        received = {(r["operator_id"], r["report_date"]): r for r in reports}
        result = []
        for row in obligations:
            obligation = ReportingOperator(
                row["operator_id"], row["since"], row["until"], row["subscribers"]
            )
            item: dict[str, Any] = {
                "operator": obligation.operator,
                "days_due": 0,
                "received": 0,
                "on_time": 0,
                "late": 0,
                "missing": 0,
                "missing_dates": [],
                "late_dates": [],
            }
            day = from_date
            while day <= to_date:
                if obligation.covers(day) and self.report_due_at(day) <= now:
                    item["days_due"] += 1
                    report = received.get((obligation.operator, day))
                    if report is None:
                        item["missing"] += 1
                        item["missing_dates"].append(day)
                    else:
                        item["received"] += 1
                        if report["first_received_at"] < report["due_at"]:
                            item["on_time"] += 1
                        else:
                            item["late"] += 1
                            item["late_dates"].append(day)
                day += timedelta(days=1)
            result.append(item)
        return result

    async def get_compliance(
        self, caller: Caller, request: pb.DailyReportComplianceRequest
    ) -> pb.DailyReportCompliance:
        """The daily-report compliance report over gRPC (operators see only themselves)."""
        v = Violations()
        if request.operator:
            check_operator(v, "operator", request.operator)
        start = parse_date(request.from_date)
        end = parse_date(request.to_date)
        if start is None:
            v.add("from_date", "required: YYYY-MM-DD")
        if end is None:
            v.add("to_date", "required: YYYY-MM-DD")
        if start is not None and end is not None:
            if end < start:
                v.add("to_date", "must not precede from_date")
            elif (end - start).days >= MAX_PERIOD_DAYS:
                v.add("to_date", f"a period covers at most {MAX_PERIOD_DAYS} days")
        v.raise_if_any()
        assert start is not None and end is not None
        operator = request.operator or None
        if not caller.is_regulator:
            if operator not in (None, caller.operator):
                raise PermissionDenied("operators read only their own compliance")
            operator = caller.operator
        items = await self.daily_report_compliance(start, end, operator)
        return pb.DailyReportCompliance(
            operators=[
                pb.OperatorReportCompliance(
                    operator=i["operator"],
                    days_due=i["days_due"],
                    received=i["received"],
                    on_time=i["on_time"],
                    late=i["late"],
                    missing=i["missing"],
                    missing_dates=[d.isoformat() for d in i["missing_dates"]],
                    late_dates=[d.isoformat() for d in i["late_dates"]],
                )
                for i in items
            ]
        )


async def register_reporting_operator(
    db: Database,
    handler_settings: CancellationsSettings,
    *,
    operator: str,
    since: date,
    subscribers: int | None,
    now: datetime,
) -> None:
    """Bind `operator` to the daily report from report date `since` on, and arm that deadline.

    Re-registering an operator moves its start and clears an earlier end (the declared number
    of subscribers is kept when not given).
    """
    from npc.core.calendar import calendar_for

    calendar = calendar_for(handler_settings.jurisdiction)
    async with db.transaction("cancellations.register", now) as txn:
        await txn.lock_case(FLOW, f"reports:{operator}")
        await txn.conn.execute(
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
        # The chain of daily deadlines re-arms itself; start it only when it is not running, at
        # the first date not yet judged.
        chain = await txn.conn.fetchrow(
            """SELECT max((payload->>'report_date')::date) AS latest,
                      count(*) FILTER (WHERE fired_at IS NULL) AS pending
               FROM deadlines WHERE flow = $1 AND kind = 'daily_report'
                 AND payload->>'operator' = $2 AND cancelled_at IS NULL""",
            FLOW,
            operator,
        )
        assert chain is not None
        if chain["pending"]:
            return
        first = since
        if chain["latest"] is not None and chain["latest"] >= since:
            first = chain["latest"] + timedelta(days=1)
        txn.set_deadline(
            FLOW,
            DeadlineKind.DAILY_REPORT,
            day_case(operator, first),
            calendar.at(first + timedelta(days=1), handler_settings.report_due_time),
            "daily cancellations and plan migrations report, 7 days a week",
            {"operator": operator, "report_date": first.isoformat()},
        )


async def end_reporting_operator(
    db: Database, *, operator: str, until: date, now: datetime
) -> bool:
    """Make `until` the last report date `operator` must report; False if it was not reporting."""
    async with db.transaction("cancellations.unregister", now) as txn:
        await txn.lock_case(FLOW, f"reports:{operator}")
        updated = await txn.conn.fetchval(
            "UPDATE reporting_operators SET until = $2, updated_at = $3 WHERE operator_id = $1"
            " RETURNING operator_id",
            operator,
            until,
            now,
        )
    return updated is not None
