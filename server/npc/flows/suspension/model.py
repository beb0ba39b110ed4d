"""The suspension flow's commands, as the handler receives them (field names as on the wire)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from npc.core.dates import Day
from npc.core.instants import Instant


@dataclass(frozen=True)
class Money:
    """An amount as written (``120.50``) and its ISO 4217 currency."""

    amount: str
    currency: str


@dataclass(frozen=True)
class SuspensionRequest:
    """The donor asks the recipient to suspend a number for an unpaid bill."""

    port_request_id: str
    number: str
    bill_number: str
    due_date: Day
    owed: Money


@dataclass(frozen=True)
class SuspensionRef:
    """A command or a read naming one suspension."""

    suspension_id: str


@dataclass(frozen=True)
class ReactivationRequest:
    """The donor received the payment (or a claim): `paid_at` None when not given."""

    suspension_id: str
    paid_at: Instant


@dataclass(frozen=True)
class NewSuspension:
    """A suspensions row as the request stores it."""

    id: str
    port_request_id: str
    number: str
    donor: str
    recipient: str
    bill_number: str
    due_date: date
    amount: str
    currency: str
    requested_at: datetime
    suspend_deadline: datetime
