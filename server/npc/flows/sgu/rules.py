"""The user management system's rules, pure: states, deadline kinds, the regulation's terms and
limits (defined once here, referenced everywhere else), the formats of its codes and the
deadline arithmetic of outages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from npc.core.compliance import Rule, Source

FLOW = "sgu"


class DeadlineKind(StrEnum):
    """Kinds of the SGU's deadlines (stored as their values)."""

    ANSWER = "answer"
    CLAIM_CODE = "claim_code"
    CONFIRMATION = "confirmation"


class State(StrEnum):
    """States of an SGU problem (stored as their values)."""

    AWAITING_CONFIRMATION = "awaiting_confirmation"
    IN_TRAY = "in_tray"
    OVERDUE = "overdue"
    ANSWERED = "answered"
    CLOSED = "closed"
    ESCALATION_OPEN = "escalation_open"
    CLAIM_REQUESTED = "claim_requested"
    CLAIMED = "claimed"
    EXPIRED = "expired"


class Channel(StrEnum):
    """Where the subscriber registered the problem (stored as their values)."""

    WEB = "web"
    APP = "app"
    OFFICE = "office"


class DeadlineUnit(StrEnum):
    """How a subcategory counts its answer deadline (stored as their values)."""

    BUSINESS_DAYS = "business_days"
    HOURS = "hours"


# What the validation says when an enum is unspecified or unknown on the wire (operators match on
# these texts).
CHANNEL_REQUIRED = "required: CHANNEL_WEB, CHANNEL_APP or CHANNEL_OFFICE"
DEADLINE_UNIT_REQUIRED = "required: BUSINESS_DAYS or HOURS"
# A problem that may become a claim needs the address its claim code will necessarily go to.
CLAIM_EMAIL_REQUIRED = (
    "required for a claimable subcategory: the claim code goes to the subscriber by e-mail"
)

# States in which a problem waits for its operator.
TRAY_STATES = (State.IN_TRAY, State.OVERDUE, State.CLAIM_REQUESTED)
# A line has at most one problem of a subcategory under way in its operator's hands.
OPEN_STATES = (
    State.IN_TRAY,
    State.OVERDUE,
    State.ANSWERED,
    State.ESCALATION_OPEN,
    State.CLAIM_REQUESTED,
)
# Events that put a problem in its operator's tray, and the tray item's kind.
TRAY_EVENTS = {"sgu.problem.transferred": "transferred", "sgu.claim.requested": "claim_requested"}

# "Immediately" leaves the operator no time of its own; the grace covers the systems' round trip.
DEFAULT_CLAIM_CODE_GRACE = timedelta(hours=1)
# An address never confirmed must not hold a problem (and its token) open for ever.
CONFIRMATION_HOURS = 72
CONFIRMATION_WINDOW = timedelta(hours=CONFIRMATION_HOURS)
# A subcategory's deadlines: the answer in hours or business days, the claim in business days.
MAX_HOURS = 720
MAX_BUSINESS_DAYS = 30
# The subscriber's rating of an answer: 1 (worst) to 5 (best).
MIN_SCORE = 1
MAX_SCORE = 5
# An outage may be recorded up to a year late and a month ahead.
OUTAGE_PAST = timedelta(days=365)
OUTAGE_FUTURE = timedelta(days=30)
# A statistics report covers at most a leap year.
MAX_REPORT_PERIOD = timedelta(days=366)

# Lengths of the texts a problem carries, in characters.
NAME_LIMIT = 200
CATEGORY_NAME_LIMIT = 120
DESCRIPTION_LIMIT = 2000
ANSWER_LIMIT = 4000
OFFICE_NAME_LIMIT = 120
OFFICE_PLACE_LIMIT = 60
STAFF_LIMIT = 120
OUTAGE_REASON_LIMIT = 500

SUBCATEGORY = re.compile(r"(?a)^[A-Z]{2,8}-\d{2}$")
CATEGORY = re.compile(r"(?a)^[A-Z]{2,8}$")
OFFICE_CODE = re.compile(r"(?a)^[A-Z0-9-]{2,20}$")
UBIGEO = re.compile(r"(?a)^\d{6}$")
CLAIM_CODE_FORMAT = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")
TOKEN = re.compile(r"(?a)^[A-Za-z0-9_-]{16,100}$")
PROBLEM_CODE = re.compile(r"(?a)SG\d{10}")
PROBLEM_PREFIX = "SG"

# Seed 001: the SGU's technical instruction; it gives no infraction numbers or severities.
SGU_INSTRUCTION = (
    "Res. 00170-2020-CD/OSIPTEL; Instructivo Técnico del Sistema de Gestión de Usuarios"
)
ANSWER = Rule(
    "sgu_answer_in_time",
    party="operator",
    description="Record the answer or solution of a problem within the deadline of its"
    " subcategory.",
    source=Source.regulation(
        SGU_INSTRUCTION, article="procedimiento para el registro y atención del problema"
    ),
)
CLAIM_CODE = Rule(
    "sgu_claim_code_at_once",
    party="operator",
    description="Assign the claim code at once when a problem is escalated to a formal claim.",
    source=Source.regulation(
        SGU_INSTRUCTION,
        article="generación del reclamo: el código, de manera inmediata",
        measured="'de manera inmediata': assigned later than the claim-code grace"
        " (DEFAULT_CLAIM_CODE_GRACE, the clearinghouse's choice) after the escalation",
    ),
)


def extend_for_outages(
    start: datetime, base: datetime, outages: Iterable[tuple[datetime, datetime]]
) -> datetime:
    """The deadline `base` of a period that began at `start`, with the clock stopped during outages.

    Overlapping outages count once; an outage reached only because an earlier one pushed the
    deadline back counts too.
    """
    merged: list[list[datetime]] = []
    for begin, end in sorted(outages):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    deadline = base
    for begin, end in merged:
        if begin >= deadline:
            break
        if end <= start:
            continue
        deadline += end - max(begin, start)
    return deadline


def unanswered_in_time(state: str, answered_late: bool | None) -> bool:
    """The operator missed the answer deadline: still unanswered, or answered late."""
    return state == State.OVERDUE or (state == State.ANSWERED and bool(answered_late))


def escalable(state: str, claimable: bool, answered_late: bool | None) -> bool:
    """The subscriber may turn the problem into a claim now."""
    return claimable and (
        state == State.ESCALATION_OPEN or unanswered_in_time(state, answered_late)
    )
