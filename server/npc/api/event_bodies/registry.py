"""Bodies of the registry flow's returns (`registry.return.*`), from `returns._emit`."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, instant
from npc.v1 import registry_pb2

TYPES = ("requested", "denied", "accepted", "executed", "recipient_confirmed", "donor_confirmed")


def number_return(payload: Payload) -> registry_pb2.NumberReturn:
    """The return of numbers to their range holder, with what its payload carries."""
    return registry_pb2.NumberReturn(
        id=payload["return_id"],
        port_request_id=payload.get("port_request_id") or "",
        donor=payload["donor"],
        recipient=payload["recipient"],
        numbers=list(payload.get("numbers") or ()),
        state=enum(registry_pb2.ReturnState, payload.get("state")),
        disable_at=instant(payload.get("disable_at")),
        # Events logged before these were carried leave them unset.
        notified_at=instant(payload.get("notified_at")),
        answer_deadline=instant(payload.get("answer_deadline")),
        denial=enum(registry_pb2.ReturnDenialReason, payload.get("denial")),
        denial_reason=payload.get("denial_reason") or "",
    )


BODIES: dict[str, tuple[str, Converter]] = {
    f"registry.return.{t}": ("number_return", number_return) for t in TYPES
}
