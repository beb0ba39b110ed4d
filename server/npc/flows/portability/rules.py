"""The portability process's deadlines and the compliance rules they enforce.

Sources: Peru's portability regulation, infraction table (articles 20-23) and the form's text on the
24-hour rule and the change window. Every instant is computed on the jurisdiction's calendar in
local time and returned in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from npc.core.calendar import BusinessCalendar
from npc.core.compliance import PORTABILITY_REGULATION, Rule, Severity, Source
from npc.core.instants import ChangeWindow

if TYPE_CHECKING:
    # By type only: the settings' default donor term is read from this module.
    from npc.config import PortabilitySettings

FLOW = "portability"

# The donor's term to answer a prior consultation or a port request (art. 20 and 22, infractions
# 18 and 21); the settings' default, the rules' texts and the metrics' buckets refer to it.
DONOR_ANSWER_TERM = timedelta(minutes=5)
DONOR_ANSWER_MINUTES = int(DONOR_ANSWER_TERM.total_seconds()) // 60


class DeadlineKind(StrEnum):
    """Kinds of the portability flow's deadlines (stored as their values)."""

    CONSULTATION_ANSWER = "consultation.donor_answer"
    REQUEST_ANSWER = "request.donor_answer"
    DEBT_PROOF = "request.debt_proof"
    SCHEDULE = "request.schedule"
    EXECUTE = "request.execute"
    DONOR_DISABLE = "request.donor_disable"
    RECIPIENT_ENABLE = "request.recipient_enable"


class Service(StrEnum):
    """The service whose numbers are ported (stored as their values)."""

    MOBILE = "mobile"
    FIXED = "fixed"


class Modality(StrEnum):
    """A line's payment modality (Anexo 1: "Modalidad")."""

    PREPAID = "prepaid"
    POSTPAID = "postpaid"


class ObjectionReason(StrEnum):
    """The donor's coded reasons to object (stored as their values)."""

    SERVICE_SUSPENDED = "service_suspended"
    NUMBER_NOT_OWNED = "number_not_owned"
    WRONG_SERVICE_TYPE = "wrong_service_type"
    DOCUMENT_MISMATCH = "document_mismatch"
    WRONG_MODALITY = "wrong_modality"
    DEBT = "debt"
    CONTRACT_TERMINATED = "contract_terminated"
    JUDICIAL_SUSPENSION = "judicial_suspension"
    INSOLVENCY = "insolvency"
    MISUSE = "misuse"


# The ABDCP codes of the reasons that have one (the others are the regulation's later additions).
OBJECTION_CODES: dict[ObjectionReason, str] = {
    ObjectionReason.SERVICE_SUSPENDED: "REC01PRT01",
    ObjectionReason.NUMBER_NOT_OWNED: "REC01PRT05",
    ObjectionReason.WRONG_SERVICE_TYPE: "REC01PRT06",
    ObjectionReason.DOCUMENT_MISMATCH: "REC01PRT07",
    ObjectionReason.WRONG_MODALITY: "REC01PRT08",
    ObjectionReason.DEBT: "REC01PRT09",
}


class ExecutionStep(StrEnum):
    """The confirmations of an executed port: each party confirms its own step."""

    DONOR_DISABLED = "donor_disabled"
    RECIPIENT_ENABLED = "recipient_enabled"


class ConsultationState(StrEnum):
    """States of a prior consultation (stored as their values, shared with `State`)."""

    AWAITING_DONOR = "awaiting_donor"
    ADMISSIBLE = "admissible"
    REJECTED = "rejected"


class State(StrEnum):
    """States of a port request (and of a prior consultation: awaiting_donor, admissible, rejected),
    stored as their values."""

    AWAITING_DONOR = "awaiting_donor"
    OBJECTED_DEBT = "objected_debt"
    REJECTED = "rejected"
    ADMISSIBLE = "admissible"
    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


REGISTRATION = Rule(
    "registration",
    party="recipient",
    description="Register the port request in the clearinghouse immediately after receiving it.",
    source=Source.regulation(
        PORTABILITY_REGULATION,
        article="art. 21",
        infraction=20,
        severity=Severity.LEVE,
        measured="'en forma inmediata': registered later than the registration grace (a setting,"
        " the clearinghouse's choice) after the subscriber's presentation (received_at)",
    ),
)
CONSULTATION_ANSWER = Rule(
    "consultation_donor_answer",
    18,
    "art. 20",
    "grave",
    "donor",
    f"Answer the prior consultation within {DONOR_ANSWER_MINUTES} minutes.",
)
REQUEST_ANSWER = Rule(
    "request_donor_answer",
    21,
    "art. 22",
    "grave",
    "donor",
    f"Answer the port request within {DONOR_ANSWER_MINUTES} minutes.",
)
IMPROPER_OBJECTION = Rule(
    "improper_objection",
    23,
    "art. 22",
    "muy_grave",
    "donor",
    "Do not object a port request improperly (flagged for review: the debt was already paid).",
)
MOBILE_SCHEDULE = Rule(
    "mobile_schedule",
    24,
    "art. 23",
    "leve",
    "recipient",
    "Mobile: schedule the port by 22:00 of the day the request is declared admissible.",
)
FIXED_SCHEDULE = Rule(
    "fixed_schedule",
    25,
    "art. 23",
    "leve",
    "recipient",
    "Fixed: schedule the port by 22:00 of the calendar day after the installation.",
)
DONOR_DISABLE = Rule(
    "donor_disable",
    27,
    "art. 23",
    "grave",
    "donor",
    "Disable the numbers in the donor's network at the scheduled time, inside the change window.",
)
RECIPIENT_ENABLE = Rule(
    "recipient_enable",
    28,
    "art. 23",
    "grave",
    "recipient",
    "Enable the numbers at the scheduled time; the service may be interrupted at most 3 hours.",
)

