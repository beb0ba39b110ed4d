"""The registry flow's rules, pure: its states and kinds, the shape of a number it answers about,
and the terms of the returns of numbers (article 30), each defined once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from npc.config import PortabilitySettings
from npc.core.compliance import PORTABILITY_REGULATION, Rule, Severity, Source
from npc.core.errors import FieldViolation, InvalidArgument


class DeadlineKind(StrEnum):
    """Kinds of the returns' deadlines (stored as their values)."""

    ANSWER = "return.answer"
    EXECUTE = "return.execute"
    RECIPIENT_DISABLE = "return.recipient_disable"
    DONOR_ENABLE = "return.donor_enable"


class State(StrEnum):
    """States of a number return (stored as their values)."""

    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    DENIED = "denied"
    EXECUTED = "executed"
    COMPLETED = "completed"


class Service(StrEnum):
    """The service of a range of the numbering plan (stored as its value)."""

    MOBILE = "mobile"
    FIXED = "fixed"


_SERVICES = {member.value: member for member in Service}


def service_of(stored: str | None) -> Service | None:
    """The service of a range as stored; None for a number outside the plan."""
    return _SERVICES.get(stored) if stored is not None else None


# Answer columns name a number's service by its index here (0: outside the plan), as they name
# operators: mapping ten thousand small ints costs a fraction of hashing as many enum members.
SERVICE_SLOTS: tuple[Service | None, ...] = (None, *Service)
SERVICE_SLOT: dict[Service | None, int] = {s: i for i, s in enumerate(SERVICE_SLOTS)}


class DenialReason(StrEnum):
    """Why a recipient denies a return (stored as its value). Art. 30 lists none: a recipient
    bound by a final resolution has little to contest, and these are what it can."""

    RESOLUTION_NOT_FINAL = "resolution_not_final"
    RESOLUTION_UNKNOWN = "resolution_unknown"
    OTHER_NUMBERS = "other_numbers"
    OTHER = "other"


class ReturnStep(StrEnum):
    """What a party confirms once the numbers of a return went back."""

    RECIPIENT_DISABLED = "recipient_disabled"
    DONOR_ENABLED = "donor_enabled"


# ------------------------------------------------------------------------- numbers and lookups

# Numbers per lookup, and per disconnection report.
MAX_BATCH = 10_000
# Ported numbers per snapshot chunk: the default, and the most a caller may ask for.
SNAPSHOT_CHUNK = 5000
MAX_SNAPSHOT_CHUNK = 50_000

# Any national number without a leading zero: a number of another shape is simply not in the plan,
# and one odd number must not fail a whole batch. Without leading zeros, numbers of different
# lengths never compare equal, so ranges can be matched numerically.
_NUMBER = re.compile(r"(?a)[1-9]\d{0,14}")
_BATCH = re.compile(r"(?a)(?:[1-9]\d{0,14},)*[1-9]\d{0,14}")


def check_numbers(numbers: Sequence[str], field: str) -> None:
    """Refuse an empty or oversized batch, or numbers of no plausible shape (the first 20)."""
    if not numbers:
        raise InvalidArgument(FieldViolation(field, "at least one number"))
    if len(numbers) > MAX_BATCH:
        raise InvalidArgument(FieldViolation(field, f"at most {MAX_BATCH} numbers per call"))
    # The cheap test first (one C-level regex pass): this runs for every batch.
    joined = ",".join(numbers)
    if joined.count(",") == len(numbers) - 1 and _BATCH.fullmatch(joined):
        return
    bad = [
        FieldViolation(f"{field}[{i}]", "digits only, no leading zero, at most 15")
        for i, n in enumerate(numbers)
        if not _NUMBER.fullmatch(n)
    ]
    if bad:
        raise InvalidArgument(bad[:20])


# ----------------------------------------------------------------------- returns (article 30)

# The recipient gives the disabling instant within 5 business days of the notification of the
# resolution that upheld the lack-of-consent claim (infraction 30).
ANSWER_BUSINESS_DAYS = 5
# The donor enables the numbers again with at most this long without service (infraction 33). The
# clearinghouse's term is the portability settings' `max_outage` (ports share it, infraction 28);
# this is its regulatory value, which the texts below state.
REGULATORY_MAX_OUTAGE = PortabilitySettings.max_outage
_OUTAGE_HOURS = REGULATORY_MAX_OUTAGE // timedelta(hours=1)

# Longest resolution reference and denial reason accepted, in characters.
RESOLUTION_LIMIT = 100
DENIAL_REASON_LIMIT = 500


def answered_late(answered_at: datetime, answer_deadline: datetime) -> bool:
    """True when the recipient's answer comes at or after the end of its 5 business days (the
    instant its deadline fires)."""
    return answered_at >= answer_deadline


def disabling_limit(answer_deadline: datetime, next_window_end: datetime) -> datetime:
    """The instant the disabling must come before: the end of the recipient's term, or, when no
    change window opens before it any more (an answer on the last day after the night's window,
    or a late one, infraction 30 then recorded), the end of the next change window, so that the
    numbers still go back as soon as they can."""
    return max(answer_deadline, next_window_end)


RETURN_ANSWER = Rule(
    "return_schedule",
    party="recipient",
    description=(
        f"Give the date and time of disabling within {ANSWER_BUSINESS_DAYS} business days of the "
        "notification of the resolution that upheld the lack-of-consent claim."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 30", infraction=30, severity=Severity.LEVE
    ),
)
RETURN_DISABLE = Rule(
    "return_recipient_disable",
    party="recipient",
    description="Disable the numbers at the date and time given to the clearinghouse.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 30", infraction=32, severity=Severity.GRAVE
    ),
)
RETURN_ENABLE = Rule(
    "return_donor_enable",
    party="donor",
    description=f"Enable the numbers again with at most {_OUTAGE_HOURS} hours without service.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 30", infraction=33, severity=Severity.GRAVE
    ),
)

# What each deadline of a return is for, as stored with it.
ANSWER_NOTE = (
    f"recipient gives the disabling date within {ANSWER_BUSINESS_DAYS} business days"
    " (art. 30, infraction 30)"
)
EXECUTE_NOTE = "numbers go back at the given instant"
DISABLE_NOTE = "recipient disables at the given time (art. 30, infraction 32)"
ENABLE_NOTE = f"donor enables within {_OUTAGE_HOURS} hours (art. 30, infraction 33)"
