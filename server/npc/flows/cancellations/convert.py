"""Cancellations requests into the flow's commands, and its rows into API messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.dates import read_date, to_date
from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.instants import timestamp, to_timestamp
from npc.core.validation import Violations
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


def _instant(message: Any, name: str) -> datetime | None:
    """A Timestamp field as a datetime, None when unset; one a datetime cannot hold is refused
    here with the violation the handler's checks would give it."""
    if not message.HasField(name):
        return None  # most records have no execution instant: no Violations for them
    v = Violations()
    value = timestamp(v, name, message, name, required=False)
    v.raise_if_any()
    return value


def request_record(record: pb.RequestRecord) -> RequestRecord:
    """One record of a report."""
    document = None
    if record.HasField("subscriber_document"):
        wire = record.subscriber_document
        document = SubscriberDocument(DOCUMENT_TYPES.to_domain(wire.type), wire.number)
    return RequestRecord(
        request_code=record.request_code,
        kind=KINDS.to_domain(record.kind),
        service=SERVICES.to_domain(record.service),
        channel=CHANNELS.to_domain(record.channel),
        requested_at=_instant(record, "requested_at"),
        subscriber_document=document,
        service_number=record.service_number,
        service_status=SERVICE_STATUSES.to_domain(record.service_status),
        scheduled_date=read_date(record, "scheduled_date"),
        state=STATES.to_domain(record.state),
        executed_at=_instant(record, "executed_at"),
        execution_reason=record.execution_reason,
        target_plan=record.target_plan,
    )


def daily_report(request: pb.SubmitDailyReportRequest, limit: int) -> DailyReport:
    """SubmitDailyReport's command: at most `limit` + 1 records are read, enough for the handler
    to refuse an oversized report without converting all of it."""
    records = []
    for index, record in enumerate(request.records[: limit + 1]):
        try:
            records.append(request_record(record))
        except InvalidArgument as refused:
            # Named in the record, the refused instant is named here in the request.
            raise InvalidArgument(
                [
                    FieldViolation(f"records[{index}].{v.field}", v.description)
                    for v in refused.violations
                ]
            ) from None
    return DailyReport(
        report_date=read_date(request, "report_date"),
        records=tuple(records),
        record_count=len(request.records),
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