RULES = {
    r.key: r
    for r in (
        REGISTRATION,
        CONSULTATION_ANSWER,
        REQUEST_ANSWER,
        IMPROPER_OBJECTION,
        MOBILE_SCHEDULE,
        FIXED_SCHEDULE,
        DONOR_DISABLE,
        RECIPIENT_ENABLE,
    )
}


@dataclass(frozen=True)
class Timeline:
    """Computes the process's instants for one jurisdiction and its settings."""

    calendar: BusinessCalendar
    settings: PortabilitySettings

    def donor_deadline(self, sent_at: datetime) -> datetime:
        """The donor's answer deadline: its term (`DONOR_ANSWER_TERM` unless configured) after
        the message was sent to it."""
        return sent_at + self.settings.donor_answer

    def is_special_client(self, number_count: int) -> bool:
        """More than 10 numbers: a special client, with longer timelines."""
        return number_count > self.settings.special_client_threshold

    def mobile_schedule_deadline(self, admissible_at: datetime) -> datetime:
        """22:00 local of the day the request is declared admissible.

        A request declared admissible at or after 22:00 could never comply, so its limit is
        22:00 of the next day.
        """
        local = self.calendar.local(admissible_at)
        limit = self.calendar.at(local.date(), self.settings.scheduling_limit)
        if admissible_at >= limit:
            limit = self.calendar.at(
                local.date() + timedelta(days=1), self.settings.scheduling_limit
            )
        return limit

    def fixed_schedule_deadline(self, installation_date: date) -> datetime:
        """22:00 local of the calendar day after the installation."""
        return self.calendar.at(
            installation_date + timedelta(days=1), self.settings.scheduling_limit
        )

    def is_exception_day(self, day: date) -> bool:
        """Days excluded from the 24-hour promise: Sundays, holidays, and the day before them."""

        def closed(d: date) -> bool:
            return d.weekday() == 6 or self.calendar.is_holiday(d)

        return closed(day) or closed(day + timedelta(days=1))

    @property
    def window(self) -> ChangeWindow:
        """The jurisdiction's change window (the core's: returns use it too)."""
        return ChangeWindow(self.calendar, self.settings)

    def window_start_on(self, day: date) -> datetime:
        """UTC instant at which the change window opens on local date `day`."""
        return self.window.start_on(day)

    def window_end_for(self, window_start: datetime) -> datetime:
        """UTC instant at which the window opened at `window_start` closes."""
        return self.window.end_for(window_start)

    def window_containing(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The change window (start, end) that contains `instant`, if any."""
        return self.window.containing(instant)

    def execution_limit(self, submitted_at: datetime, number_count: int) -> datetime:
        """The latest instant a port may be scheduled for (later schedules are refused: FLEP).

        Standard requests: 24 hours from submission, counted from the first day that is not a
        Sunday, a holiday or the day before one when submitted on such a day; the limit is the end
        of the last change window opening at or before that instant. Special clients (more than 10
        numbers): the end of the change window that opens after the configured number of business
        days.
        """
        local_day = self.calendar.local_date(submitted_at)
        if self.is_special_client(number_count):
            last_day = self.calendar.add_business_days(
                local_day, self.settings.special_client_business_days
            )
            return self.window_end_for(self.window_start_on(last_day + timedelta(days=1)))
        start = submitted_at
        if self.is_exception_day(local_day):
            day = local_day + timedelta(days=1)
            while self.is_exception_day(day):
                day += timedelta(days=1)
            start = self.calendar.at(day, time(0, 0))
        target = start + self.settings.standard_process
        target_day = self.calendar.local_date(target)
        for day in (target_day, target_day - timedelta(days=1)):
            opens = self.window_start_on(day)
            if opens <= target:
                return self.window_end_for(opens)
        raise AssertionError("a change window opens every day")

    def donor_disable_deadline(self, scheduled_at: datetime) -> datetime:
        """The donor must have disabled the numbers by the end of the change window."""
        window = self.window_containing(scheduled_at)
        return window[1] if window else scheduled_at + self.settings.max_outage

    def recipient_enable_deadline(self, scheduled_at: datetime) -> datetime:
        """The recipient must have enabled the numbers within the maximum outage (3 hours)."""
        return scheduled_at + self.settings.max_outage
