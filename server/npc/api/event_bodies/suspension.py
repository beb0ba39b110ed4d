"""Bodies of the suspension flow (`suspension.*`), from the handler's `_payload`."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum
from npc.core.dates import iso_to_date
from npc.v1 import common_pb2, suspension_pb2

TYPES = ("requested", "suspended", "withdrawn", "reactivation_requested", "reactivated", "ended")


def suspension(payload: Payload) -> suspension_pb2.Suspension:
    """The suspension for debt, with what its payload carries (no instants)."""
    return suspension_pb2.Suspension(
        id=payload["suspension_id"],
        port_request_id=payload.get("port_request_id") or "",
        number=payload["number"],
        donor=payload["donor"],
        recipient=payload["recipient"],
        state=enum(suspension_pb2.SuspensionState, payload.get("state")),
        bill_number=payload.get("bill_number") or "",
        due_date=iso_to_date(payload.get("due_date")),
        owed=common_pb2.Money(
            amount=str(payload.get("amount") or ""), currency=payload.get("currency") or ""
        ),
    )


BODIES: dict[str, tuple[str, Converter]] = {
    f"suspension.{t}": ("suspension", suspension) for t in TYPES
}
