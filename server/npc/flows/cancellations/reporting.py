"""Daily reports: each record checked, the report stored (a resend replaces it), and the tracked
requests brought to their latest reported state with their scheduled-date deadlines."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from npc.core.dates import check_date
from npc.core.errors import FailedPrecondition, PermissionDenied
from npc.core.identity import Caller
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
    SubscriberDocument,
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

# The core checks documents by its own numbering of the document types.
_CORE_DOCUMENT_TYPES = {
    DocumentType.DNI: DOCUMENT_DNI,
    DocumentType.CARNET_EXTRANJERIA: DOCUMENT_CARNET_EXTRANJERIA,
    DocumentType.RUC: DOCUMENT_RUC,
    DocumentType.OTHER: DOCUMENT_OTHER,
}


class _CoreDocument(NamedTuple):
    """A subscriber document as `check_document` reads it (the core's numbering of types)."""

    type: int
    number: str

    @classmethod
    def of(cls, document: SubscriberDocument) -> _CoreDocument:
        """The core's view of a reported document (type 0: unspecified or unknown)."""
        kind = 0 if document.type is None else _CORE_DOCUMENT_TYPES[document.type]
        return cls(kind, document.number)


class DailyReports(CancellationsBase):
    """Checking and storing the operators' daily reports."""

    @staticmethod
    def _check_enums(v: Violations, field: str, record: RequestRecord) -> None:
        """Every enum of the record is one of its values (None: unspecified or unknown)."""
        for name, value, expected in (
            ("kind", record.kind, EXPECTED_KIND),
            ("service", record.service, EXPECTED_SERVICE),
            ("channel", record.channel, EXPECTED_CHANNEL),
            ("service_status", record.service_status, EXPECTED_SERVICE_STATUS),
            ("state", record.state, EXPECTED_STATE),
        ):
            if value is None:
                v.add(f"{field}.{name}", f"required: {expected}")

    def _check_record(
        self, v: Violations, field: str, record: RequestRecord, report_date: date, now: datetime
    ) -> StoredRecord | None:
        """The record as stored, or None when it adds violations to `v`."""
        found = len(v.items)
        if not REQUEST_CODE.fullmatch(record.request_code):
            v.add(f"{field}.request_code", "required: 1 to 40 characters of [A-Za-z0-9._/-]")
        self._check_enums(v, field, record)
        requested_at = record.requested_at
        if requested_at is None:
            v.add(f"{field}.requested_at", "required")
        elif (
            self.calendar.local_date(requested_at) > report_date
            or requested_at < now - OLDEST_REQUEST
        ):
            v.add(
                f"{field}.requested_at",
                "must fall on or before the report date, within the last three years",
            )
        document = record.subscriber_document
        if document is None:
            v.add(f"{field}.subscriber_document", "required: the subscriber's identity document")
        else:
            check_document(v, f"{field}.subscriber_document", _CoreDocument.of(document))
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
        _check_execution(v, field, record, now)
        if len(v.items) > found:
            return None
        assert record.kind and record.service and record.channel and record.service_status
        assert record.state and requested_at and document and document.type
        return StoredRecord(
            request_code=record.request_code,
            kind=record.kind,
            service=record.service,
            channel=record.channel,
            requested_at=requested_at,
            document_type=document.type,
            document_number=document.number,
            service_number=record.service_number or None,
            service_status=record.service_status,
            scheduled_date=scheduled,
            state=record.state,
            executed_at=record.executed_at,
            execution_reason=record.execution_reason or None,
            target_plan=record.target_plan or None,
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
        records = []
        seen: set[str] = set()
        for index, record in enumerate(report.records):
            field = f"records[{index}]"
            stored = self._check_record(v, field, record, report_date, now)
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


def _check_execution(v: Violations, field: str, record: RequestRecord, now: datetime) -> None:
    """When and why the request was executed (or rejected), and the plan migrated to."""
    state = record.state
    executed_at = record.executed_at
    if executed_at is None and state == RequestState.EXECUTED:
        v.add(f"{field}.executed_at", "required")
    if executed_at is not None and state != RequestState.EXECUTED:
        v.add(f"{field}.executed_at", "only for executed requests")
    if executed_at is not None and (
        executed_at > now + CLOCK_SKEW
        or (record.requested_at is not None and executed_at < record.requested_at)
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
