"""The event envelope as read back from the log, and the hash chain over it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = bytes(32)
CLEARINGHOUSE = "clearinghouse"


@dataclass(frozen=True)
class LoggedEvent:
    """An event with its position in the global log."""

    position: int
    occurred_at: datetime
    flow: str
    type: str
    code: str | None
    case_id: str | None
    sender: str
    audience: tuple[str, ...]
    broadcast: bool
    payload: dict[str, Any]
    # Its link in the hash chain (`chain_hash`); None only for events built outside the log.
    hash: bytes | None = None

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], *, position: int | None = None, hash: bytes | None = None
    ) -> LoggedEvent:
        """Build from an `events` row; with `position` and `hash` when the row was read before
        the sequencer gave it them."""
        if position is None:
            position = row["position"]
            stored = row.get("hash")
            hash = bytes(stored) if stored is not None else None
        return cls(
            position=position,
            occurred_at=row["occurred_at"],
            flow=row["flow"],
            type=row["type"],
            code=row["code"],
            case_id=row["case_id"],
            sender=row["sender"],
            audience=tuple(row["audience"] or ()),
            broadcast=row["broadcast"],
            payload=row["payload"],
            hash=hash,
        )

    def addressed_to(self, operator: str) -> bool:
        """True when `operator` must receive this event."""
        return self.broadcast or operator in self.audience


def chain_hash(previous: bytes, position: int, row: Mapping[str, Any]) -> bytes:
    """Hash of an event chained to the previous event's hash (tamper evidence)."""
    body = json.dumps(
        [
            position,
            row["occurred_at"].isoformat(),
            row["flow"],
            row["type"],
            row["code"],
            row["case_id"],
            row["sender"],
            sorted(row["audience"] or ()),
            row["broadcast"],
            row["payload"],
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return hashlib.sha256(previous + body).digest()
