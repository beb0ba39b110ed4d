"""Bodies of the compliance ledger's events (npc.core.compliance.record_breach)."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, instant, text
from npc.v1 import events_pb2


def recorded(payload: Payload) -> events_pb2.ComplianceRecorded:
    """A missed deadline as the ledger recorded it; its evidence as text facts, and its rule's
    source (unset on records written before rules named theirs)."""
    logged = payload.get("source")
    source = (
        events_pb2.RuleSource(
            kind=enum(events_pb2.RuleSourceKind, logged.get("kind")),
            document=logged.get("document") or "",
            note=logged.get("note") or "",
        )
        if logged
        else None
    )
    return events_pb2.ComplianceRecorded(
        record_id=int(payload["record_id"]),
        operator=payload["operator"],
        rule=payload["rule"],
        infraction=int(payload.get("infraction") or 0),
        article=payload.get("article") or "",
        severity=enum(events_pb2.InfractionSeverity, payload.get("severity")),
        description=payload.get("description") or "",
        due_at=instant(payload.get("due_at")),
        observed_at=instant(payload.get("observed_at")),
        evidence={
            name: text(value)
            for name, value in (payload.get("evidence") or {}).items()
            if value is not None
        },
        source=source,
    )


BODIES: dict[str, tuple[str, Converter]] = {
    "compliance.recorded": ("compliance_recorded", recorded),
}
