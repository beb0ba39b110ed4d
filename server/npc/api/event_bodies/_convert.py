"""What every flow's converters share: stored JSON values as protobuf fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from npc.core.validation import DOCUMENT_TYPES
from npc.v1 import common_pb2

Payload = Mapping[str, Any]
# A converter: the stored payload of one event type as its body message.
Converter = Callable[[Payload], Message]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOCUMENT_NUMBERS = {name: number for number, name in DOCUMENT_TYPES.items()}


def instant(value: str | None) -> timestamp_pb2.Timestamp | None:
    """An ISO 8601 instant of the payload as a Timestamp; None (left unset) when absent."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Timestamp.FromDatetime is the cost of a body; the arithmetic gives the same fields.
    since = moment - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000
    )


def enum(wire: Any, value: str | None) -> Any:
    """A stored lower-case value as the number of its wire enum member (`PREFIX_VALUE`), typed
    Any so it fits the field of whichever generated enum `wire` is.

    Every flow's wire enums name their members as the upper-cased stored value; a value the
    enum does not know reads as the zero value instead of breaking the stream.
    """
    if not value:
        return 0
    zero = wire.Name(0)
    prefix = zero.removesuffix("UNSPECIFIED")
    found = wire.DESCRIPTOR.values_by_name.get(prefix + value.upper())
    return found.number if found is not None else 0


def document(data: Mapping[str, str] | None) -> common_pb2.IdentityDocument | None:
    """A stored identity document ({"type": "dni", "number": ...})."""
    if not data:
        return None
    return identity(data.get("type"), data.get("number"))


def identity(kind: str | None, number: str | None) -> common_pb2.IdentityDocument:
    """An identity document from its stored type name ("dni", "ce", ...) and number."""
    return common_pb2.IdentityDocument(
        type=common_pb2.DocumentType.ValueType(_DOCUMENT_NUMBERS.get(kind or "", 0)),
        number=number or "",
    )


def blocks(data: list[Mapping[str, str]] | None) -> list[common_pb2.NumberBlock]:
    """Stored number blocks ({"first", "last", "modality"})."""
    return [
        common_pb2.NumberBlock(
            first=b["first"],
            last=b.get("last") or "",
            modality=enum(common_pb2.Modality, b.get("modality")),
        )
        for b in data or ()
    ]


def text(value: Any) -> str:
    """A fact as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
