"""Signed anchors of the event log: the external reference its hash chain needs.

A hash chain shows that nothing changed *inside* the log, but a log whose tail was cut (and head
moved back), or that was rewritten and re-hashed from some position on, is a chain as valid as
the genuine one. So the clearinghouse periodically signs its head (position, hash, instant) with
an Ed25519 key kept outside the database, stores the signed head in `anchors`, and broadcasts it
as an `audit.anchored` event: every operator keeps a copy on its stream, and the regulator keeps
`npc admin anchor`'s output outside. `verify_log(..., anchor=...)` then refuses a log whose head is
below the anchored position or whose hash there differs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from prometheus_client import Counter

from npc.core.clock import Clock
from npc.core.events import CLEARINGHOUSE
from npc.core.supervision import passed
from npc.store.database import Database

log = logging.getLogger(__name__)

AUDIT_FLOW = "audit"
ANCHORED = "audit.anchored"
# Any fixed 64-bit key: one process anchors at a time.
_ANCHOR_LOCK = 0x6E70635F616E6368
# A key file or an anchor file is a few hundred bytes; refuse to read more.
MAX_FILE_BYTES = 16 * 1024

ANCHORS_PUBLISHED = Counter(
    "npc_audit_anchors_total", "Signed anchors of the event log's head published by this process."
)


class InvalidAnchor(ValueError):
    """An anchor that is malformed or whose signature does not verify."""


def _instant_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def signed_message(position: int, head_hash: bytes, instant: datetime) -> bytes:
    """The bytes an anchor's signature covers: `npc-anchor-v1 POSITION HASH_HEX INSTANT`, the
    instant in UTC ISO 8601 with microseconds (any Ed25519 tool can check it)."""
    return f"npc-anchor-v1 {position} {head_hash.hex()} {_instant_text(instant)}".encode()


@dataclass(frozen=True)
class Anchor:
    """A signed head of the log: the event at `position` has hash `hash`, as of `instant`."""

    position: int
    hash: bytes
    instant: datetime
    public_key: bytes
    signature: bytes

    @classmethod
    def sign(
        cls, key: Ed25519PrivateKey, position: int, head_hash: bytes, instant: datetime
    ) -> Anchor:
        """Sign a head with the clearinghouse's key."""
        return cls(
            position,
            head_hash,
            instant,
            public_key_bytes(key),
            key.sign(signed_message(position, head_hash, instant)),
        )

    def check_signature(self) -> None:
        """Raise InvalidAnchor unless the signature covers this position, hash and instant."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                self.signature, signed_message(self.position, self.hash, self.instant)
            )
        except (InvalidSignature, ValueError) as exc:
            raise InvalidAnchor("the anchor's signature does not verify") from exc

    def to_json(self) -> dict[str, Any]:
        """The anchor as `npc admin anchor` prints it and the `audit.anchored` event carries it."""
        return {
            "position": self.position,
            "hash": self.hash.hex(),
            "instant": _instant_text(self.instant),
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Anchor:
        """Parse `to_json`'s output; raise InvalidAnchor when a field is missing or malformed."""

        def hex_field(name: str, size: int) -> bytes:
            value = data.get(name)
            try:
                if not isinstance(value, str) or len(value) != 2 * size:
                    raise ValueError(name)
                return bytes.fromhex(value)
            except ValueError:
                raise InvalidAnchor(f"{name}: {size} bytes in hexadecimal expected") from None

        position = data.get("position")
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            raise InvalidAnchor("position: a positive integer expected")
        try:
            instant = datetime.fromisoformat(str(data.get("instant")))
        except ValueError:
            raise InvalidAnchor("instant: an ISO 8601 instant expected") from None
        if instant.tzinfo is None:
            raise InvalidAnchor("instant: an ISO 8601 instant with its offset expected")
        return cls(
            position,
            hex_field("hash", 32),
            instant,
            hex_field("public_key", 32),
            hex_field("signature", 64),
        )

    @classmethod
    def from_file(cls, path: Path) -> Anchor:
        """Read an anchor file (`npc admin anchor > FILE`)."""
        try:
            data = json.loads(_read_small(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidAnchor(f"{path}: not an anchor (JSON object expected)") from exc
        if not isinstance(data, dict):
            raise InvalidAnchor(f"{path}: not an anchor (JSON object expected)")
        return cls.from_json(data)


def _read_small(path: Path) -> bytes:
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidAnchor(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return data


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a signing key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Create a signing key at `path` (PKCS#8 PEM, mode 0600); never replaces an existing file."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read a signing key written by `generate_key` (or any unencrypted PKCS#8 Ed25519 PEM)."""
    key = serialization.load_pem_private_key(_read_small(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_or_generate_key(path: Path) -> Ed25519PrivateKey:
    """The key at `path`, created first if missing (embedded and demo setups)."""
    if not path.exists():
        log.info("generating the anchor signing key %s", path)
        try:
            return generate_key(path)
        except FileExistsError:
            pass  # another worker made it meanwhile
    return load_key(path)


async def latest_anchor(db: Database) -> Anchor | None:
    """The most recent anchor stored, or None before the first one."""
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT position, hash, anchored_at, public_key, signature FROM anchors"
            " ORDER BY anchored_at DESC, id DESC LIMIT 1"
        )
    if row is None:
        return None
    return Anchor(
        int(row["position"]),
        bytes(row["hash"]),
        row["anchored_at"],
        bytes(row["public_key"]),
        bytes(row["signature"]),
    )


class AnchorPublisher:
    """Signs and publishes the log's head every `interval` seconds when it moved."""

    def __init__(
        self, db: Database, clock: Clock, key: Ed25519PrivateKey, *, interval: float = 300.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.key = key
        self.interval = interval

    async def publish_once(self) -> Anchor | None:
        """Anchor the current head, unless nothing but anchors was logged since the last one or
        another process anchored less than half an interval ago; return the new anchor."""
        now = self.clock.now()
        async with self.db.transaction("anchor", now) as txn:
            conn = txn.conn
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _ANCHOR_LOCK):
                return None
            last = await conn.fetchrow(
                "SELECT position, anchored_at FROM anchors ORDER BY anchored_at DESC, id DESC"
                " LIMIT 1"
            )
            if last is not None and now - last["anchored_at"] < timedelta(
                seconds=self.interval / 2
            ):
                return None
            head = await conn.fetchrow("SELECT position, hash FROM event_head")
            assert head is not None
            position = int(head["position"])
            if position == 0:
                return None
            if last is not None and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM events WHERE position > $1 AND type <> $2)",
                last["position"],
                ANCHORED,
            ):
                return None
            anchor = Anchor.sign(self.key, position, bytes(head["hash"]), now)
            await conn.execute(
                "INSERT INTO anchors (position, hash, anchored_at, public_key, signature)"
                " VALUES ($1, $2, $3, $4, $5)",
                anchor.position,
                anchor.hash,
                anchor.instant,
                anchor.public_key,
                anchor.signature,
            )
            txn.emit(
                AUDIT_FLOW,
                ANCHORED,
                case_id=None,
                sender=CLEARINGHOUSE,
                payload=anchor.to_json(),
                broadcast=True,
            )
        ANCHORS_PUBLISHED.inc()
        return anchor

    async def run(self) -> None:
        """Background loop: anchor at once, then every `interval` seconds."""
        while True:
            await self.publish_once()  # a failure is the supervisor's to log and retry
            passed()
            await asyncio.sleep(self.interval)
