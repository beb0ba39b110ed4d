"""The user management system's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


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
