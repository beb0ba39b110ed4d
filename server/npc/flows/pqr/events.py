"""The PQR flow's events (``pqr.*``) and their JSON payloads, addressed to the provider."""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from npc.flows.pqr.rules import FLOW
from npc.store.database import Txn


def emit_pqr(txn: Txn, type_: str, row: Record, sender: str, **extra: Any) -> None:
    """``pqr.<type_>`` on a PQR: its CUN, provider, kind, subject and state, and `extra`."""
    payload = {
        "cun": row["id"],
        "provider": row["provider"],
        "kind": row["kind"],
        "subject": row["subject"],
        "state": row["state"],
        **extra,
    }
    txn.emit(
        FLOW,
        f"pqr.{type_}",
        case_id=row["id"],
        sender=sender,
        audience=(row["provider"],),
        payload=payload,
    )


def emit_sms(txn: Txn, type_: str, row: Record, sender: str) -> None:
    """``pqr.<type_>`` on an SMS QUEJA request: its id, provider, line, state and CUN."""
    txn.emit(
        FLOW,
        f"pqr.{type_}",
        case_id=row["id"],
        sender=sender,
        audience=(row["provider"],),
        payload={
            "sms_request_id": row["id"],
            "provider": row["provider"],
            "msisdn": row["msisdn"],
            "state": row["state"],
            "cun": row["cun"],
        },
    )


def emit_range_assigned(txn: Txn, provider: str, first: str, last: str, sender: str) -> None:
    """``pqr.cun_range_assigned``, to the provider that received the range."""
    txn.emit(
        FLOW,
        "pqr.cun_range_assigned",
        case_id=None,
        sender=sender,
        audience=(provider,),
        payload={"provider": provider, "first": first, "last": last},
    )
