"""The suspension flow's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


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
