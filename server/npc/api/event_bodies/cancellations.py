"""Bodies of the cancellations flow (`cancellations.*`), from the handler's report receipt."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload
from npc.core.dates import iso_to_date
from npc.v1 import cancellations_pb2


def report_received(payload: Payload) -> cancellations_pb2.DailyReportReceipt:
    """The receipt of an operator's daily report (its instants are not in the payload)."""
    return cancellations_pb2.DailyReportReceipt(
        operator=payload["operator"],
        report_date=iso_to_date(payload["report_date"]),
        records=int(payload["records"]),
        version=int(payload["version"]),
        on_time=bool(payload.get("on_time")),
    )


BODIES: dict[str, tuple[str, Converter]] = {
    "cancellations.report_received": ("cancellations_report", report_received),
}
