"""The PQR flow's commands and answers as the handler sees them, free of the wire.

Each command carries the fields of its request under the same names, so every field violation
names the same path as the request's field. An enum field is None when the request left it
unspecified or sent a number the domain does not know; the handler's checks say it is required.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from asyncpg import Record

from npc.core.instants import Instant
from npc.flows.pqr.rules import Channel, DocumentType, Kind, Outcome, Subject


@dataclass(frozen=True)
class UserData:
    """The user who presents the PQR: name, identification and notification address."""

    name: str
    document_type: DocumentType | None
    document_number: str
    email: str
    address: str
    phone: str


@dataclass(frozen=True)
class AssignCunRange:
    """The SIC assigns the CUNs `first`..`last` to `provider`."""

    provider: str
    first: str
    last: str


@dataclass(frozen=True)
class FilePqr:
    """A provider files the petition or complaint a user presented."""

    kind: Kind | None
    channel: Channel | None
    subject: Subject | None
    user: UserData
    facts: str
    # When the user presented it; None (unset) when presented at the filing itself.
    presented_at: Instant = None
    # Presented by word of mouth: no notification address is needed (art. 2.1.5.3).
    verbal: bool = False


@dataclass(frozen=True)
class ExtendPqrForEvidence:
    """The provider extends the answer term to practise evidence."""

    cun: str
    reason: str


@dataclass(frozen=True)
class AnswerPqr:
    """The provider's decision on the petition, complaint or reconsideration."""

    cun: str
    outcome: Outcome | None
    summary: str
    notified_at: Instant


@dataclass(frozen=True)
class ConfirmSilenceEffects:
    """The provider carried out the effects of the positive silence."""

    cun: str
    description: str


@dataclass(frozen=True)
class FileReconsideration:
    """The user disagrees with the answer."""

    cun: str
    appeal_in_subsidy: bool
    facts: str
    # When the user presented it; None (unset) when presented at the filing itself.
    presented_at: Instant = None


@dataclass(frozen=True)
class RecordTransferToSic:
    """The provider sent the file to the SIC."""

    cun: str


@dataclass(frozen=True)
class DecideAppeal:
    """The SIC decided the appeal."""

    cun: str
    outcome: Outcome | None
    summary: str


@dataclass(frozen=True)
class GetPqr:
    """A PQR by its CUN."""

    cun: str


@dataclass(frozen=True)
class ReceiveQuejaSms:
    """An SMS reached the short code on the provider's network."""

    msisdn: str
    short_code: str
    text: str


@dataclass(frozen=True)
class AcknowledgeQuejaSms:
    """The provider sent the acknowledgement SMS."""

    sms_request_id: str


@dataclass(frozen=True)
class CallComplaint:
    """The complaint an answered call registers."""

    subject: Subject | None
    user: UserData
    facts: str


# What an answered call without a complaint is checked as: every required field is missing.
NO_COMPLAINT = CallComplaint(None, UserData("", None, "", "", "", ""), "")


@dataclass(frozen=True)
class RecordCallAttempt:
    """A call to the user of an SMS QUEJA request; `complaint` is None when the request had none."""

    sms_request_id: str
    answered: bool
    complaint: CallComplaint | None


@dataclass(frozen=True)
class GetSmsRequest:
    """An SMS QUEJA request by its id."""

    sms_request_id: str


@dataclass(frozen=True)
class GetMonthlyIndicators:
    """The indicators of a Bogotá month (``YYYY-MM``), of one provider or ("") of all."""

    month: str
    provider: str


@dataclass(frozen=True)
class PqrCase:
    """A pqrs row with the regulated texts its user reads (they need the Bogotá calendar)."""

    row: Record
    status_sentence: str
    transfer_notice: str


@dataclass(frozen=True)
class SmsCase:
    """A pqr_sms_requests row with its provider's registered name."""

    row: Record
    provider_name: str


class ProviderIndicators(TypedDict):
    """One provider's month of indicators (art. 2.1.5.15.3, 2.1.5.15.4)."""

    provider: str
    month: str
    sms_requests: int
    sms_acknowledged_in_time: int
    sms_acknowledged_in_time_pct: float
    sms_contacted_in_time: int
    sms_contacted_in_time_pct: float
    sms_closed_unreachable: int
    pqrs_filed: int
    answers: int
    answers_in_time: int
    answers_in_time_pct: float
    silences_applied: int
    silence_effects_late: int
    transfers_to_sic: int
    transfers_to_sic_late: int
    frequent_complaints: list[tuple[str, int]]


class PublicStatus(TypedDict):
    """What anyone holding a CUN may read (art. 2.1.5.14): no personal data."""

    cun: str
    provider: str
    provider_name: str
    kind: str
    state: str
    filed_at: datetime
    due_at: datetime | None
    sentence: str
    transfer_notice: str
