"""The inoperability registry's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


class DeadlineKind(StrEnum):
    """Kinds of the inoperability registry's deadlines (stored as their values)."""

    REPORT = "report"
