"""The cancellations tracking's commands, as the handler receives them (field names as on the
wire), and what it answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from asyncpg import Record

from npc.core.dates import Day
from npc.core.instants import Instant
from npc.flows.cancellations.rules import (
    AttentionChannel,
    DocumentType,
    RequestKind,
    RequestState,
    ServiceStatus,
    TrackedService,
)

# A report holds up to 200,000 records: they are tuples, which cost a quarter of a frozen
# dataclass to build (scripts/bench_daily_report.py measures the parse and the check).


class SubscriberDocument(NamedTuple):
    """The subscriber's identity document; `type` None: unspecified or unknown on the wire."""

    type: DocumentType | None
    number: str


class RequestRecord(NamedTuple):
    """One request as a daily report describes it; enums None when unspecified, instants as
    `npc.core.instants.Instant` (None when not given), strings empty when not given."""

    request_code: str
    kind: RequestKind | None
    service: TrackedService | None
    channel: AttentionChannel | None
    requested_at: Instant
    subscriber_document: SubscriberDocument | None
    service_number: str
    service_status: ServiceStatus | None
    scheduled_date: Day
    state: RequestState | None
    executed_at: Instant
    execution_reason: str
    target_plan: str


@dataclass(frozen=True)
class DailyReport:
    """An operator's report of one local date.

    `records` are the first records of the upload, one more than a report may hold at most, so
    an oversized upload is refused without reading it all; `record_count` is how many it had.
    The translation may parse each record only when it is read (`convert.ReportRecords`).
    """

    report_date: Day
    records: Sequence[RequestRecord]
    record_count: int


class StoredRecord(NamedTuple):
    """A record as stored in `cancellation_report_records` (checked: every value known).

    A tuple, not a dataclass: a report stores up to 200,000 of them, and COPY takes tuples.
    """

    request_code: str
    kind: str
    service: str
    channel: str
    requested_at: datetime
    document_type: str
    document_number: str
    service_number: str | None
    service_status: str
    scheduled_date: date | None
    state: str
    executed_at: datetime | None
    execution_reason: str | None
    target_plan: str | None


@dataclass(frozen=True)
class ReportReceipt:
    """What the clearinghouse answers a stored daily report."""

    operator: str
    report_date: date
    records: int
    version: int
    received_at: datetime
    due_at: datetime
    on_time: bool


@dataclass(frozen=True)
class TrackedRequestLookup:
    """One request of an operator (empty: the caller's own)."""

    operator: str
    request_code: str


@dataclass(frozen=True)
class ComplianceQuery:
    """Daily-report compliance over report dates from..to (operator empty: all, or the caller)."""

    operator: str
    from_date: Day
    to_date: Day


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

    @classmethod
    def of(cls, row: Record) -> ReportingOperator:
        """A reporting_operators row."""
        return cls(row["operator_id"], row["since"], row["until"], row["subscribers"])
