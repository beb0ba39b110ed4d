"""Bounds checked before any work: the size of each message by method, the length of every text
and the count of every repeated field, and how many expensive calls an operator runs at once.

grpc's own `grpc.max_receive_message_length` is one number for the whole server, so it is the
largest upload chunk; each method's own limit is checked here on the raw bytes, before they are
parsed. A command or query is a form and a handful of numbers: 256 KiB is 20 times the largest
legitimate one (10,000 numbers as single blocks is about 150 KB). Daily reports are uploads.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from npc.core.errors import FieldViolation, InvalidArgument, Reason, ResourceExhausted

log = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * KIB
# Every command and query.
DEFAULT_MESSAGE_BYTES = 256 * KIB
# Uploads: the unary daily report whole, the streamed one per chunk (its total is bounded by
# `MAX_UPLOAD_BYTES`). Must not exceed the server's grpc.max_receive_message_length.
MESSAGE_BYTES: dict[str, int] = {
    "/npc.v1.CancellationsService/SubmitDailyReport": 8 * MIB,
    "/npc.v1.CancellationsService/StreamDailyReport": 4 * MIB,
}
# A streamed upload in total: 200,000 records of a daily report take about 40 MB.
MAX_UPLOAD_BYTES = 64 * MIB

# The longest text any field accepts (the longest the flows' validators allow is 4,000
# characters), and the most items of a repeated field unless listed in `MAX_ITEMS`.
MAX_TEXT = 4096
DEFAULT_ITEMS = 10_000
MAX_ITEMS: dict[str, int] = {
    "npc.v1.SubmitDailyReportRequest.records": 200_000,
    "npc.v1.DailyReportChunk.records": 200_000,
}
# Past this many, more violations would only repeat the same mistake.
MAX_REPORTED = 10


def max_message_bytes(method_path: str) -> int:
    """The largest serialized request (or upload chunk) `method_path` accepts."""
    return MESSAGE_BYTES.get(method_path, DEFAULT_MESSAGE_BYTES)


# Below this size a message cannot hold a text longer than MAX_TEXT nor more items than any limit
# (every item takes at least a byte), so it is not walked: the common case costs one C call.
_SMALL = min(MAX_TEXT, DEFAULT_ITEMS, *MAX_ITEMS.values())
_TEXT = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


def _violations(message: Message, path: str) -> Iterator[FieldViolation]:
    if message.ByteSize() <= _SMALL:
        return
    for fd, value in message.ListFields():
        name = f"{path}{fd.name}"
        if fd.is_repeated:
            limit = MAX_ITEMS.get(fd.full_name, DEFAULT_ITEMS)
            if len(value) > limit:
                yield FieldViolation(name, f"at most {limit} items")
            elif fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
                for index, item in enumerate(value):
                    yield from _violations(item, f"{name}[{index}].")
            elif fd.type in _TEXT:
                for index, item in enumerate(value):
                    if len(item) > MAX_TEXT:
                        yield FieldViolation(f"{name}[{index}]", f"at most {MAX_TEXT} characters")
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            yield from _violations(value, f"{name}.")
        elif fd.type in _TEXT and len(value) > MAX_TEXT:
            yield FieldViolation(name, f"at most {MAX_TEXT} characters")


def check_bounds(message: Message, path: str = "") -> None:
    """Raise InvalidArgument when a text or a repeated field of `message` is over its bound.

    Counts are read before items are visited and lengths before texts are read, so the check
    costs at most one pass over a message already bounded in bytes.
    """
    found: list[FieldViolation] = []
    for violation in _violations(message, path):
        found.append(violation)
        if len(found) >= MAX_REPORTED:
            break
    if found:
        raise InvalidArgument(found)


class Oversized:
    """A request refused before parsing: it stands in for the message the servicer never sees."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit


class Undecodable:
    """Bytes that are not a message of the method's request type."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class ExpensiveCalls:
    """How many streams and uploads each operator has open; over `limit`, RESOURCE_EXHAUSTED.

    One operator's uploads or subscriptions cannot take the memory and the database connections
    every other operator needs. limit 0: no limit.
    """

    limit: int
    _open: dict[str, int] = field(default_factory=dict)

    def enter(self, operator: str) -> None:
        """Count one more expensive call of `operator`, or raise ResourceExhausted."""
        current = self._open.get(operator, 0)
        if self.limit and current >= self.limit:
            raise ResourceExhausted(
                f"{operator} already has {current} streams or uploads open (at most"
                f" {self.limit}); retry when one ends",
                retry_after=1.0,
                reason=Reason.TOO_MANY_STREAMS,
            )
        self._open[operator] = current + 1

    def leave(self, operator: str) -> None:
        """One expensive call of `operator` ended."""
        left = self._open.get(operator, 0) - 1
        if left > 0:
            self._open[operator] = left
        else:
            self._open.pop(operator, None)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None
    return trim if name else None


_TRIM = _malloc_trim()


@dataclass
class Reclaimer:
    """Gives memory back after calls that brought large requests: a full collection (the
    collector runs rarely in a server, see `npc serve`) and, with glibc, a trim of the heaps, whose
    freed megabytes otherwise stay in the process. At most once per `interval` seconds, and once
    more after the last of a burst."""

    interval: float = 1.0
    threshold: int = 1 * MIB
    _last: float = float("-inf")
    _pending: asyncio.TimerHandle | None = None

    def after(self, request_bytes: int) -> None:
        """Reclaim now, or once the interval has passed, since a request of `request_bytes`
        ended."""
        if request_bytes < self.threshold or self._pending is not None:
            return
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._reclaim()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._reclaim)

    def _reclaim(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        gc.collect()
        if _TRIM is not None:
            _TRIM(0)


@dataclass
class PeerLog:
    """Logs a peer's protocol mistakes at most once per `interval` seconds per peer."""

    interval: float = 60.0
    max_peers: int = 10_000
    _last: dict[str, float] = field(default_factory=dict)

    def warning(self, peer: str, message: str, *args: object) -> None:
        """Log `message` unless `peer` (its address; the port changes with each connection) was
        logged within the interval."""
        peer = peer.rpartition(":")[0] or peer
        now = time.monotonic()
        if now - self._last.get(peer, float("-inf")) < self.interval:
            return
        if len(self._last) >= self.max_peers:
            self._last.clear()
        self._last[peer] = now
        log.warning(message, *args)
