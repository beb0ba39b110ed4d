"""Bodies of the inoperability flow (`inoperability.*`), from the handler's `_emit`."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, instant
from npc.v1 import inoperability_pb2

TYPES = ("registered", "closed", "reported")


def inoperability_event(payload: Payload) -> inoperability_pb2.InoperabilityEvent:
    """The inoperability event of an attention point, with what its payload carries."""
    return inoperability_pb2.InoperabilityEvent(
        id=payload["event_id"],
        operator=payload["operator"],
        number=int(payload["number"]),
        attention_point_code=payload.get("attention_point_code") or "",
        request_type=enum(inoperability_pb2.RequestType, payload.get("request_type")),
        scenario=enum(inoperability_pb2.Scenario, payload.get("scenario")),
        started_at=instant(payload.get("started_at")),
        ended_at=instant(payload.get("ended_at")),
        closing_reason=enum(inoperability_pb2.ClosingReason, payload.get("closing_reason")),
    )


BODIES: dict[str, tuple[str, Converter]] = {
    f"inoperability.{t}": ("inoperability_event", inoperability_event) for t in TYPES
}
