"""Rows of the portability tables as API messages and event payloads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from npc.core.instants import to_timestamp
from npc.core.validation import DOCUMENT_TYPES
from npc.flows.portability.validation import MODALITIES, OBJECTION_CODES, OBJECTION_NAMES, SERVICES
from npc.v1 import common_pb2, portability_pb2

SERVICE_ENUM: dict[str, Any] = {v: k for k, v in SERVICES.items()}
MODALITY_ENUM: dict[str, Any] = {v: k for k, v in MODALITIES.items()}
DOCUMENT_ENUM: dict[str, Any] = {v: k for k, v in DOCUMENT_TYPES.items()}
OBJECTION_ENUM: dict[str, Any] = {v: k for k, v in OBJECTION_NAMES.items()}

REQUEST_STATES = {
    "awaiting_donor": portability_pb2.PORT_REQUEST_STATE_AWAITING_DONOR,
    "objected_debt": portability_pb2.PORT_REQUEST_STATE_OBJECTED_DEBT,
    "rejected": portability_pb2.PORT_REQUEST_STATE_REJECTED,
    "admissible": portability_pb2.PORT_REQUEST_STATE_ADMISSIBLE,
    "scheduled": portability_pb2.PORT_REQUEST_STATE_SCHEDULED,
    "executed": portability_pb2.PORT_REQUEST_STATE_EXECUTED,
    "completed": portability_pb2.PORT_REQUEST_STATE_COMPLETED,
    "cancelled": portability_pb2.PORT_REQUEST_STATE_CANCELLED,
}
REQUEST_STATE_NAMES = {v: k for k, v in REQUEST_STATES.items()}
CONSULTATION_STATES = {
    "awaiting_donor": portability_pb2.PRIOR_CONSULTATION_STATE_AWAITING_DONOR,
    "admissible": portability_pb2.PRIOR_CONSULTATION_STATE_ADMISSIBLE,
    "rejected": portability_pb2.PRIOR_CONSULTATION_STATE_REJECTED,
}


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def blocks_json(blocks: Any) -> list[dict[str, str]]:
    """Number blocks as stored (JSON)."""
    return [
        {"first": b.first, "last": b.last or b.first, "modality": MODALITIES[b.modality]}
        for b in blocks
    ]


def objection_json(objection: portability_pb2.Objection) -> dict[str, Any]:
    """An objection as stored (JSON)."""
    data: dict[str, Any] = {
        "reason": OBJECTION_NAMES[objection.reason],
        "code": OBJECTION_CODES.get(objection.reason),
        "detail": objection.detail,
    }
    if objection.reason == portability_pb2.OBJECTION_REASON_DEBT:
        data["debt"] = {
            "amount": objection.debt.owed.amount,
            "currency": objection.debt.owed.currency,
            "due_date": objection.debt.due_date,
            "bill_number": objection.debt.bill_number,
        }
    return data


def _objection(data: dict[str, Any] | None) -> portability_pb2.Objection | None:
    if not data:
        return None
    objection = portability_pb2.Objection(
        reason=OBJECTION_ENUM[data["reason"]],
        code=data.get("code") or "",
        detail=data.get("detail", ""),
    )
    debt = data.get("debt")
    if debt:
        objection.debt.owed.amount = debt["amount"]
        objection.debt.owed.currency = debt["currency"]
        objection.debt.due_date = debt["due_date"]
        objection.debt.bill_number = debt.get("bill_number", "")
    return objection


def _blocks(data: list[dict[str, str]]) -> list[common_pb2.NumberBlock]:
    return [
        common_pb2.NumberBlock(
            first=b["first"], last=b["last"], modality=MODALITY_ENUM[b["modality"]]
        )
        for b in data
    ]


def _document(data: dict[str, str]) -> common_pb2.IdentityDocument:
    return common_pb2.IdentityDocument(type=DOCUMENT_ENUM[data["type"]], number=data["number"])


def consultation_message(row: Any) -> portability_pb2.PriorConsultation:
    """A prior_consultations row as its API message."""
    return portability_pb2.PriorConsultation(
        id=row["id"],
        recipient=row["recipient"],
        donor=row["donor"],
        service=SERVICE_ENUM[row["service"]],
        document=_document(row["document"]),
        numbers=_blocks(row["numbers"]),
        number_count=row["number_count"],
        state=CONSULTATION_STATES[row["state"]],
        submitted_at=to_timestamp(row["submitted_at"]),
        donor_deadline=to_timestamp(row["donor_deadline"]),
        answered_at=to_timestamp(row["answered_at"]),
        donor_silent=row["donor_silent"],
        objection=_objection(row["objection"]),
    )


def request_message(row: Any) -> portability_pb2.PortRequest:
    """A port_requests row as its API message."""
    subscriber = row["subscriber"]
    return portability_pb2.PortRequest(
        id=row["id"],
        recipient=row["recipient"],
        donor=row["donor"],
        service=SERVICE_ENUM[row["service"]],
        subscriber=common_pb2.Subscriber(
            name=subscriber["name"],
            legal_representative=subscriber.get("legal_representative", ""),
            document=_document(subscriber["document"]),
            email=subscriber.get("email", ""),
            contact_phone=subscriber.get("contact_phone", ""),
        ),
        numbers=_blocks(row["numbers"]),
        number_count=row["number_count"],
        special_client=row["special_client"],
        state=REQUEST_STATES[row["state"]],
        form_number=row["form_number"],
        prior_consultation_id=row["prior_consultation_id"] or "",
        received_at=to_timestamp(row["received_at"]),
        submitted_at=to_timestamp(row["submitted_at"]),
        donor_deadline=to_timestamp(row["donor_deadline"]),
        answered_at=to_timestamp(row["answered_at"]),
        donor_silent=row["donor_silent"],
        objection=_objection(row["objection"]),
        admissible_at=to_timestamp(row["admissible_at"]),
        schedule_deadline=to_timestamp(row["schedule_deadline"]),
        execution_limit=to_timestamp(row["execution_limit"]),
        scheduled_at=to_timestamp(row["scheduled_at"]),
        executed_at=to_timestamp(row["executed_at"]),
        donor_disabled_at=to_timestamp(row["donor_disabled_at"]),
        recipient_enabled_at=to_timestamp(row["recipient_enabled_at"]),
        closed_at=to_timestamp(row["closed_at"]),
        installation_date=_iso(row["installation_date"]) or "",
        rejection_reason=row["rejection_reason"] or "",
    )


def request_payload(row: Any, *, private: bool = True) -> dict[str, Any]:
    """Event payload describing a request. Broadcasts (`private=False`) carry no subscriber data."""
    payload: dict[str, Any] = {
        "port_request_id": row["id"],
        "recipient": row["recipient"],
        "donor": row["donor"],
        "service": row["service"],
        "state": row["state"],
        "numbers": row["numbers"],
        "number_count": row["number_count"],
        "special_client": row["special_client"],
    }
    if private:
        payload.update(
            {
                "submitted_at": _iso(row["submitted_at"]),
                "donor_deadline": _iso(row["donor_deadline"]),
                "admissible_at": _iso(row["admissible_at"]),
                "schedule_deadline": _iso(row["schedule_deadline"]),
                "execution_limit": _iso(row["execution_limit"]),
                "objection": row["objection"],
                "rejection_reason": row["rejection_reason"],
            }
        )
    payload["scheduled_at"] = _iso(row["scheduled_at"])
    payload["executed_at"] = _iso(row["executed_at"])
    return payload


def consultation_payload(row: Any) -> dict[str, Any]:
    """Event payload describing a prior consultation."""
    return {
        "consultation_id": row["id"],
        "recipient": row["recipient"],
        "donor": row["donor"],
        "service": row["service"],
        "state": row["state"],
        "document": row["document"],
        "numbers": row["numbers"],
        "number_count": row["number_count"],
        "donor_deadline": _iso(row["donor_deadline"]),
        "objection": row["objection"],
    }
