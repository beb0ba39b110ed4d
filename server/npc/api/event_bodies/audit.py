"""Bodies of the audit trail's events (npc.core.anchor): the signed anchors."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, instant
from npc.core.anchor import ANCHORED
from npc.v1 import events_pb2


def anchor(payload: Payload) -> events_pb2.AuditAnchor:
    """A signed head of the log (`Anchor.to_json`: the bytes in hex)."""
    return events_pb2.AuditAnchor(
        position=int(payload["position"]),
        hash=bytes.fromhex(payload["hash"]),
        instant=instant(payload.get("instant")),
        signature=bytes.fromhex(payload["signature"]),
        public_key=bytes.fromhex(payload["public_key"]),
    )


BODIES: dict[str, tuple[str, Converter]] = {ANCHORED: ("audit_anchor", anchor)}
