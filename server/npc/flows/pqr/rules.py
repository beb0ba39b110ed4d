"""The PQR regime's vocabulary and numbers (CRC, section 2.1.5), each defined once: its states,
kinds, channels, subjects and outcomes, its terms in business days, the obligations whose breach
is recorded, and the two answerable stages. Pure: no I/O, no wire types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from npc.core.compliance import Rule, Source

FLOW = "pqr"
JURISDICTION = "CO"

# Terms, in Colombian business days (art. 2.1.5.2, 2.1.5.9.1, 2.1.5.9.3 c).
ANSWER_DAYS = 15
EXTENSION_DAYS = 15
RECONSIDERATION_DAYS = 10
TRANSFER_DAYS = 5
SIC_DAYS = 15
SILENCE_EFFECTS_WITHIN = timedelta(hours=72)
# The presentation instant a provider states for a PQR or its reconsideration is accepted this far
# from the clearinghouse's clock: the clearinghouse's choice, as for a port request's received_at
# (the seed asks for the CUN by the next business day, art. 2.1.5.7), and clocks a little ahead.
PRESENTED_AT_PAST = timedelta(days=30)
PRESENTED_AT_FUTURE = timedelta(minutes=5)
# SMS QUEJA to the short code (art. 2.1.5.1, parágrafo 1).
SHORT_CODE = "85432"
ACKNOWLEDGE_WITHIN = timedelta(minutes=5)
ATTEMPT_SPACING = timedelta(minutes=30)
UNANSWERED_ATTEMPTS_TO_CLOSE = 3


class DeadlineKind(StrEnum):
    """Kinds of the PQR flow's deadlines (stored as their values)."""

    ANSWER = "answer"
    SILENCE_EFFECTS = "silence_effects"
    RECONSIDERATION_WINDOW = "reconsideration_window"
    SEND_TO_SIC = "send_to_sic"
    SMS_ACKNOWLEDGE = "sms_acknowledge"
    SMS_CALL = "sms_call"


class State(StrEnum):
    """Where a PQR stands (stored as the value)."""

    ANALYSIS = "analysis"
    EVIDENCE = "evidence"
    ANSWERED = "answered"
    RECONSIDERATION = "reconsideration"
    RECONSIDERATION_EVIDENCE = "reconsideration_evidence"
    SILENCE_APPLIED = "silence_applied"
    TRANSFER_DUE = "transfer_due"
    APPEAL = "appeal"
    CLOSED = "closed"


class SmsState(StrEnum):
    """Where an SMS QUEJA request stands (stored as the value)."""

    RECEIVED = "received"
    REGISTERED = "registered"
    CLOSED_UNREACHABLE = "closed_unreachable"


class Kind(StrEnum):
    """Petición or queja."""

    PETITION = "petition"
    COMPLAINT = "complaint"


class Channel(StrEnum):
    """Where the user presented the PQR."""

    OFFICE = "office"
    PHONE_LINE = "phone_line"
    WEBSITE = "website"
    SOCIAL_NETWORK = "social_network"
    SMS_85432 = "sms_85432"


# A PQR on the phone line is spoken; through the website or a social network it is written (the
# provider's electronic form, art. 2.1.5.7); at an office it may be either.
ALWAYS_VERBAL = frozenset({Channel.PHONE_LINE})
NEVER_VERBAL = frozenset({Channel.WEBSITE, Channel.SOCIAL_NETWORK})


class Subject(StrEnum):
    """What the PQR is about."""

    BILLING = "billing"
    SUSPENSION = "suspension"
    TERMINATION = "termination"
    CUT = "cut"
    CONTRACT_REFUSAL = "contract_refusal"
    SERVICE_QUALITY = "service_quality"
    OTHER = "other"


class Outcome(StrEnum):
    """A decision on a PQR, its reconsideration or its appeal."""

    FAVORABLE = "favorable"
    PARTIALLY_FAVORABLE = "partially_favorable"
    UNFAVORABLE = "unfavorable"


class DocumentType(StrEnum):
    """A Colombian identification document."""

    CC = "cc"
    CE = "ce"
    NIT = "nit"
    PASSPORT = "passport"


