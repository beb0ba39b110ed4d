"""Payloads of the cancellations tracking's events (JSON, as the operator receives them)."""

from __future__ import annotations

from typing import Any

from npc.flows.cancellations.model import ReportReceipt


def report_received_payload(receipt: ReportReceipt) -> dict[str, Any]:
    """The payload of `cancellations.report_received`."""
    return {
        "operator": receipt.operator,
        "report_date": receipt.report_date.isoformat(),
        "records": receipt.records,
        "version": receipt.version,
        "on_time": receipt.on_time,
    }
