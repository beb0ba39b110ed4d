"""Verification of the event log's hash chain (tamper evidence).

Each positioned event carries SHA-256(previous hash + its canonical content); `event_head` holds
the last position and hash. Recomputing the chain from the genesis hash finds the first position
whose content, order or presence differs from what was sequenced. Against a signed anchor
(`npc.core.anchor`) it also finds a log cut short below the anchored position, or rewritten and
re-hashed through it. Compliance records are covered by the log: each is written with its
`compliance.recorded` event, and the ledger must match those events record for record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from npc.core.anchor import Anchor
from npc.core.events import GENESIS_HASH, chain_hash
from npc.store.database import Database

RECORDED = "compliance.recorded"


@dataclass(frozen=True)
class LogVerification:
    """The outcome of a verification: `first_broken` is None when the whole chain holds (and
    holds the anchor given), `ledger_broken` the first compliance record that differs from its
    event in the log."""

    checked: int
    head: int
    first_broken: int | None = None
    reason: str | None = None
    ledger_broken: int | None = None

    @property
    def intact(self) -> bool:
        """True when every event up to the head is present and matches its hash, and the
        compliance ledger matches the log."""
        return self.first_broken is None and self.ledger_broken is None


def _instant(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat()


def _record_digest(
    flow: str, case_id: str | None, fields: Mapping[str, Any], source: list[Any] | None
) -> bytes:
    """What a compliance record says, from its row or from its event's payload; `source` is
    its rule's source (kind, document, note), None for records written before sources."""
    body = [
        flow,
        case_id,
        fields["operator"],
        fields["rule"],
        fields["infraction"],
        fields["article"],
        fields["severity"],
        fields["description"],
        _instant(fields["due_at"]),
        _instant(fields["observed_at"]),
        fields["evidence"],
    ]
    if source is not None:
        body.append(source)
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()


def _logged_record(
    ledger: dict[int, tuple[bytes, int | None]], row: Mapping[str, Any], position: int | None
) -> None:
    payload = row["payload"]
    if isinstance(payload, dict) and isinstance(payload.get("record_id"), int):
        logged = payload.get("source")
        source = None if logged is None else [logged["kind"], logged["document"], logged["note"]]
        ledger[payload["record_id"]] = (
            _record_digest(row["flow"], row["case_id"], payload, source),
            position,
        )


async def _check_ledger(
    conn: asyncpg.Connection, ledger: dict[int, tuple[bytes, int | None]], batch: int
) -> tuple[int, str] | None:
    """The first compliance record that differs from, or lacks, its logged event (or a logged
    record missing from the ledger)."""
    for row in await conn.fetch(
        "SELECT flow, case_id, payload FROM events WHERE position IS NULL AND type = $1", RECORDED
    ):
        _logged_record(ledger, row, None)  # committed, not sequenced yet
    async for row in conn.cursor(
        "SELECT id, operator_id AS operator, flow, case_id, rule, infraction, article, severity,"
        " description, due_at, observed_at, evidence, source_kind, source_document, source_note"
        " FROM compliance_records ORDER BY id",
        prefetch=batch,
    ):
        record = int(row["id"])
        logged = ledger.pop(record, None)
        if logged is None:
            return record, f"compliance record {record} has no compliance.recorded event"
        source = (
            None
            if row["source_kind"] is None
            else [row["source_kind"], row["source_document"], row["source_note"]]
        )
        if logged[0] != _record_digest(row["flow"], row["case_id"], row, source):
            return record, (
                f"compliance record {record} differs from its event at position {logged[1]}"
            )
    if ledger:
        record = min(ledger)
        return record, (
            f"compliance record {record}, logged at position {ledger[record][1]},"
            " is missing from the ledger"
        )
    return None


async def verify_log(
    db: Database,
    *,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
    anchor: Anchor | None = None,
) -> LogVerification:
    """Recompute the hash chain over the whole log, in one consistent snapshot; with `anchor`,
    also check that the log reaches the anchored position with the anchored hash; then check
    the compliance ledger against the log.

    Raises:
        InvalidAnchor: when the anchor's signature does not verify.
    """
    if anchor is not None:
        anchor.check_signature()
    ledger: dict[int, tuple[bytes, int | None]] = {}
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
            if anchor is not None and position == anchor.position and computed != anchor.hash:
                return LogVerification(
                    expected - 1,
                    head_position,
                    position,
                    "not the event anchored at this position: the log was rewritten and"
                    " re-hashed after the anchor was signed",
                )
            if row["type"] == RECORDED:
                _logged_record(ledger, row, position)
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
        if anchor is not None and checked < anchor.position:
            return LogVerification(
                checked,
                head_position,
                checked + 1,
                f"the log ends before the anchored position {anchor.position}: its tail was"
                " removed",
            )
        broken = await _check_ledger(conn, ledger, batch)
        if broken is not None:
            return LogVerification(checked, head_position, None, broken[1], broken[0])
    return LogVerification(checked, head_position)
