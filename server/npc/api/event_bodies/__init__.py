"""Typed event bodies: every event type the clearinghouse emits, as the `Event.body` field and
message operators read, rebuilt from the JSON payload the log stores (and hashes).

The stored log keeps its JSON; a body is built when an event is streamed, so old positions stream
with the same typed bodies as new ones. One module per flow, plus the core's families
(compliance, numbers, audit); `BODIES` joins them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC

from google.protobuf import timestamp_pb2

from npc.api.event_bodies import (
    audit,
    cancellations,
    compliance,
    holidays,
    inoperability,
    numbers,
    portability,
    pqr,
    registry,
    sgu,
    suspension,
)
from npc.api.event_bodies._convert import Converter
from npc.core.events import LoggedEvent
from npc.v1 import events_pb2

log = logging.getLogger(__name__)

_MODULES = (
    portability,
    suspension,
    registry,
    sgu,
    pqr,
    inoperability,
    cancellations,
    numbers,
    compliance,
    audit,
    holidays,
)


def _join() -> dict[str, tuple[str, Converter]]:
    joined: dict[str, tuple[str, Converter]] = {}
    for module in _MODULES:
        for type_, body in module.BODIES.items():
            if type_ in joined:
                raise ValueError(f"{type_} has two converters")
            joined[type_] = body
    return joined


# Event type -> (the `Event.body` field it fills, the converter from its stored payload).
BODIES: dict[str, tuple[str, Converter]] = _join()


def canonical_content(event: LoggedEvent) -> bytes:
    """The bytes of `event` its hash covers after the previous hash (npc.core.events.chain_hash)."""
    return json.dumps(
        [
            event.position,
            event.occurred_at.astimezone(UTC).isoformat(),
            event.flow,
            event.type,
            event.code,
            event.case_id,
            event.sender,
            sorted(event.audience),
            event.broadcast,
            event.payload,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def event_message(event: LoggedEvent) -> events_pb2.Event:
    """A logged event as its API message, its body typed; an unknown type, or a payload its
    converter cannot read, streams without one."""
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(event.occurred_at)
    message = events_pb2.Event(
        position=event.position,
        occurred_at=occurred,
        flow=event.flow,
        type=event.type,
        code=event.code or "",
        case_id=event.case_id or "",
        sender=event.sender,
        broadcast=event.broadcast,
        audience=list(event.audience),
        hash=event.hash or b"",
    )
    body = BODIES.get(event.type)
    if body is not None:
        field, convert = body
        try:
            getattr(message, field).CopyFrom(convert(event.payload))
        except (KeyError, TypeError, ValueError, AttributeError):
            # A stored payload the converter cannot read must not end every operator's stream
            # at this position: the event goes out without a body, and the log says which.
            log.exception("event %d (%s): no body from its payload", event.position, event.type)
    return message
