"""The registry flow's deadline kinds (returns of numbers), declared once for the handler and the
manifest."""

from __future__ import annotations

from enum import StrEnum


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
