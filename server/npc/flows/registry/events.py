"""The registry flow's own events: the steps of a return of numbers (`registry.return.*`).

The changes of who serves a number (`registry.numbers_changed`) and bulk imports
(`registry.imported`) are the kernel's (`npc.core.numbers`).
"""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from npc.flows.registry.store import FLOW
from npc.store.database import Txn


def return_payload(row: Record) -> dict[str, Any]:
    """A number_returns row as the payload of its events (JSON)."""
    return {
        "return_id": row["id"],
        "port_request_id": row["port_request_id"],
        "donor": row["donor"],
        "recipient": row["recipient"],
        "numbers": list(row["numbers"]),
        "state": row["state"],
        "disable_at": row["disable_at"].isoformat() if row["disable_at"] else None,
        "notified_at": row["notified_at"].isoformat(),
        "answer_deadline": row["answer_deadline"].isoformat(),
        "denial": row["denial"],
        "denial_reason": row["denial_reason"],
    }


def emit_return(txn: Txn, step: str, row: Record, sender: str, *, to: tuple[str, ...]) -> None:
    """Tell `to` that return `row` reached `step` (event type ``registry.return.<step>``)."""
    txn.emit(
        FLOW,
        f"registry.return.{step}",
        case_id=row["id"],
        sender=sender,
        audience=to,
        payload=return_payload(row),
    )