# Art. 2.1.5.9: the subjects whose decisions admit appeal to the SIC in subsidy.
APPEALABLE = frozenset(
    {
        Subject.BILLING,
        Subject.SUSPENSION,
        Subject.TERMINATION,
        Subject.CUT,
        Subject.CONTRACT_REFUSAL,
    }
)

# Seed 004: Colombia's user-protection regime; it sets terms but no infraction table or severities.
CRC_REGIME = (
    "CRC, régimen de protección de los derechos de los usuarios de servicios de comunicaciones"
    " (título II; Res. CRC 3066 de 2011)"
)
ANSWER = Rule(
    "provider_answer_pqr",
    party="provider",
    description=(
        f"Answer the petition or complaint within {ANSWER_DAYS} business days from the day after "
        f"filing ({ANSWER_DAYS + EXTENSION_DAYS} with the evidence extension); otherwise positive "
        "administrative silence applies."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.2"),
)
ANSWER_RECONSIDERATION = Rule(
    "provider_answer_reconsideration",
    party="provider",
    description=(
        f"Answer the reconsideration within {ANSWER_DAYS} business days from the day after filing "
        f"({ANSWER_DAYS + EXTENSION_DAYS} with the evidence extension); otherwise positive "
        "administrative silence applies."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.2"),
)
SILENCE_EFFECTS = Rule(
    "provider_silence_effects",
    party="provider",
    description=(
        "Carry out the effects of the positive administrative silence within "
        f"{SILENCE_EFFECTS_WITHIN // timedelta(hours=1)} hours."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.2"),
)
TRANSFER = Rule(
    "provider_transfer_to_sic",
    party="provider",
    description=(
        f"Send the complete file to the SIC within {TRANSFER_DAYS} business days of notifying the "
        "decision on the reconsideration."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.9.3 c"),
)
SMS_ACKNOWLEDGE = Rule(
    "provider_acknowledge_queja_sms",
    party="provider",
    description=(
        f"Answer an SMS QUEJA to {SHORT_CODE} with the acknowledgement SMS within "
        f"{ACKNOWLEDGE_WITHIN // timedelta(minutes=1)} minutes."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.1 par. 1 a"),
)
SMS_CALL = Rule(
    "provider_call_queja_sms",
    party="provider",
    description=(
        f"Call the user by the end of the calendar day after the SMS QUEJA to {SHORT_CODE}."
    ),
    source=Source.regulation(CRC_REGIME, article="art. 2.1.5.1 par. 1 b"),
)


@dataclass(frozen=True)
class Stage:
    """The columns of one answerable stage: the petition or complaint, or its reconsideration."""

    name: str
    filed: str
    due: str
    extended: str
    reason: str
    answered: str
    outcome: str
    summary: str
    notified: str
    analysis: State
    evidence: State
    rule: Rule


INITIAL = Stage(
    "initial",
    "filed_at",
    "answer_due",
    "extended_at",
    "extension_reason",
    "answered_at",
    "outcome",
    "answer_summary",
    "notified_at",
    State.ANALYSIS,
    State.EVIDENCE,
    ANSWER,
)
RECONSIDERATION = Stage(
    "reconsideration",
    "rec_filed_at",
    "rec_answer_due",
    "rec_extended_at",
    "rec_extension_reason",
    "rec_answered_at",
    "rec_outcome",
    "rec_summary",
    "rec_notified_at",
    State.RECONSIDERATION,
    State.RECONSIDERATION_EVIDENCE,
    ANSWER_RECONSIDERATION,
)
# The states in which the provider owes an answer, and to which stage.
STAGE_OF_STATE: dict[str, Stage] = {
    State.ANALYSIS: INITIAL,
    State.EVIDENCE: INITIAL,
    State.RECONSIDERATION: RECONSIDERATION,
    State.RECONSIDERATION_EVIDENCE: RECONSIDERATION,
}


def spelled(number: int) -> str:
    """A term as the regulated Spanish texts write it: "diez (10)"."""
    return f"{_WORDS[number]} ({number})"


_WORDS = {3: "tres", 5: "cinco", 10: "diez", 15: "quince"}
