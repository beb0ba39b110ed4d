"""Checking the event log's hash chain on an operator's side (see `Event.hash` in
proto/npc/v1/events.proto): each event's hash is SHA-256 over the previous position's hash and
the event's canonical content, so two consecutive positions received prove each other. The
content is what a subscription with `with_canonical_content` receives in `Event.canonical_content`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from npc.v1 import events_pb2


def canonical_content(event: events_pb2.Event) -> bytes:
    """The bytes of `event` its hash covers after the previous hash.

    The stream sends them only to a subscription with `with_canonical_content` (the typed body
    cannot be turned back into the JSON the log hashes); raise ValueError when they are missing.
    """
    if not event.canonical_content:
        raise ValueError(
            f"event {event.position} carries no canonical_content:"
            " subscribe with SubscribeRequest(with_canonical_content=True) to verify the chain"
        )
    return event.canonical_content


def envelope_matches(event: events_pb2.Event) -> bool:
    """True when the event's envelope (position, instant, flow, type, code, case, sender,
    audience, broadcast) is the one its canonical content states: the hash covers the content,
    so an envelope changed on the way no longer matches it."""
    content = json.loads(canonical_content(event))
    position, occurred, flow, type_, code, case_id, sender, audience, broadcast, _ = content
    return (
        position == event.position
        and datetime.fromisoformat(occurred) == event.occurred_at.ToDatetime(tzinfo=UTC)
        and flow == event.flow
        and type_ == event.type
        and (code or "") == event.code
        and (case_id or "") == event.case_id
        and sender == event.sender
        and audience == sorted(event.audience)
        and broadcast == event.broadcast
    )


def stored_payload(event: events_pb2.Event) -> dict[str, Any]:
    """The JSON the log stores for the event, which the hash covers and the typed body is built
    from: for an auditor who wants the facts the chain proves, not for everyday reading."""
    payload: dict[str, Any] = json.loads(canonical_content(event))[9]
    return payload


def follows(previous: events_pb2.Event, event: events_pb2.Event) -> bool:
    """True when `event` is the next position after `previous`, its hash chains to it and its
    envelope is the one the hash covers.

    Both events come from a subscription with `with_canonical_content` (ValueError otherwise).
    """
    return (
        event.position == previous.position + 1
        and event.hash == hashlib.sha256(previous.hash + canonical_content(event)).digest()
        and envelope_matches(event)
    )
