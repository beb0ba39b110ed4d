"""Daily reports: each record checked, the report stored (a resend replaces it), and the tracked
requests brought to their latest reported state with their scheduled-date deadlines."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from npc.core.dates import check_date
from npc.core.errors import FailedPrecondition, PermissionDenied
from npc.core.identity import Caller
from npc.core.instants import check_instant
from npc.core.validation import (
    DOCUMENT_CARNET_EXTRANJERIA,
    DOCUMENT_DNI,
    DOCUMENT_OTHER,
    DOCUMENT_RUC,
    Violations,
    check_document,
    printable,
)
from npc.flows.cancellations import store
from npc.flows.cancellations.base import CancellationsBase
from npc.flows.cancellations.events import report_received_payload
from npc.flows.cancellations.model import (
    DailyReport,
    ReportReceipt,
    RequestRecord,
    StoredRecord,
)
from npc.flows.cancellations.rules import (
    CLOCK_SKEW,
    EXPECTED_CHANNEL,
    EXPECTED_KIND,
    EXPECTED_SERVICE,
    EXPECTED_SERVICE_STATUS,
    EXPECTED_STATE,
    FLOW,
    MAX_EXECUTION_REASON,
    MAX_REPORTED_VIOLATIONS,
    MAX_TARGET_PLAN,
    OLDEST_REQUEST,
    REPORTING_THRESHOLD,
    REQUEST_CODE,
    SCHEDULED_NOTE,
    SERVICE_NUMBER,
    DeadlineKind,
    DocumentType,
    RequestKind,
    RequestState,
    day_case,
    needs_deadline,
)
from npc.store.database import Txn

# The core checks documents by its own numbering of the document types (0: none it knows).
_CORE_DOCUMENT_TYPES: dict[DocumentType | None, int] = {
    None: 0,
    DocumentType.DNI: DOCUMENT_DNI,
    DocumentType.CARNET_EXTRANJERIA: DOCUMENT_CARNET_EXTRANJERIA,
    DocumentType.RUC: DOCUMENT_RUC,
    DocumentType.OTHER: DOCUMENT_OTHER,
}


# The record's enum fields, in the order their violations are reported, and what each expects.
_ENUM_FIELDS = (
    ("kind", EXPECTED_KIND),
    ("service", EXPECTED_SERVICE),
    ("channel", EXPECTED_CHANNEL),
    ("service_status", EXPECTED_SERVICE_STATUS),
    ("state", EXPECTED_STATE),
)


class _Bounds(NamedTuple):
    """The instants a report's records are checked against, computed once per report."""

    oldest: datetime  # requests presented before are too old to report
    day_ends: datetime  # the end (local midnight) of the report date
    latest: datetime  # nothing was executed after now, give or take the clock skew


class _CoreDocument(NamedTuple):
    """A subscriber document as `check_document` reads it (the core's numbering of types)."""

    type: int
    number: str


