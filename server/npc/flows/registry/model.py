"""The registry flow's commands and answers, free of the wire.

Field names are those of the protobuf requests (registry.proto), so every field violation keeps
its path. An enum the caller left unspecified, or sent with an unknown number, is None; an instant
left unset is None and one no datetime holds is `UNREADABLE` (see `npc.core.instants`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from npc.core.instants import Instant
from npc.flows.registry.rules import DenialReason, ReturnStep, Service, State

# --------------------------------------------------------------------------------- lookups


@dataclass(frozen=True)
class LookupNumber:
    """LookupNumber: who serves one number."""

    number: str


@dataclass(frozen=True)
class LookupNumbers:
    """LookupNumbers: who serves each of a batch, as rows or as columns."""

    numbers: tuple[str, ...]
    columnar: bool = False


@dataclass(frozen=True)
class StreamSnapshot:
    """StreamSnapshot: the registry at one log position, `chunk_size` ported numbers a chunk
    (0: the default)."""

    chunk_size: int = 0


@dataclass(frozen=True)
class Routing:
    """Who serves one number and how to route calls to it.

    `ported_since_ms` is when it was ported (Unix ms, 0 when not ported); `ported_at` is that
    instant exactly, when PostgreSQL answered (the hot data keeps milliseconds).
    """

    number: str
    in_plan: bool
    serving_operator: str = ""
    routing_code: str = ""
    ported: bool = False
    ported_since_ms: int = 0
    range_holder: str = ""
    service: Service | None = None
    ported_at: datetime | None = None


@dataclass(frozen=True)
class RoutingColumns:
    """The answers of a batch as parallel columns (see `RoutingColumns` in registry.proto):
    `serving` and `range_holder` are 1 + an index into `operators` (0: not in the plan),
    `service` an index into `rules.SERVICE_SLOTS`."""

    operators: list[str]
    routing_codes: list[str]
    serving: list[int]
    range_holder: list[int]
    ported_since_ms: list[int]
    service: list[int]


@dataclass(frozen=True)
class Lookup:
    """The answer to LookupNumbers: `rows`, or `columns` when the caller asked for columns."""

    rows: list[Routing] | None = None
    columns: RoutingColumns | None = None


class PlanRange(NamedTuple):
    """A range of the numbering plan in a snapshot (`first`/`last` as the plan stores them)."""

    first: int
    last: int
    operator: str
    routing_code: str
    service: Service | None


# A number served away from its range holder, in a snapshot: (number, serving operator, its
# routing code, ported since). A plain tuple: a snapshot builds millions of them.
PortedNumber = tuple[str, str, str, datetime | None]


@dataclass
class SnapshotChunk:
    """One chunk of a snapshot: the plan rides in the first, `last` marks the final one."""

    position: int
    ranges: list[PlanRange]
    ported: list[PortedNumber]
    last: bool = False


# --------------------------------------------------------------------------------- returns


@dataclass(frozen=True)
class ReportDisconnection:
    """ReportDisconnection: the caller's disconnected ported numbers go home."""

    request_id: str
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class RequestReturn:
    """SR: the donor of a port found to lack consent asks its numbers back (empty: all)."""

    request_id: str
    port_request_id: str
    numbers: tuple[str, ...]
    resolution: str


@dataclass(frozen=True)
class AnswerReturn:
    """AR (`accept`, with the disabling instant) or DR (with a typed reason, `denial`)."""

    request_id: str
    return_id: str
    accept: bool
    disable_at: Instant
    denial_reason: str
    denial: DenialReason | None = None


@dataclass(frozen=True)
class ConfirmReturnExecution:
    """A party confirms its step of an executed return."""

    request_id: str
    return_id: str
    step: ReturnStep | None


@dataclass(frozen=True)
class NewReturn:
    """A return as first stored (columns of number_returns)."""

    id: str
    port_request_id: str
    donor: str
    recipient: str
    numbers: list[str]
    state: State
    resolution: str
    notified_at: datetime
    answer_deadline: datetime


@dataclass(frozen=True)
class GetReturn:
    """GetReturn: one return, for its parties and the regulator."""

    return_id: str
