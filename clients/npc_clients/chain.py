"""Checking the event log's hash chain on an operator's side (see `Event.hash` in
proto/npc/v1/events.proto): each event's hash is SHA-256 over the previous position's hash and
the event's canonical content, so two consecutive positions received prove each other."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

from google.protobuf import json_format

from npc.v1 import events_pb2


def _whole(value: Any) -> Any:
    # A Struct carries every number as a double; the log writes whole numbers without a fraction.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def canonical_content(event: events_pb2.Event) -> bytes:
    """The bytes of `event` its hash covers after the previous hash."""
    occurred = event.occurred_at.ToDatetime(tzinfo=UTC)
    return json.dumps(
        [
            event.position,
            occurred.isoformat(),
            event.flow,
            event.type,
            event.code or None,
            event.case_id or None,
            event.sender,
            sorted(event.audience),
            event.broadcast,
            _whole(json_format.MessageToDict(event.payload)),
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def follows(previous: events_pb2.Event, event: events_pb2.Event) -> bool:
    """True when `event` is the next position after `previous` and its hash chains to it."""
    return (
        event.position == previous.position + 1
        and event.hash == hashlib.sha256(previous.hash + canonical_content(event)).digest()
    )