class DailyReports(CancellationsBase):
    """Checking and storing the operators' daily reports."""

    @staticmethod
    def _check_enums(v: Violations, field: str, record: RequestRecord) -> None:
        """Every enum of the record is one of its values (None: unspecified or unknown)."""
        values = (record.kind, record.service, record.channel, record.service_status, record.state)
        if None not in values:
            return  # nearly every record of a report: no loop
        for (name, expected), value in zip(_ENUM_FIELDS, values, strict=True):
            if value is None:
                v.add(f"{field}.{name}", f"required: {expected}")

    def _check_record(
        self, v: Violations, field: str, record: RequestRecord, bounds: _Bounds
    ) -> StoredRecord | None:
        """The record as stored, or None when it adds violations to `v`."""
        found = len(v.items)
        if not REQUEST_CODE.fullmatch(record.request_code):
            v.add(f"{field}.request_code", "required: 1 to 40 characters of [A-Za-z0-9._/-]")
        self._check_enums(v, field, record)
        requested_at = check_instant(v, f"{field}.requested_at", record.requested_at)
        # Before the report date ends in local time: on or before the report date.
        if requested_at is not None and not bounds.oldest <= requested_at < bounds.day_ends:
            v.add(
                f"{field}.requested_at",
                "must fall on or before the report date, within the last three years",
            )
        document = record.subscriber_document
        if document is None:
            v.add(f"{field}.subscriber_document", "required: the subscriber's identity document")
        else:
            core = _CoreDocument(_CORE_DOCUMENT_TYPES[document.type], document.number)
            check_document(v, f"{field}.subscriber_document", core)
        if record.service_number and not SERVICE_NUMBER.fullmatch(record.service_number):
            v.add(f"{field}.service_number", "1 to 30 letters, digits or hyphens")
        scheduled = check_date(v, f"{field}.scheduled_date", record.scheduled_date, required=False)
        if record.scheduled_date is None and record.state in (
            RequestState.PENDING,
            RequestState.EXECUTED,
        ):
            v.add(
                f"{field}.scheduled_date",
                "required: the date scheduled for the cancellation or migration",
            )
        executed_at = _check_execution(v, field, record, requested_at, bounds.latest)
        if len(v.items) > found:
            return None
        assert record.kind and record.service and record.channel and record.service_status
        assert record.state and requested_at and document and document.type
        # Positional, in the order of StoredRecord's fields: named, 14 arguments cost as much again.
        return StoredRecord(
            record.request_code,
            record.kind,
            record.service,
            record.channel,
            requested_at,
            document.type,
            document.number,
            record.service_number or None,
            record.service_status,
            scheduled,
            record.state,
            executed_at,
            record.execution_reason or None,
            record.target_plan or None,
        )

    def _check_report(self, report: DailyReport, now: datetime) -> tuple[date, list[StoredRecord]]:
        v = Violations()
        report_date = check_date(
            v, "report_date", report.report_date, missing="required: the report date"
        )
        today = self.calendar.local_date(now)
        if report_date is not None and report_date > today:
            v.add("report_date", "a report covers a day that has begun (local time)")
        if report.record_count > self.settings.max_records:
            v.add("records", f"at most {self.settings.max_records} records per report")
        v.raise_if_any()
        assert report_date is not None
        bounds = _Bounds(
            oldest=now - OLDEST_REQUEST,
            day_ends=self.calendar.at(report_date + timedelta(days=1), time.min),
            latest=now + CLOCK_SKEW,
        )
        records = []
        seen: set[str] = set()
        for index, record in enumerate(report.records):
            field = f"records[{index}]"
            stored = self._check_record(v, field, record, bounds)
            if stored is not None:
                records.append(stored)
            if record.request_code in seen:
                v.add(f"{field}.request_code", "appears twice in the report")
            seen.add(record.request_code)
            if len(v.items) >= MAX_REPORTED_VIOLATIONS:
                break  # enough to fix a systematic mistake; the rest would only repeat it
        v.raise_if_any()
        return report_date, records

    async def submit_report(self, txn: Txn, caller: Caller, report: DailyReport) -> ReportReceipt:
        """Store an operator's daily report, replacing any earlier version for the same date."""
        report_date, records = self._check_report(report, txn.now)
        operator = caller.operator
        if caller.is_regulator:
            raise PermissionDenied("the regulator reads reports; operators submit them")
        obligation = await store.reporting_operator(txn.conn, operator)
        if obligation is None:
            raise PermissionDenied(
                f"{operator} is not registered as a reporting operator (more than"
                f" {REPORTING_THRESHOLD:,} subscribers); the regulator registers it with"
                " `npc admin`"
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
        previous = await store.lock_report(txn.conn, operator, report_date)
        affected = {r.request_code for r in records}
        if previous is None:
            due = self.report_due_at(report_date)
            stored = await store.insert_report(
                txn.conn, operator, report_date, due, txn.now, len(records)
            )
        else:
            stored, replaced = await store.replace_report(
                txn.conn, previous["id"], txn.now, len(records)
            )
            affected.update(replaced)
        await store.copy_records(txn.conn, stored["id"], records)
        await self._project(txn, operator, sorted(affected))
        receipt = ReportReceipt(
            operator=operator,
            report_date=report_date,
            records=len(records),
            version=stored["version"],
            received_at=stored["received_at"],
            due_at=stored["due_at"],
            on_time=stored["first_received_at"] < stored["due_at"],
        )
        txn.emit(
            FLOW,
            "cancellations.report_received",
            case_id=day_case(operator, report_date),
            sender=operator,
            audience=(operator,),
            payload=report_received_payload(receipt),
        )
        return receipt

    async def _project(self, txn: Txn, operator: str, codes: list[str]) -> None:
        """Bring `tracked_requests` of these request codes to their latest reported record, and
        their scheduled-date deadlines with them."""
        if not codes:
            return
        before = {r["id"]: r for r in await store.tracked_states(txn.conn, operator, codes)}
        after = await store.project_tracked(
            txn.conn, operator, codes, txn.now, self.calendar.timezone
        )
        # A request whose only report was replaced by one without it is no longer tracked.
        for gone in await store.drop_unreported(txn.conn, operator, codes):
            txn.cancel_deadlines(FLOW, gone, DeadlineKind.SCHEDULED)
        for row in after:
            old = before.get(row["id"])
            had = old is not None and needs_deadline(
                old["state"], old["executed_at"], old["scheduled_deadline"]
            )
            needs = needs_deadline(row["state"], row["executed_at"], row["scheduled_deadline"])
            unchanged = old is not None and old["scheduled_deadline"] == row["scheduled_deadline"]
            if needs and not (had and unchanged):
                txn.set_deadline(
                    FLOW,
                    DeadlineKind.SCHEDULED,
                    row["id"],
                    row["scheduled_deadline"],
                    SCHEDULED_NOTE,
                    {"request_code": row["request_code"]},
                )
            elif had and not needs:
                txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SCHEDULED)


def _check_execution(
    v: Violations,
    field: str,
    record: RequestRecord,
    requested_at: datetime | None,
    latest: datetime,
) -> datetime | None:
    """When and why the request was executed (or rejected), and the plan migrated to; returns
    the execution instant."""
    state = record.state
    executed_at = check_instant(
        v, f"{field}.executed_at", record.executed_at, required=state == RequestState.EXECUTED
    )
    if executed_at is not None and state != RequestState.EXECUTED:
        v.add(f"{field}.executed_at", "only for executed requests")
    if executed_at is not None and (
        executed_at > latest or (requested_at is not None and executed_at < requested_at)
    ):
        v.add(f"{field}.executed_at", "must lie between the request and now")
    reason = record.execution_reason
    if reason and not printable(reason, limit=MAX_EXECUTION_REASON):
        v.add(f"{field}.execution_reason", f"at most {MAX_EXECUTION_REASON} printable characters")
    elif not reason and state in (RequestState.EXECUTED, RequestState.REJECTED):
        v.add(f"{field}.execution_reason", "required: the reason of the execution or rejection")
    plan = record.target_plan
    if plan and not printable(plan, limit=MAX_TARGET_PLAN):
        v.add(f"{field}.target_plan", f"at most {MAX_TARGET_PLAN} printable characters")
    elif (
        not plan
        and record.kind == RequestKind.MIGRATION
        and state in (RequestState.PENDING, RequestState.EXECUTED)
    ):
        v.add(f"{field}.target_plan", "required: the plan the subscriber migrates to")
    return executed_at
