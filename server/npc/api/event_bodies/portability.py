"""Bodies of the portability flow: port requests (`portability.request.*`) and prior
consultations (`portability.consultation.*`), rebuilt from the payloads of
npc.flows.portability.convert (`request_payload`, `consultation_payload`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from npc.api.event_bodies._convert import Converter, Payload, blocks, document, enum, instant
from npc.core.dates import iso_to_date
from npc.v1 import common_pb2, events_pb2, portability_pb2

REQUEST_TYPES = (
    "submitted",
    "registered",
    "sent_to_donor",
    "accepted",
    "objected",
    "debt_proof_submitted",
    "debt_proof_forwarded",
    "admissible",
    "rejected",
    "installation_reported",
    "scheduled",
    "scheduled_for_execution",
    "schedule_refused",
    "cancelled",
    "executed",
    "donor_disabled",
    "recipient_enabled",
    "completed",
)
CONSULTATION_TYPES = (
    "submitted",
    "registered",
    "sent_to_donor",
    "answered",
    "admissible",
    "rejected",
)


def objection(data: Mapping[str, Any] | None) -> portability_pb2.Objection | None:
    """A stored objection (reason name, code, detail, and the debt of a debt objection)."""
    if not data:
        return None
    message = portability_pb2.Objection(
        reason=enum(portability_pb2.ObjectionReason, data.get("reason")),
        code=data.get("code") or "",
        detail=data.get("detail") or "",
    )
    debt = data.get("debt")
    if debt:
        message.debt.owed.CopyFrom(
            common_pb2.Money(amount=str(debt["amount"]), currency=debt["currency"])
        )
        due = iso_to_date(debt.get("due_date"))
        if due is not None:
            message.debt.due_date.CopyFrom(due)
        message.debt.bill_number = debt.get("bill_number") or ""
    return message


def port_request(payload: Payload) -> events_pb2.PortRequestChange:
    """A port request's change: the request, and the proof, refused instant or routing code."""
    request = portability_pb2.PortRequest(
        id=payload["port_request_id"],
        recipient=payload["recipient"],
        donor=payload["donor"],
        service=enum(common_pb2.ServiceType, payload.get("service")),
        state=enum(portability_pb2.PortRequestState, payload.get("state")),
        numbers=blocks(payload.get("numbers")),
        number_count=payload.get("number_count") or 0,
        special_client=bool(payload.get("special_client")),
        received_at=instant(payload.get("received_at")),
        submitted_at=instant(payload.get("submitted_at")),
        donor_deadline=instant(payload.get("donor_deadline")),
        answered_at=instant(payload.get("answered_at")),
        donor_silent=bool(payload.get("donor_silent")),
        admissible_at=instant(payload.get("admissible_at")),
        schedule_deadline=instant(payload.get("schedule_deadline")),
        execution_limit=instant(payload.get("execution_limit")),
        scheduled_at=instant(payload.get("scheduled_at")),
        executed_at=instant(payload.get("executed_at")),
        objection=objection(payload.get("objection")),
        rejection_reason=payload.get("rejection_reason") or "",
    )
    proof = payload.get("debt_proof")
    return events_pb2.PortRequestChange(
        port_request=request,
        debt_proof=events_pb2.DebtProof(
            receipt_number=proof.get("receipt_number") or "",
            paid_at=instant(proof.get("paid_at")),
            presented_at=instant(proof.get("presented_at")),
        )
        if proof
        else None,
        requested_at=instant(payload.get("requested_at")),
        routing_code=payload.get("routing_code") or "",
    )


def prior_consultation(payload: Payload) -> portability_pb2.PriorConsultation:
    """A prior consultation as the RPCs return it, with what its payload carries."""
    return portability_pb2.PriorConsultation(
        id=payload["consultation_id"],
        recipient=payload["recipient"],
        donor=payload["donor"],
        service=enum(common_pb2.ServiceType, payload.get("service")),
        document=document(payload.get("document")),
        numbers=blocks(payload.get("numbers")),
        number_count=payload.get("number_count") or 0,
        state=enum(portability_pb2.PriorConsultationState, payload.get("state")),
        donor_deadline=instant(payload.get("donor_deadline")),
        donor_silent=bool(payload.get("donor_silent")),
        objection=objection(payload.get("objection")),
    )


BODIES: dict[str, tuple[str, Converter]] = {
    **{f"portability.request.{t}": ("port_request", port_request) for t in REQUEST_TYPES},
    **{
        f"portability.consultation.{t}": ("prior_consultation", prior_consultation)
        for t in CONSULTATION_TYPES
    },
}
