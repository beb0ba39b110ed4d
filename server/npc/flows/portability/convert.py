"""PortabilityService's messages into the flow's commands, and its rows into API messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.api.enums import WireEnum
from npc.core.dates import iso_to_date, read_date, to_date
from npc.core.instants import UNREADABLE, Unreadable, read_instant, to_timestamp
from npc.core.validation import DOCUMENT_TYPES
from npc.flows.portability import model as M
from npc.flows.portability.rules import (
    ConsultationState,
    ExecutionStep,
    Modality,
    ObjectionReason,
    Service,
    State,
)
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb

SERVICES = WireEnum(common_pb2.ServiceType, Service)
MODALITIES = WireEnum(common_pb2.Modality, Modality)
OBJECTION_REASONS = WireEnum(pb.ObjectionReason, ObjectionReason)
EXECUTION_STEPS = WireEnum(pb.ExecutionStep, ExecutionStep)
REQUEST_STATES = WireEnum(pb.PortRequestState, State)
CONSULTATION_STATES = WireEnum(pb.PriorConsultationState, ConsultationState)
# Stored document types by name; the core keeps the wire numbers (`npc.core.validation`).
DOCUMENT_NUMBERS: dict[str, int] = {v: k for k, v in DOCUMENT_TYPES.items()}


# ------------------------------------------------------------------ requests into commands


def _document(document: common_pb2.IdentityDocument) -> M.IdentityDocument:
    return M.IdentityDocument(type=document.type, number=document.number)


def number_blocks(blocks: Sequence[common_pb2.NumberBlock]) -> tuple[M.NumberBlock, ...]:
    """The number blocks of a request."""
    # The interceptor bounded the count of blocks before this copies them.
    return tuple(
        M.NumberBlock(first=b.first, last=b.last, modality=MODALITIES.to_domain(b.modality))
        for b in blocks
    )


def _objection(request: Any) -> M.Objection | None:
    if not request.HasField("objection"):
        return None
    objection = request.objection
    debt = objection.debt
    return M.Objection(
        reason=OBJECTION_REASONS.to_domain(objection.reason),
        detail=objection.detail,
        debt=M.Debt(
            owed=M.Money(amount=debt.owed.amount, currency=debt.owed.currency),
            due_date=read_date(debt, "due_date"),
            bill_number=debt.bill_number,
        ),
    )


def prior_consultation_submission(
    request: pb.SubmitPriorConsultationRequest,
) -> M.SubmitPriorConsultation:
    """SubmitPriorConsultation's command."""
    return M.SubmitPriorConsultation(
        donor=request.donor,
        service=SERVICES.to_domain(request.service),
        document=_document(request.document),
        numbers=number_blocks(request.numbers),
    )


def prior_consultation_answer(
    request: pb.AnswerPriorConsultationRequest,
) -> M.AnswerPriorConsultation:
    """AnswerPriorConsultation's command."""
    return M.AnswerPriorConsultation(
        consultation_id=request.consultation_id,
        accept=request.accept,
        objection=_objection(request),
    )


def prior_consultation_read(request: pb.GetPriorConsultationRequest) -> M.GetPriorConsultation:
    """GetPriorConsultation's query."""
    return M.GetPriorConsultation(consultation_id=request.consultation_id)


def port_request_submission(request: pb.SubmitPortRequestRequest) -> M.SubmitPortRequest:
    """SubmitPortRequest's command."""
    subscriber = request.subscriber
    return M.SubmitPortRequest(
        donor=request.donor,
        service=SERVICES.to_domain(request.service),
        subscriber=M.Subscriber(
            name=subscriber.name,
            legal_representative=subscriber.legal_representative,
            document=_document(subscriber.document),
            email=subscriber.email,
            contact_phone=subscriber.contact_phone,
        ),
        numbers=number_blocks(request.numbers),
        received_at=read_instant(request, "received_at"),
        form_number=request.form_number,
        prior_consultation_id=request.prior_consultation_id,
        installation_date=read_date(request, "installation_date"),
    )


def port_request_answer(request: pb.AnswerPortRequestRequest) -> M.AnswerPortRequest:
    """AnswerPortRequest's command."""
    return M.AnswerPortRequest(
        port_request_id=request.port_request_id,
        accept=request.accept,
        objection=_objection(request),
    )


def debt_payment_proof(request: pb.SubmitDebtPaymentProofRequest) -> M.SubmitDebtPaymentProof:
    """SubmitDebtPaymentProof's command."""
    return M.SubmitDebtPaymentProof(
        port_request_id=request.port_request_id,
        receipt_number=request.receipt_number,
        paid_at=read_instant(request, "paid_at"),
    )


def installation_report(request: pb.ReportInstallationRequest) -> M.ReportInstallation:
    """ReportInstallation's command."""
    return M.ReportInstallation(
        port_request_id=request.port_request_id,
        installation_date=read_date(request, "installation_date"),
    )


def port_schedule(request: pb.SchedulePortRequest) -> M.SchedulePort:
    """SchedulePort's command."""
    return M.SchedulePort(
        port_request_id=request.port_request_id, scheduled_at=read_instant(request, "scheduled_at")
    )


def execution_confirmation(request: pb.ConfirmPortExecutionRequest) -> M.ConfirmPortExecution:
    """ConfirmPortExecution's command."""
    return M.ConfirmPortExecution(
        port_request_id=request.port_request_id,
        step=EXECUTION_STEPS.to_domain(request.step),
        done_at=read_instant(request, "done_at"),
    )


