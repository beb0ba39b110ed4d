"""The cancellations flow's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


class DeadlineKind(StrEnum):
    """Kinds of the cancellations flow's deadlines (stored as their values)."""

    DAILY_REPORT = "daily_report"
    SCHEDULED = "scheduled"
