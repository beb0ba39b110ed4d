"""Payloads of the suspension flow's events (JSON, as the parties receive them)."""

from __future__ import annotations

from typing import Any

from asyncpg import Record


def suspension_payload(row: Record) -> dict[str, Any]:
    """A suspensions row as the payload of its events."""
    return {
        "suspension_id": row["id"],
        "port_request_id": row["port_request_id"],
        "number": row["number"],
        "donor": row["donor"],
        "recipient": row["recipient"],
        "state": row["state"],
        "bill_number": row["bill_number"],
        "due_date": row["due_date"].isoformat(),
        "amount": row["amount"],
        "currency": row["currency"],
    }
