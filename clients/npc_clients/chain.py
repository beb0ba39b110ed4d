"""Checking the event log's hash chain on an operator's side (see `Event.hash` in
proto/npc/v1/events.proto): each event's hash is SHA-256 over the previous position's hash and
the event's canonical content, so two consecutive positions received prove each other. The
content is what a subscription with `with_canonical_content` receives in `Event.canonical_content`."""

from __future__ import annotations

import hashlib

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


def follows(previous: events_pb2.Event, event: events_pb2.Event) -> bool:
    """True when `event` is the next position after `previous` and its hash chains to it.

    Both events come from a subscription with `with_canonical_content` (ValueError otherwise).
    """
    return (
        event.position == previous.position + 1
        and event.hash == hashlib.sha256(previous.hash + canonical_content(event)).digest()
    )
