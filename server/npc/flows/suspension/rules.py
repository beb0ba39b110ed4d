"""The suspension flow's states, deadline kinds and terms (article 13), each defined once.

The handler, the deadlines' notes and the obligations' texts all read the terms from here.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from npc.core.compliance import Rule

FLOW = "suspension"

# Art. 13: the donor may ask a suspension only 30 calendar days after the number was disabled
# in its network.
WAIT_AFTER_DISABLING = timedelta(days=30)
# Art. 13 (iii), infraction 13: the recipient suspends within 2 business days of the request.
SUSPEND_WITHIN_BUSINESS_DAYS = 2
# Art. 13 (iv), infraction 14: the donor asks reactivation within 1 business day of the payment
# (or the claim).
ASK_REACTIVATION_WITHIN_BUSINESS_DAYS = 1
# Art. 13 (v), infraction 15: the recipient reactivates within 24 hours of the donor's request.
REACTIVATE_WITHIN = timedelta(hours=24)
# Art. 13: a suspension lasts at most 30 calendar days; then reactivation is due.
MAX_SUSPENSION = timedelta(days=30)

# Not regulatory: how far from now a payment instant is believable.
PAID_AT_PAST = timedelta(days=365)
CLOCK_SKEW = timedelta(minutes=5)

SUSPEND = Rule(
    "recipient_suspend",
    13,
    "art. 13 (iii)",
    "leve",
    "recipient",
    f"Suspend the number within {SUSPEND_WITHIN_BUSINESS_DAYS} business days of the donor's"
    " request.",
)
ASK_REACTIVATION = Rule(
    "donor_request_reactivation",
    14,
    "art. 13 (iv)",
    "leve",
    "donor",
    f"Ask reactivation within {ASK_REACTIVATION_WITHIN_BUSINESS_DAYS} business day of receiving"
    " the payment or claim.",
)
REACTIVATE = Rule(
    "recipient_reactivate",
    15,
    "art. 13 (v)",
    "leve",
    "recipient",
    f"Reactivate the number within {REACTIVATE_WITHIN // timedelta(hours=1)} hours of the donor's"
    " request.",
)

# The notes of the deadlines, as stored with them.
SUSPEND_NOTE = (
    f"recipient suspends within {SUSPEND_WITHIN_BUSINESS_DAYS} business days"
    " (art. 13 (iii), infraction 13)"
)
MAX_DURATION_NOTE = f"a suspension lasts at most {MAX_SUSPENSION.days} calendar days"
REACTIVATE_NOTE = (
    f"recipient reactivates within {REACTIVATE_WITHIN // timedelta(hours=1)} hours"
    " (art. 13 (v), infraction 15)"
)


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
