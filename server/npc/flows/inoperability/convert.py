"""Inoperability requests into the registry's commands, and its rows into API messages."""

from __future__ import annotations

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.instants import read_instant, to_timestamp
from npc.flows.inoperability.model import (
    AttentionPointRegistration,
    CriticalTransactionRecord,
    EventLookup,
    InoperabilityClosing,
    InoperabilityRegistration,
    ReportSubmission,
    SubmittedReport,
)
from npc.flows.inoperability.rules import (
    ClosingReason,
    CriticalTransaction,
    PointType,
    RequestType,
    Scenario,
    duration,
    is_reportable,
    over_one_hour,
)
from npc.v1 import inoperability_pb2 as pb

POINT_TYPES = WireEnum(pb.AttentionPointType, PointType)
REQUEST_TYPES = WireEnum(pb.RequestType, RequestType)
SCENARIOS = WireEnum(pb.Scenario, Scenario)
CLOSING_REASONS = WireEnum(pb.ClosingReason, ClosingReason)
CRITICAL = WireEnum(pb.CriticalTransaction, CriticalTransaction)


def attention_point_registration(
    request: pb.RegisterAttentionPointRequest,
) -> AttentionPointRegistration:
    """RegisterAttentionPoint's command."""
    return AttentionPointRegistration(
        code=request.code,
        name=request.name,
        type=POINT_TYPES.to_domain(request.type),
        address=request.address,
        location=request.location,
    )


def inoperability_registration(
    request: pb.RegisterInoperabilityRequest,
) -> InoperabilityRegistration:
    """RegisterInoperability's command."""
    return InoperabilityRegistration(
        attention_point_code=request.attention_point_code,
        request_type=REQUEST_TYPES.to_domain(request.request_type),
        scenario=SCENARIOS.to_domain(request.scenario),
        started_at=read_instant(request, "started_at"),
        detail=request.detail,
    )


def inoperability_closing(request: pb.CloseInoperabilityRequest) -> InoperabilityClosing:
    """CloseInoperability's command."""
    return InoperabilityClosing(
        number=request.number,
        ended_at=read_instant(request, "ended_at"),
        closing_reason=CLOSING_REASONS.to_domain(request.closing_reason),
        closing_note=request.closing_note,
    )


def critical_transaction(
    request: pb.RecordCriticalTransactionRequest,
) -> CriticalTransactionRecord:
    """RecordCriticalTransaction's command."""
    return CriticalTransactionRecord(
        number=request.number, kind=CRITICAL.to_domain(request.kind), reference=request.reference
    )


def report_submission(request: pb.SubmitInoperabilityReportRequest) -> ReportSubmission:
    """SubmitInoperabilityReport's command."""
    return ReportSubmission(numbers=tuple(request.numbers))


def event_lookup(request: pb.GetInoperabilityRequest) -> EventLookup:
    """GetInoperability's read."""
    return EventLookup(operator=request.operator, number=request.number)


def point_message(row: Record) -> pb.AttentionPoint:
    """An attention_points row as its API message."""
    return pb.AttentionPoint(
        operator=row["operator_id"],
        code=row["code"],
        name=row["name"],
        type=POINT_TYPES.to_wire(row["kind"]),  # type: ignore[arg-type]
        address=row["address"],
        location=row["location"],
        registered_at=to_timestamp(row["registered_at"]),
    )


def event_message(row: Record) -> pb.InoperabilityEvent:
    """An event row (with its critical transaction counts) as its API message."""
    lasted = duration(row)
    return pb.InoperabilityEvent(
        id=row["id"],
        operator=row["operator_id"],
        number=row["number"],
        attention_point_code=row["attention_point_code"],
        request_type=REQUEST_TYPES.to_wire(row["request_type"]),  # type: ignore[arg-type]
        scenario=SCENARIOS.to_wire(row["scenario"]),  # type: ignore[arg-type]
        detail=row["detail"],
        started_at=to_timestamp(row["started_at"]),
        registered_at=to_timestamp(row["registered_at"]),
        ended_at=to_timestamp(row["ended_at"]),
        closing_reason=CLOSING_REASONS.to_wire(row["closing_reason"]),  # type: ignore[arg-type]
        closing_note=row["closing_note"],
        closed_at=to_timestamp(row["closed_at"]),
        reportable=is_reportable(row),
        over_one_hour=over_one_hour(row),
        duration_seconds=int(lasted.total_seconds()) if lasted is not None else 0,
        report_due_at=to_timestamp(row["report_due_at"]),
        report_id=row["report_id"] or "",
        reported_at=to_timestamp(row["reported_at"]),
        critical_block_stolen_or_lost=row["critical_block"],
        critical_claim_filing=row["critical_claims"],
    )


def report_message(report: SubmittedReport) -> pb.InoperabilityReport:
    """A submitted consolidated report as its API message."""
    return pb.InoperabilityReport(
        id=report.id,
        operator=report.operator,
        submitted_at=to_timestamp(report.submitted_at),
        events=[event_message(row) for row in report.events],
        over_one_hour_count=sum(1 for row in report.events if over_one_hour(row)),
    )
