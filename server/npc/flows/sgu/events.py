"""The user management system's events on the shared log: their payloads, JSON as operators
read them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from npc.flows.sgu.model import Outage
from npc.flows.sgu.rules import FLOW
from npc.store.database import Txn


def problem_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """What an operator needs to act on a problem (the subscriber's data included)."""
    return {
        "problem_id": row["id"],
        "operator": row["operator"],
        "state": row["state"],
        "number": row["number"],
        "subcategory": row["subcategory"],
        "category": row["category"],
        "description": row["description"],
        "subscriber_name": row["subscriber_name"],
        "document_type": row["document_type"],
        "document_number": row["document_number"],
        "email": row["email"],
        "channel": row["channel"],
        "answer_deadline": _iso(row["answer_deadline"]),
        "claim_code_deadline": _iso(row["claim_code_deadline"]),
    }


def emit_problem(txn: Txn, type_: str, row: Mapping[str, Any], sender: str) -> None:
    """Tell the problem's operator what happened to it."""
    txn.emit(
        FLOW,
        type_,
        case_id=row["id"],
        sender=sender,
        audience=(row["operator"],),
        payload=problem_payload(row),
    )


def emit_outage(txn: Txn, outage: Outage, sender: str) -> None:
    """Announce an outage to its operator, or to everyone when the SGU itself was down."""
    txn.emit(
        FLOW,
        "sgu.outage.recorded",
        case_id=None,
        sender=sender,
        audience=(outage.operator,) if outage.operator else (),
        broadcast=outage.operator is None,
        payload={
            "outage_id": outage.id,
            "operator": outage.operator,
            "starts_at": outage.starts_at.isoformat(),
            "ends_at": outage.ends_at.isoformat(),
            "reason": outage.reason,
            "deadlines_moved": outage.deadlines_moved,
        },
    )


def emit_catalogue_changed(txn: Txn, code: str, active: bool, sender: str) -> None:
    """Announce a changed subcategory to every operator."""
    txn.emit(
        FLOW,
        "sgu.catalogue.changed",
        case_id=None,
        sender=sender,
        broadcast=True,
        payload={"subcategory": code, "active": active},
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
