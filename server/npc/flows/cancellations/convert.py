"""Cancellations requests into the flow's commands, and its rows into API messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from itertools import islice
from typing import Any, TypeVar, overload

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.dates import read_date, to_date
from npc.core.instants import read_instant, to_timestamp
from npc.flows.cancellations.model import (
    ComplianceQuery,
    DailyReport,
    ReportReceipt,
    RequestRecord,
    SubscriberDocument,
    TrackedRequestLookup,
)
from npc.flows.cancellations.rules import (
    AttentionChannel,
    DocumentType,
    RequestKind,
    RequestState,
    ServiceStatus,
    TrackedService,
)
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import common_pb2

KINDS = WireEnum(pb.RequestKind, RequestKind, rename={RequestKind.MIGRATION: "PLAN_MIGRATION"})
SERVICES = WireEnum(
    pb.TrackedService,
    TrackedService,
    rename={TrackedService.FIXED: "FIXED_TELEPHONY", TrackedService.MOBILE: "MOBILE_TELEPHONY"},
)
CHANNELS = WireEnum(pb.AttentionChannel, AttentionChannel)
SERVICE_STATUSES = WireEnum(pb.ServiceStatus, ServiceStatus)
STATES = WireEnum(pb.TrackedRequestState, RequestState)
DOCUMENT_TYPES = WireEnum(common_pb2.DocumentType, DocumentType)

E = TypeVar("E", bound=StrEnum)


def _by_number(enum: WireEnum[E]) -> dict[int, E]:
    """The domain member of each wire number; `.get` gives None for UNSPECIFIED or unknown."""
    return {enum.to_wire(member): member for member in enum.domain_type}


# A report's records map five enums each: plain dicts, looked up without a call per value.
_KIND = _by_number(KINDS)
_SERVICE = _by_number(SERVICES)
_CHANNEL = _by_number(CHANNELS)
_SERVICE_STATUS = _by_number(SERVICE_STATUSES)
_STATE = _by_number(STATES)
_DOCUMENT_TYPE = _by_number(DOCUMENT_TYPES)


def request_record(record: pb.RequestRecord) -> RequestRecord:
    """One record of a report."""
    document = None
    if record.HasField("subscriber_document"):
        wire = record.subscriber_document
        document = SubscriberDocument(_DOCUMENT_TYPE.get(wire.type), wire.number)
    # Positional, in the order of RequestRecord's fields: named, 13 arguments cost as much again.
    return RequestRecord(
        record.request_code,
        _KIND.get(record.kind),
        _SERVICE.get(record.service),
        _CHANNEL.get(record.channel),
        read_instant(record, "requested_at"),
        document,
        record.service_number,
        _SERVICE_STATUS.get(record.service_status),
        read_date(record, "scheduled_date"),
        _STATE.get(record.state),
        read_instant(record, "executed_at"),
        record.execution_reason,
        record.target_plan,
    )


class ReportRecords(Sequence[RequestRecord]):
    """The first `count` records of a report, each parsed when the handler reads it.

    A record parsed on its turn is garbage once checked: a report never holds all its records
    parsed at once, which made the collector's passes over them cost about what the parse did.
    """

    __slots__ = ("_count", "_wire")

    def __init__(self, wire: Sequence[pb.RequestRecord], count: int) -> None:
        self._wire = wire
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RequestRecord]: ...

    def __getitem__(self, index: int | slice) -> RequestRecord | Sequence[RequestRecord]:
        if isinstance(index, slice):
            return tuple(request_record(self._wire[i]) for i in range(self._count)[index])
        return request_record(self._wire[range(self._count)[index]])

    def __iter__(self) -> Iterator[RequestRecord]:
        return map(request_record, islice(self._wire, self._count))


def daily_report(request: pb.SubmitDailyReportRequest, limit: int) -> DailyReport:
    """SubmitDailyReport's command: at most `limit` + 1 records are read, enough for the handler
    to refuse an oversized report, and each only when the handler reads it."""
    count = len(request.records)
    return DailyReport(
        report_date=read_date(request, "report_date"),
        records=ReportRecords(request.records, min(count, limit + 1)),
        record_count=count,
    )


def tracked_request_lookup(request: pb.GetTrackedRequestRequest) -> TrackedRequestLookup:
    """GetTrackedRequest's read."""
    return TrackedRequestLookup(operator=request.operator, request_code=request.request_code)


def compliance_query(request: pb.DailyReportComplianceRequest) -> ComplianceQuery:
    """GetDailyReportCompliance's read."""
    return ComplianceQuery(
        operator=request.operator,
        from_date=read_date(request, "from_date"),
        to_date=read_date(request, "to_date"),
    )


def receipt_message(receipt: ReportReceipt) -> pb.DailyReportReceipt:
    """The receipt of a stored daily report."""
    return pb.DailyReportReceipt(
        operator=receipt.operator,
        report_date=to_date(receipt.report_date),
        records=receipt.records,
        version=receipt.version,
        received_at=to_timestamp(receipt.received_at),
        due_at=to_timestamp(receipt.due_at),
        on_time=receipt.on_time,
    )


def record_message(row: Record) -> pb.RequestRecord:
    """A record row (of a report, or a tracked request) as its API message."""
    return pb.RequestRecord(
        request_code=row["request_code"],
        kind=KINDS.to_wire(row["kind"]),  # type: ignore[arg-type]
        service=SERVICES.to_wire(row["service"]),  # type: ignore[arg-type]
        channel=CHANNELS.to_wire(row["channel"]),  # type: ignore[arg-type]
        requested_at=to_timestamp(row["requested_at"]),
        subscriber_document=common_pb2.IdentityDocument(
            type=DOCUMENT_TYPES.to_wire(row["document_type"]),  # type: ignore[arg-type]
            number=row["document_number"],
        ),
        service_number=row["service_number"] or "",
        service_status=SERVICE_STATUSES.to_wire(row["service_status"]),  # type: ignore[arg-type]
        scheduled_date=to_date(row["scheduled_date"]),
        state=STATES.to_wire(row["state"]),  # type: ignore[arg-type]
        executed_at=to_timestamp(row["executed_at"]),
        execution_reason=row["execution_reason"] or "",
        target_plan=row["target_plan"] or "",
    )


def tracked_message(row: Record) -> pb.TrackedRequest:
    """A tracked_requests row as its API message."""
    return pb.TrackedRequest(
        id=row["id"],
        operator=row["operator_id"],
        record=record_message(row),
        last_report_date=to_date(row["last_report_date"]),
        first_reported_at=to_timestamp(row["first_reported_at"]),
        scheduled_deadline=to_timestamp(row["scheduled_deadline"]),
    )


def compliance_message(items: list[dict[str, Any]]) -> pb.DailyReportCompliance:
    """The daily-report compliance report (`CancellationsHandler.daily_report_compliance`)."""
    return pb.DailyReportCompliance(
        operators=[
            pb.OperatorReportCompliance(
                operator=i["operator"],
                days_due=i["days_due"],
                received=i["received"],
                on_time=i["on_time"],
                late=i["late"],
                missing=i["missing"],
                missing_dates=[to_date(d) for d in i["missing_dates"]],
                late_dates=[to_date(d) for d in i["late_dates"]],
            )
            for i in items
        ]
    )
