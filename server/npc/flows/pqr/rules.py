"""The PQR flow's deadline kinds, declared once for the handler and the manifest."""

from __future__ import annotations

from enum import StrEnum


class DeadlineKind(StrEnum):
    """Kinds of the PQR flow's deadlines (stored as their values)."""

    ANSWER = "answer"
    SILENCE_EFFECTS = "silence_effects"
    RECONSIDERATION_WINDOW = "reconsideration_window"
    SEND_TO_SIC = "send_to_sic"
    SMS_ACKNOWLEDGE = "sms_acknowledge"
    SMS_CALL = "sms_call"
