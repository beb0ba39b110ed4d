"""The portability process's deadlines and the compliance rules they enforce.

Sources: Peru's portability regulation, infraction table (articles 20-23) and the form's text on the
24-hour rule and the change window. Every instant is computed on the jurisdiction's calendar in
local time and returned in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
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

# The clearinghouse's own limit (003 is silent): a fixed request whose line is not installed within
# this many business days of its presentation is cancelled. The longest term art. 6 gives the
# recipient to tell the subscriber whether it has the technical facilities (infraction 4).
FIXED_INSTALLATION_BUSINESS_DAYS = 15

# Numbers named in an improper objection's evidence (the count says how many the request has).
EVIDENCE_NUMBERS = 10


class DeadlineKind(StrEnum):
    """Kinds of the portability flow's deadlines (stored as their values)."""

    CONSULTATION_ANSWER = "consultation.donor_answer"
    REQUEST_ANSWER = "request.donor_answer"
    DEBT_PROOF = "request.debt_proof"
    SCHEDULE = "request.schedule"
    EXECUTE = "request.execute"
    DONOR_DISABLE = "request.donor_disable"
    RECIPIENT_ENABLE = "request.recipient_enable"
    INSTALLATION = "request.installation"


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
    party="donor",
    description=f"Answer the prior consultation within {DONOR_ANSWER_MINUTES} minutes.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 20", infraction=18, severity=Severity.GRAVE
    ),
)
REQUEST_ANSWER = Rule(
    "request_donor_answer",
    party="donor",
    description=f"Answer the port request within {DONOR_ANSWER_MINUTES} minutes.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 22", infraction=21, severity=Severity.GRAVE
    ),
)
IMPROPER_OBJECTION = Rule(
    "improper_objection",
    party="donor",
    description=(
        "Do not object a port request improperly: a debt not yet due or paid when the request"
        " was presented, a debt on a prepaid line, a number or service the registry shows as"
        " the donor's."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 22", infraction=23, severity=Severity.MUY_GRAVE
    ),
)
MOBILE_SCHEDULE = Rule(
    "mobile_schedule",
    party="recipient",
    description="Mobile: schedule the port by 22:00 of the day the request is declared admissible.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 23", infraction=24, severity=Severity.LEVE
    ),
)
FIXED_SCHEDULE = Rule(
    "fixed_schedule",
    party="recipient",
    description="Fixed: schedule the port by 22:00 of the calendar day after the installation.",
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 23", infraction=25, severity=Severity.LEVE
    ),
)
DONOR_DISABLE = Rule(
    "donor_disable",
    party="donor",
    description=(
        "Disable the numbers in the donor's network at the scheduled time, inside the change"
        " window."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 23", infraction=27, severity=Severity.GRAVE
    ),
)
RECIPIENT_ENABLE = Rule(
    "recipient_enable",
    party="recipient",
    description=(
        "Enable the numbers at the scheduled time; the service may be interrupted at most 3 hours."
    ),
    source=Source.regulation(
        PORTABILITY_REGULATION, article="art. 23", infraction=28, severity=Severity.GRAVE
    ),
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


class ObjectionFinding(StrEnum):
    """Why the clearinghouse holds an objection improper (infraction 23), as the evidence names it."""

    DEBT_NOT_EXIGIBLE = "debt_not_exigible"
    DEBT_ON_PREPAID_LINE = "debt_on_prepaid_line"
    NUMBER_SERVED_BY_DONOR = "number_served_by_donor"
    SERVICE_TYPE_MATCHES = "service_type_matches"
    PAID_BEFORE_PRESENTATION = "paid_before_presentation"


def debt_not_exigible(exigible_from: datetime, received_at: datetime) -> bool:
    """The objected debt could not be claimed when the subscriber presented the request
    (003 art. 18 (vi): "a la fecha de presentación ... deuda exigible")."""
    return received_at < exigible_from


def debt_on_prepaid_line(modalities: Sequence[str]) -> bool:
    """Every number of the request is prepaid, which has no bill ("Prepago (sin recibo)"), so no
    debt "respecto al último recibo emitido" can be objected."""
    return bool(modalities) and all(m == Modality.PREPAID for m in modalities)


def ownership_contradicted(donor: str, serving: Sequence[str | None]) -> bool:
    """The registry shows the donor serving every number it says is not its own."""
    return bool(serving) and all(s == donor for s in serving)


def service_contradicted(service: str, services: Sequence[str | None]) -> bool:
    """The registry shows every number in a range of the service the request names."""
    return bool(services) and all(s == service for s in services)


def paid_before_presentation(paid_at: datetime, received_at: datetime) -> bool:
    """The proven payment of the objected debt is dated before the request's presentation: no
    debt was owed when the subscriber presented it."""
    return paid_at < received_at


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

    def debt_exigible_from(self, due_date: date) -> datetime:
        """A bill may be paid through its local due date; its debt is exigible from the next
        local midnight (the clearinghouse's reading: 003 does not say the hour)."""
        return self.calendar.at(due_date + timedelta(days=1), time(0, 0))

    def installation_limit(self, received_at: datetime) -> datetime:
        """The end (local midnight) of the configured business day
        (`FIXED_INSTALLATION_BUSINESS_DAYS` unless configured) after the request's presentation,
        by which a fixed line must be installed."""
        return self.calendar.end_of_business_days(
            received_at, self.settings.fixed_installation_business_days
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

    def execution_limit(self, received_at: datetime, number_count: int) -> datetime:
        """The latest instant a port may be scheduled for (later schedules are refused: FLEP).

        Standard requests: 24 hours from the subscriber's presentation of the request
        (`received_at`: "24 horas desde la presentación de esta solicitud", 003, Anexo 1), not
        from its registration at the clearinghouse, so a late registration (infraction 20) never
        lengthens the subscriber's wait. Presented on a Sunday, a holiday or the day before one,
        the 24 hours run from the first day that is none of these. The limit is the end of the
        last change window opening at or before that instant. Special clients (more than 10
        numbers): the end of the change window that opens after the configured number of
        business days.
        """
        local_day = self.calendar.local_date(received_at)
        if self.is_special_client(number_count):
            last_day = self.calendar.add_business_days(
                local_day, self.settings.special_client_business_days
            )
            return self.window_end_for(self.window_start_on(last_day + timedelta(days=1)))
        start = received_at
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

    def schedulable_until(self, schedule_deadline: datetime) -> datetime:
        """The end of the first change window that closes after `schedule_deadline`.

        Whatever the recipient may still schedule by its scheduling limit must be executable: at
        any instant before the limit this window still has instants to schedule, so an
        execution limit never earlier than its end never refuses (FLEP) a schedule the
        recipient was still in time to make.
        """
        first = self.calendar.local_date(schedule_deadline) - timedelta(days=1)
        for offset in range(3):
            closes = self.window_end_for(self.window_start_on(first + timedelta(days=offset)))
            if closes > schedule_deadline:
                return closes
        raise AssertionError("a change window opens every day")

    def scheduling_terms(
        self,
        service: Service,
        admissible_at: datetime,
        installation_date: date | None,
        registered_limit: datetime,
        number_count: int,
    ) -> SchedulingTerms | None:
        """The recipient's scheduling limit and the execution limit once a request is admissible;
        None for a fixed line not yet installed (no limit runs before the installation).

        Mobile: 22:00 of the day of admissibility (22:00 of the next day when declared admissible
        at or after 22:00, or when its debt objection was lifted then). Fixed: 22:00 of the day
        after installation, never before the mobile limit, and the 24 hours counted from that
        limit (the port "is subject to the prior installation"). The execution limit is the one
        the request carries since its registration (`registered_limit`, from the subscriber's
        presentation), extended only as far as `schedulable_until` requires: the two limits
        never contradict each other.
        """
        deadline = self.mobile_schedule_deadline(admissible_at)
        limit = registered_limit
        if service == Service.FIXED:
            if installation_date is None:
                return None
            deadline = max(deadline, self.fixed_schedule_deadline(installation_date))
            limit = max(limit, self.execution_limit(deadline, number_count))
        return SchedulingTerms(deadline, max(limit, self.schedulable_until(deadline)))

    def donor_disable_deadline(self, scheduled_at: datetime) -> datetime:
        """The donor disables the numbers at the scheduled instant (infraction 27): late once the
        configured tolerance has passed, and never later than the end of the change window."""
        due = scheduled_at + self.settings.donor_disable_tolerance
        return self._within_window(scheduled_at, due)

    def recipient_enable_deadline(self, scheduled_at: datetime) -> datetime:
        """The recipient enables the numbers within the maximum outage (3 hours, infraction 28),
        which never runs past the end of the change window ("entre las 0:00 am y 6:00 am")."""
        return self._within_window(scheduled_at, scheduled_at + self.settings.max_outage)

    def _within_window(self, scheduled_at: datetime, due: datetime) -> datetime:
        window = self.window_containing(scheduled_at)
        return min(due, window[1]) if window else due


@dataclass(frozen=True)
class SchedulingTerms:
    """An admissible request's two limits: schedule (PP) by `schedule_deadline`, for an instant
    no later than `execution_limit`."""

    schedule_deadline: datetime
    execution_limit: datetime
