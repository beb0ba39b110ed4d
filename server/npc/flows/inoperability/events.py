"""Payloads of the inoperability registry's events (JSON, as the operator receives them)."""

from __future__ import annotations

from typing import Any

from asyncpg import Record


def event_payload(row: Record) -> dict[str, Any]:
    """An event row as the payload of its events."""
    return {
        "event_id": row["id"],
        "operator": row["operator_id"],
        "number": row["number"],
        "attention_point_code": row["attention_point_code"],
        "request_type": row["request_type"],
        "scenario": row["scenario"],
        "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
        "closing_reason": row["closing_reason"],
    }
