"""The user management system's commands and records, free of protobuf.

Commands carry the field names of their wire requests, so every field path a refusal names stays
the one an operator's integration knows. Enum fields hold the domain member or None (unspecified
or unknown on the wire); instants are `npc.core.instants.Instant`: a datetime, None when unset, or
`UNREADABLE` when set to something no datetime holds (the validation says so, as it always did).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from npc.core.instants import Instant
from npc.flows.sgu.rules import Channel, DeadlineUnit


@dataclass(frozen=True)
class IdentityDocument:
    """An identity document; `type` is the core's document number (npc.core.validation)."""

    type: int = 0
    number: str = ""


@dataclass(frozen=True)
class Subscriber:
    """The subscriber block of the registration form."""

    name: str = ""
    legal_representative: str = ""
    document: IdentityDocument = IdentityDocument()
    email: str = ""
    contact_phone: str = ""


@dataclass(frozen=True)
class Office:
    """The regulator's orientation office where a problem was registered."""

    code: str = ""
    name: str = ""
    department: str = ""
    province: str = ""
    district: str = ""
    ubigeo: str = ""


@dataclass(frozen=True)
class RegisterProblem:
    """A subscriber's problem, as the regulator's web, app or office registers it."""

    channel: Channel | None
    subscriber: Subscriber
    number: str
    subcategory: str
    description: str
    office: Office | None  # None: not given on the wire
    registered_by: str


@dataclass(frozen=True)
class ConfirmEmail:
    """The code of the confirmation e-mail."""

    token: str


@dataclass(frozen=True)
class AnswerProblem:
    """The operator's answer or solution."""

    problem_id: str
    answer: str
    solved: bool


@dataclass(frozen=True)
class RateAnswer:
    """The subscriber's rating of the operator's answer."""

    problem_id: str
    document: IdentityDocument
    satisfied: bool
    score: int


@dataclass(frozen=True)
class EscalateToClaim:
    """The subscriber turns a problem into a formal claim."""

    problem_id: str
    document: IdentityDocument


@dataclass(frozen=True)
class AssignClaimCode:
    """The operator's claim code."""

    problem_id: str
    claim_code: str


@dataclass(frozen=True)
class GetProblem:
    """Which problem to read."""

    problem_id: str


@dataclass(frozen=True)
class Subcategory:
    """A catalogue entry: a subcategory of problems and its deadlines."""

    code: str
    name: str
    category: str
    category_name: str
    service: str
    deadline_unit: DeadlineUnit | None
    deadline_amount: int
    claimable: bool
    claim_business_days: int
    active: bool


@dataclass(frozen=True)
class UpsertSubcategory:
    """A subcategory to add or change."""

    subcategory: Subcategory


@dataclass(frozen=True)
class RecordOutage:
    """An outage of the SGU (no operator) or of an operator's system."""

    operator: str
    starts_at: Instant
    ends_at: Instant
    reason: str


@dataclass(frozen=True)
class Outage:
    """A recorded outage and how many running deadlines it moved."""

    id: int
    operator: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    deadlines_moved: int


@dataclass(frozen=True)
class GetReport:
    """The period of a statistics report (`from_` is the wire's `from`, a Python keyword)."""

    from_: Instant
    to: Instant


@dataclass(frozen=True)
class ProblemCount:
    """How many problems a subcategory had."""

    subcategory: str
    name: str
    problems: int


@dataclass(frozen=True)
class ResolutionTime:
    """Time from the operator's tray to its answer, per subcategory."""

    subcategory: str
    answered: int
    average_hours: float
    max_hours: float


@dataclass(frozen=True)
class OperatorStats:
    """Problems of one operator and how it answered them."""

    operator: str
    problems: int
    answered_in_time: int
    answered_late: int
    unanswered_overdue: int
    claims: int


@dataclass(frozen=True)
class Satisfaction:
    """The subscribers' rating of one operator's answers."""

    operator: str
    rated: int
    satisfied: int
    average_score: float


@dataclass(frozen=True)
class Report:
    """Statistics of the problems registered in a period."""

    most_frequent: list[ProblemCount]
    resolution_times: list[ResolutionTime]
    operators: list[OperatorStats]
    satisfaction: list[Satisfaction]