def port_request_read(request: pb.GetPortRequestRequest) -> M.GetPortRequest:
    """GetPortRequest's query."""
    return M.GetPortRequest(port_request_id=request.port_request_id)


def port_request_listing(request: pb.ListPortRequestsRequest) -> M.ListPortRequests:
    """ListPortRequests' query: an unknown state number is kept as UNREADABLE for the checks."""
    state: State | Unreadable | None = None
    if request.state:
        state = REQUEST_STATES.to_domain(request.state) or UNREADABLE
    return M.ListPortRequests(
        state=state, page_size=request.page_size, page_token=request.page_token
    )


# ------------------------------------------------------------------ rows into messages
# (The generated stubs type each enum's numbers apart; `ValueType(n)` is the number itself.)


def _objection_message(data: Mapping[str, Any] | None) -> pb.Objection | None:
    if not data:
        return None
    objection = pb.Objection(
        reason=pb.ObjectionReason.ValueType(OBJECTION_REASONS.to_wire(data["reason"])),
        code=data.get("code") or "",
        detail=data.get("detail", ""),
    )
    debt = data.get("debt")
    if debt:
        objection.debt.CopyFrom(
            pb.Debt(
                owed=common_pb2.Money(amount=debt["amount"], currency=debt["currency"]),
                # The objection JSON (and its events) keep the checked date as YYYY-MM-DD text.
                due_date=iso_to_date(debt["due_date"]),
                bill_number=debt.get("bill_number", ""),
            )
        )
    return objection


def _block_messages(data: Sequence[Mapping[str, str]]) -> list[common_pb2.NumberBlock]:
    return [
        common_pb2.NumberBlock(
            first=b["first"],
            last=b["last"],
            modality=common_pb2.Modality.ValueType(MODALITIES.to_wire(b["modality"])),
        )
        for b in data
    ]


def _document_message(data: Mapping[str, str]) -> common_pb2.IdentityDocument:
    return common_pb2.IdentityDocument(
        type=common_pb2.DocumentType.ValueType(DOCUMENT_NUMBERS[data["type"]]),
        number=data["number"],
    )


def consultation_message(row: Mapping[str, Any]) -> pb.PriorConsultation:
    """A prior_consultations row as its API message."""
    return pb.PriorConsultation(
        id=row["id"],
        recipient=row["recipient"],
        donor=row["donor"],
        service=common_pb2.ServiceType.ValueType(SERVICES.to_wire(row["service"])),
        document=_document_message(row["document"]),
        numbers=_block_messages(row["numbers"]),
        number_count=row["number_count"],
        state=pb.PriorConsultationState.ValueType(CONSULTATION_STATES.to_wire(row["state"])),
        submitted_at=to_timestamp(row["submitted_at"]),
        donor_deadline=to_timestamp(row["donor_deadline"]),
        answered_at=to_timestamp(row["answered_at"]),
        donor_silent=row["donor_silent"],
        objection=_objection_message(row["objection"]),
    )


def request_message(row: Mapping[str, Any]) -> pb.PortRequest:
    """A port_requests row as its API message."""
    subscriber = row["subscriber"]
    return pb.PortRequest(
        id=row["id"],
        recipient=row["recipient"],
        donor=row["donor"],
        service=common_pb2.ServiceType.ValueType(SERVICES.to_wire(row["service"])),
        subscriber=common_pb2.Subscriber(
            name=subscriber["name"],
            legal_representative=subscriber.get("legal_representative", ""),
            document=_document_message(subscriber["document"]),
            email=subscriber.get("email", ""),
            contact_phone=subscriber.get("contact_phone", ""),
        ),
        numbers=_block_messages(row["numbers"]),
        number_count=row["number_count"],
        special_client=row["special_client"],
        state=pb.PortRequestState.ValueType(REQUEST_STATES.to_wire(row["state"])),
        form_number=row["form_number"],
        prior_consultation_id=row["prior_consultation_id"] or "",
        received_at=to_timestamp(row["received_at"]),
        submitted_at=to_timestamp(row["submitted_at"]),
        donor_deadline=to_timestamp(row["donor_deadline"]),
        answered_at=to_timestamp(row["answered_at"]),
        donor_silent=row["donor_silent"],
        objection=_objection_message(row["objection"]),
        admissible_at=to_timestamp(row["admissible_at"]),
        schedule_deadline=to_timestamp(row["schedule_deadline"]),
        execution_limit=to_timestamp(row["execution_limit"]),
        scheduled_at=to_timestamp(row["scheduled_at"]),
        executed_at=to_timestamp(row["executed_at"]),
        donor_disabled_at=to_timestamp(row["donor_disabled_at"]),
        recipient_enabled_at=to_timestamp(row["recipient_enabled_at"]),
        closed_at=to_timestamp(row["closed_at"]),
        installation_date=to_date(row["installation_date"]),
        rejection_reason=row["rejection_reason"] or "",
    )


def request_page(page: M.PortRequestPage) -> pb.ListPortRequestsResponse:
    """A page of port requests as ListPortRequests' answer."""
    return pb.ListPortRequestsResponse(
        port_requests=[request_message(r) for r in page.port_requests],
        next_page_token=page.next_page_token,
    )
