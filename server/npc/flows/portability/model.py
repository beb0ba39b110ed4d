"""The portability flow's commands and records, as the handler receives and returns them.

Field names are those of the protobuf requests, so every field path a violation names stays what
an operator's integration reads today. Enum fields hold the domain's member, or None when the wire
value was unspecified or unknown (the handler's checks say which are required).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from asyncpg import Record

from npc.core.dates import Day
from npc.core.instants import Instant, Unreadable
from npc.flows.portability.rules import (
    ExecutionStep,
    Modality,
    ObjectionReason,
    Service,
    State,
)


@dataclass(frozen=True)
class IdentityDocument:
    """An identity document; `type` is the core's document number (`npc.core.validation`)."""

    type: int
    number: str


@dataclass(frozen=True)
class Subscriber:
    """The holder of the numbers, as written on the request form (Anexo 1)."""

    name: str
    legal_representative: str
    document: IdentityDocument
    email: str
    contact_phone: str


@dataclass(frozen=True)
class NumberBlock:
    """One number, or the inclusive range first..last when `last` is set."""

    first: str
    last: str
    modality: Modality | None


@dataclass(frozen=True)
class Money:
    """An amount as written (``120.50``) in an ISO 4217 currency."""

    amount: str
    currency: str


@dataclass(frozen=True)
class Debt:
    """The debt a donor objects: what is owed, the last bill's due date and number."""

    owed: Money
    due_date: Day
    bill_number: str


@dataclass(frozen=True)
class Objection:
    """The donor's objection: a coded reason, free text, and for a debt the debt."""

    reason: ObjectionReason | None
    detail: str
    debt: Debt


@dataclass(frozen=True)
class SubmitPriorConsultation:
    """CP: the recipient asks the donor whether a port would be admissible."""

    donor: str
    service: Service | None
    document: IdentityDocument
    numbers: tuple[NumberBlock, ...]


@dataclass(frozen=True)
class AnswerPriorConsultation:
    """CPAC / CPOCC: the donor's answer; `objection` is None when the request had none."""

    consultation_id: str
    accept: bool
    objection: Objection | None


@dataclass(frozen=True)
class SubmitPortRequest:
    """SP: the subscriber's request form, registered by the recipient."""

    donor: str
    service: Service | None
    subscriber: Subscriber
    numbers: tuple[NumberBlock, ...]
    received_at: Instant
    form_number: str
    prior_consultation_id: str
    installation_date: Day


@dataclass(frozen=True)
class AnswerPortRequest:
    """SAC / OCC: the donor accepts or objects; `objection` is None when the request had none."""

    port_request_id: str
    accept: bool
    objection: Objection | None


@dataclass(frozen=True)
class SubmitDebtPaymentProof:
    """APD: the recipient's proof that the objected debt was paid."""

    port_request_id: str
    receipt_number: str
    paid_at: Instant


@dataclass(frozen=True)
class ReportInstallation:
    """Fixed service: the local date the line was installed."""

    port_request_id: str
    installation_date: Day


@dataclass(frozen=True)
class SchedulePort:
    """PP: the instant the recipient chose for the port."""

    port_request_id: str
    scheduled_at: Instant


@dataclass(frozen=True)
class ConfirmPortExecution:
    """A party confirms its step of an executed port; `done_at` None: at the call."""

    port_request_id: str
    step: ExecutionStep | None
    done_at: Instant


@dataclass(frozen=True)
class GetPriorConsultation:
    """A read of one prior consultation."""

    consultation_id: str


@dataclass(frozen=True)
class GetPortRequest:
    """A read of one port request."""

    port_request_id: str


@dataclass(frozen=True)
class ListPortRequests:
    """A page of port requests: `state` None lists every state (UNREADABLE: an unknown one)."""

    state: State | Unreadable | None
    page_size: int
    page_token: str


@dataclass(frozen=True)
class NewConsultation:
    """A prior_consultations row as the submission writes it (JSON columns as dicts)."""

    id: str
    recipient: str
    donor: str
    service: str
    document: dict[str, str]
    numbers: list[dict[str, str]]
    number_count: int
    state: str
    submitted_at: datetime
    donor_deadline: datetime


@dataclass(frozen=True)
class NewPortRequest:
    """A port_requests row as the submission writes it; its case number comes from the database."""

    recipient: str
    donor: str
    service: str
    subscriber: dict[str, object]
    numbers: list[dict[str, str]]
    number_count: int
    special_client: bool
    state: str
    form_number: str
    prior_consultation_id: str | None
    received_at: datetime
    submitted_at: datetime
    donor_deadline: datetime
    installation_date: date | None
    execution_limit: datetime


@dataclass(frozen=True)
class PublicStatus:
    """What the subscriber of a port request may see of it (the public status page).

    ``recipient`` and ``donor`` are the operators' names; ``numbers`` holds at most the first
    numbers (``number_count`` says how many there are); ``window_end`` closes the change window of
    ``scheduled_at``; ``objection_reason`` is the donor's reason name (``debt``...) if it objected.
    """

    id: str
    state: str
    service: str
    recipient: str
    donor: str
    numbers: tuple[str, ...]
    number_count: int
    submitted_at: datetime
    execution_limit: datetime | None
    scheduled_at: datetime | None
    window_end: datetime | None
    executed_at: datetime | None
    closed_at: datetime | None
    objection_reason: str | None
    # Whether the request ever had a scheduling limit (a cancelled one was then not scheduled).
    schedulable: bool = True
    # Where the clearinghouse's own notices go, masked ("" without a contact on the form).
    notified_to: str = ""


@dataclass(frozen=True)
class PortRequestPage:
    """One page of port requests, newest first; `next_page_token` empty on the last page."""

    port_requests: tuple[Record, ...]
    next_page_token: str
