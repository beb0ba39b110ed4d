"""Verification of the event log's hash chain (tamper evidence).

Each positioned event carries SHA-256(previous hash + its canonical content); `event_head` holds
the last position and hash. Recomputing the chain from the genesis hash finds the first position
whose content, order or presence differs from what was sequenced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from npc.core.events import GENESIS_HASH, chain_hash
from npc.store.database import Database


@dataclass(frozen=True)
class LogVerification:
    """The outcome of a verification: `first_broken` is None when the whole chain holds."""

    checked: int
    head: int
    first_broken: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        """True when every event up to the head is present and matches its hash."""
        return self.first_broken is None


async def verify_log(
    db: Database, *, batch: int = 5000, progress: Callable[[int], None] | None = None
) -> LogVerification:
    """Recompute the hash chain over the whole log, in one consistent snapshot."""
    previous = GENESIS_HASH
    expected = 1
    async with (
        db.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        head = await conn.fetchrow("SELECT position, hash FROM event_head")
        assert head is not None
        head_position = int(head["position"])
        async for row in conn.cursor(
            "SELECT position, occurred_at, flow, type, code, case_id, sender, audience, broadcast,"
            " payload, hash FROM events WHERE position IS NOT NULL ORDER BY position",
            prefetch=batch,
        ):
            position = int(row["position"])
            if position != expected:
                return LogVerification(
                    expected - 1,
                    head_position,
                    expected,
                    f"missing: the next event has position {position}",
                )
            computed = chain_hash(previous, position, row)
            if row["hash"] is None or computed != bytes(row["hash"]):
                return LogVerification(
                    expected - 1,
                    head_position,
                    position,
                    "content or order changed: its hash does not follow from its content and"
                    " the previous event's hash",
                )
            previous = computed
            expected += 1
            if progress is not None and position % batch == 0:
                progress(position)
        checked = expected - 1
        if checked < head_position:
            return LogVerification(
                checked, head_position, checked + 1, "missing: the head is further than the log"
            )
        if checked > head_position or previous != bytes(head["hash"]):
            return LogVerification(
                checked,
                head_position,
                head_position + 1 if checked > head_position else head_position,
                "the recorded head does not match the last event",
            )
    return LogVerification(checked, head_position)
