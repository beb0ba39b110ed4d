"""Bodies of the core's registry events (npc.core.numbers): numbers changed, bulk imports."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, instant
from npc.core.numbers import IMPORTED, NUMBERS_CHANGED
from npc.v1 import events_pb2


def numbers_changed(payload: Payload) -> events_pb2.NumbersChanged:
    """Numbers now served by `to_operator`, grouped by the operator each came from."""
    return events_pb2.NumbersChanged(
        to_operator=payload["to_operator"],
        routing_code=payload.get("routing_code") or "",
        reason=enum(events_pb2.NumbersChangeReason, payload.get("reason")),
        changed_at=instant(payload.get("changed_at")),
        moves=[
            events_pb2.NumberMove(from_operator=m["from_operator"], numbers=m["numbers"])
            for m in payload.get("moves") or ()
        ],
    )


def imported(payload: Payload) -> events_pb2.RegistryImported:
    """What a bulk change of the registry replaced, and how many rows it wrote."""
    return events_pb2.RegistryImported(
        kind=enum(events_pb2.RegistryImportKind, payload.get("kind")),
        rows=int(payload.get("rows") or 0),
    )


BODIES: dict[str, tuple[str, Converter]] = {
    NUMBERS_CHANGED: ("numbers_changed", numbers_changed),
    IMPORTED: ("registry_imported", imported),
}
