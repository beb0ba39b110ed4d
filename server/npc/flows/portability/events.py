"""The portability flow's event payloads and JSON columns, built from its rows and commands.

Payloads are JSON dicts whose keys operators' consumers read today: they change only with the
event's version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from npc.flows.portability.model import NumberBlock, Objection
from npc.flows.portability.rules import OBJECTION_CODES, ObjectionReason


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def blocks_json(blocks: Sequence[NumberBlock]) -> list[dict[str, str]]:
    """Number blocks as stored (JSON); the blocks passed the checks, so each has its modality."""
    return [
        {"first": b.first, "last": b.last or b.first, "modality": str(b.modality)} for b in blocks
    ]


def objection_json(objection: Objection) -> dict[str, Any]:
    """A checked objection as stored (JSON)."""
    assert objection.reason is not None
    data: dict[str, Any] = {
        "reason": str(objection.reason),
        "code": OBJECTION_CODES.get(objection.reason),
        "detail": objection.detail,
    }
    if objection.reason == ObjectionReason.DEBT:
        # The checks refused a debt objection without a readable due date.
        assert isinstance(objection.debt.due_date, date)
        data["debt"] = {
            "amount": objection.debt.owed.amount,
            "currency": objection.debt.owed.currency,
            "due_date": _iso(objection.debt.due_date),
            "bill_number": objection.debt.bill_number,
        }
    return data


def request_payload(row: Mapping[str, Any], *, private: bool = True) -> dict[str, Any]:
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
                "received_at": _iso(row["received_at"]),
                "submitted_at": _iso(row["submitted_at"]),
                "donor_deadline": _iso(row["donor_deadline"]),
                # The donor's answer: SPR and RABDCP say whether it stayed silent and when it
                # answered (accepted or objected).
                "answered_at": _iso(row["answered_at"]),
                "donor_silent": row["donor_silent"],
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


def consultation_payload(row: Mapping[str, Any]) -> dict[str, Any]:
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
