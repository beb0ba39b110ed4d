"""The suspension flow's states, deadline kinds and terms (article 13), each defined once.

The handler, the deadlines' notes and the obligations' texts all read the terms from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from npc.core.calendar import BusinessCalendar
from npc.core.compliance import PORTABILITY_REGULATION, Rule, Severity, Source

FLOW = "suspension"

# Art. 13: the donor may ask a suspension only once "treinta (30) días calendario a partir de la
# fecha de deshabilitación" have passed: calendar days of Lima, the disabling date the first.
WAIT_AFTER_DISABLING_DAYS = 30
# Art. 13 (iii), infraction 13: the recipient suspends within 2 business days of the request.
SUSPEND_WITHIN_BUSINESS_DAYS = 2
# Art. 13 (iv), infraction 14: the donor asks reactivation within 1 business day of the payment
# (or the claim).
ASK_REACTIVATION_WITHIN_BUSINESS_DAYS = 1
# Art. 13 (v), infraction 15: the recipient reactivates within 24 hours of the donor's request.
REACTIVATE_WITHIN = timedelta(hours=24)
# Art. 13 (and Annex 1, "suspensión por 30 días"): a suspension lasts at most 30 calendar days of
# Lima, the day it began the first; the number must be back in service by the end of the 30th.
MAX_SUSPENSION_DAYS = 30

# Not regulatory: how far from now a payment instant is believable.
PAID_AT_PAST = timedelta(days=365)
CLOCK_SKEW = timedelta(minutes=5)

SUSPEND = Rule(
    "recipient_suspend",
    party="recipient",
    description=(
        f"Suspend the number within {SUSPEND_WITHIN_BUSINESS_DAYS} business days of the donor's"
        " request."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 13 (iii)", infraction=13, severity=Severity.LEVE
    ),
)
ASK_REACTIVATION = Rule(
    "donor_request_reactivation",
    party="donor",
    description=(
        f"Ask reactivation within {ASK_REACTIVATION_WITHIN_BUSINESS_DAYS} business day of receiving"
        " the payment or claim."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 13 (iv)", infraction=14, severity=Severity.LEVE
    ),
)
REACTIVATE = Rule(
    "recipient_reactivate",
    party="recipient",
    description=(
        f"Reactivate the number within {REACTIVATE_WITHIN // timedelta(hours=1)} hours of the"
        " donor's request."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 13 (v)", infraction=15, severity=Severity.LEVE
    ),
)

# The notes of the deadlines, as stored with them.
SUSPEND_NOTE = (
    f"recipient suspends within {SUSPEND_WITHIN_BUSINESS_DAYS} business days"
    " (art. 13 (iii), infraction 13)"
)
MAX_DURATION_NOTE = f"a suspension lasts at most {MAX_SUSPENSION_DAYS} calendar days"
REACTIVATE_NOTE = (
    f"recipient reactivates within {REACTIVATE_WITHIN // timedelta(hours=1)} hours"
    " (art. 13 (v), infraction 15)"
)


def suspension_allowed_from(calendar: BusinessCalendar, disabled_at: datetime) -> datetime:
    """The first instant the donor may ask a suspension: local midnight after the 30th calendar
    day counted from the disabling date (art. 13 (i))."""
    return calendar.end_of_calendar_days(disabled_at, WAIT_AFTER_DISABLING_DAYS)


def suspension_ends_at(calendar: BusinessCalendar, suspended_at: datetime) -> datetime:
    """When a suspension reaches its maximum: the end (local midnight) of its 30th calendar day,
    the day it began the first, so that it never lasts longer than 30 days."""
    return calendar.end_of_calendar_days(suspended_at, MAX_SUSPENSION_DAYS)


def reactivation_due_from(ends_at: datetime) -> datetime:
    """When the clearinghouse asks the recipient to reactivate a suspension reaching its
    maximum: the recipient's 24 hours (art. 13 (v)) end exactly when the 30 days do, instead of
    starting then and stretching the suspension into a 31st day."""
    return ends_at - REACTIVATE_WITHIN


class DeadlineKind(StrEnum):
    """Kinds of the suspension flow's deadlines (stored as their values)."""

    SUSPEND = "suspend"
    MAX_DURATION = "max_duration"
    REACTIVATE = "reactivate"


class State(StrEnum):
    """States of a suspension (stored as their values)."""

    REQUESTED = "requested"
    SUSPENDED = "suspended"
    REACTIVATION_DUE = "reactivation_due"
    REACTIVATED = "reactivated"
