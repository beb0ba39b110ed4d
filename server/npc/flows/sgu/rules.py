"""The user management system's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


class DeadlineKind(StrEnum):
    """Kinds of the SGU's deadlines (stored as their values)."""

    ANSWER = "answer"
    CLAIM_CODE = "claim_code"
    CONFIRMATION = "confirmation"
