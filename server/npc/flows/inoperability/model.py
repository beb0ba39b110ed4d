"""The inoperability registry's commands, as the handler receives them (field names as on the
wire), and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asyncpg import Record

from npc.core.instants import Instant
from npc.flows.inoperability.rules import (
    ClosingReason,
    CriticalTransaction,
    PointType,
    RequestType,
    Scenario,
)


@dataclass(frozen=True)
class AttentionPointRegistration:
    """An operator registers (or updates) one of its attention points; `type` None: unspecified."""

    code: str
    name: str
    type: PointType | None
    address: str
    location: str


@dataclass(frozen=True)
class InoperabilityRegistration:
    """An event opens at an attention point for one request type."""

    attention_point_code: str
    request_type: RequestType | None
    scenario: Scenario | None
    started_at: Instant
    detail: str


@dataclass(frozen=True)
class InoperabilityClosing:
    """An open event closes with its end and a closing reason."""

    number: int
    ended_at: Instant
    closing_reason: ClosingReason | None
    closing_note: str


@dataclass(frozen=True)
class CriticalTransactionRecord:
    """A critical transaction served during an open event."""

    number: int
    kind: CriticalTransaction | None
    reference: str


@dataclass(frozen=True)
class ReportSubmission:
    """The numbers of the closed events a consolidated report covers."""

    numbers: tuple[int, ...]


@dataclass(frozen=True)
class EventLookup:
    """An event of an operator (empty: the caller's own)."""

    operator: str
    number: int


@dataclass(frozen=True)
class NewEvent:
    """An inoperability_events row as the registration stores it."""

    id: str
    operator_id: str
    number: int
    attention_point_code: str
    request_type: str
    scenario: str
    detail: str
    started_at: datetime
    registered_at: datetime


@dataclass(frozen=True)
class SubmittedReport:
    """A consolidated report and its events (rows with their critical transaction counts)."""

    id: str
    operator: str
    submitted_at: datetime
    events: tuple[Record, ...]


@dataclass(frozen=True)
class ReportRow:
    """One event as the regulator's web report shows it."""

    operator: str
    number: int
    attention_point_code: str
    attention_point_name: str
    attention_point_type: str
    request_type: str
    scenario: str
    detail: str
    started_at: datetime
    ended_at: datetime | None
    duration_minutes: int | None
    over_one_hour: bool
    closing_reason: str | None
    report_due_at: datetime | None
    reported_at: datetime | None
    critical_block_stolen_or_lost: int
    critical_claim_filing: int
