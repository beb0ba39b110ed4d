"""The cancellations tracking's vocabulary, terms and pure judgements, each defined once.

"Sistema de Seguimiento de Bajas y Migraciones": operators with more than 500,000 subscribers
report every cancellation and plan migration request every day, 7 days a week; a request with a
scheduled date is executed on it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum

from npc.core.compliance import Rule, Source

FLOW = "cancellations"

# Operators over this many subscribers report daily (registered with `npc admin`).
REPORTING_THRESHOLD = 500_000

# Not regulatory: bounds of what a report may say, checked before it costs a query.
# A report may describe requests presented long ago (a migration scheduled months ahead).
OLDEST_REQUEST = timedelta(days=3 * 365)
CLOCK_SKEW = timedelta(minutes=5)
MAX_PERIOD_DAYS = 366
MAX_EXECUTION_REASON = 500
MAX_TARGET_PLAN = 200
# Enough violations to fix a systematic mistake; the rest would only repeat it.
MAX_REPORTED_VIOLATIONS = 100

REQUEST_CODE = re.compile(r"(?a)^[A-Za-z0-9._/-]{1,40}$")
SERVICE_NUMBER = re.compile(r"(?a)^[A-Za-z0-9-]{1,30}$")
# What the subscriber's public lookup accepts before it queries anything.
LOOKUP_DOCUMENT = re.compile(r"[A-Za-z0-9-]{4,20}")
LOOKUP_OPERATOR = re.compile(r"(?a)[a-z][a-z0-9_-]{1,31}")

# Seed 000: OSIPTEL's proposed rule, presented at a workshop; it sets no hour, term or sanction.
TRACKING_PROPOSAL = (
    "OSIPTEL, Sistema de Seguimiento de Bajas y Migraciones (propuesta normativa, taller del"
    " 22.06.21)"
)
DAILY_REPORT = Rule(
    "daily_report_missing",
    party="reporting operator",
    description="Report every day, 7 days a week, every cancellation and plan migration request"
    " of the day.",
    source=Source.clearinghouse(
        "the proposal has operators report daily, 7 days a week, without an hour: the report of"
        " day D is due on D+1 at NPC_DAILY_REPORT_DUE (23:59 by default), the clearinghouse's"
        " choice; no infraction or severity is given",
        basis=TRACKING_PROPOSAL,
    ),
)
SCHEDULED = Rule(
    "scheduled_date_not_executed",
    party="reporting operator",
    description="Execute the cancellation or plan migration on its scheduled date.",
    source=Source.clearinghouse(
        "the proposal has the regulator follow each request's execution against its scheduled"
        " date, without a term: the clearinghouse records a scheduled date that passed without"
        " execution; no infraction or severity is given",
        basis=TRACKING_PROPOSAL,
    ),
)
# The notes of the deadlines, as stored with them.
DAILY_REPORT_NOTE = "daily cancellations and plan migrations report, 7 days a week"
SCHEDULED_NOTE = "execute the cancellation or migration on its scheduled date"


class DeadlineKind(StrEnum):
    """Kinds of the cancellations flow's deadlines (stored as their values)."""

    DAILY_REPORT = "daily_report"
    SCHEDULED = "scheduled"


class RequestKind(StrEnum):
    """What the subscriber asked (stored as their values)."""

    CANCELLATION = "cancellation"
    MIGRATION = "migration"


class TrackedService(StrEnum):
    """The services whose requests are tracked (stored as their values)."""

    FIXED = "fixed"
    MOBILE = "mobile"
    INTERNET = "internet"
    PAY_TV = "pay_tv"


class AttentionChannel(StrEnum):
    """Where the subscriber presented the request (stored as their values)."""

    STORE = "store"
    PHONE = "phone"
    WEB = "web"
    MOBILE_APP = "mobile_app"
    EMAIL = "email"
    OTHER = "other"


class ServiceStatus(StrEnum):
    """The status of the subscriber's service (stored as their values)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    MIGRATED = "migrated"


class RequestState(StrEnum):
    """States of a tracked request (stored as their values)."""

    PENDING = "pending"
    EXECUTED = "executed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class DocumentType(StrEnum):
    """The subscriber's identity document (stored as their values)."""

    DNI = "dni"
    CARNET_EXTRANJERIA = "carnet_extranjeria"
    RUC = "ruc"
    OTHER = "other"


# Expected values, as the violations name them.
EXPECTED_KIND = "CANCELLATION or PLAN_MIGRATION"
EXPECTED_SERVICE = "FIXED_TELEPHONY, MOBILE_TELEPHONY, INTERNET or PAY_TV"
EXPECTED_CHANNEL = "the attention channel"
EXPECTED_SERVICE_STATUS = "ACTIVE, SUSPENDED, CANCELLED or MIGRATED"
EXPECTED_STATE = "PENDING, EXECUTED, REJECTED or WITHDRAWN"


def day_case(operator: str, report_date: date) -> str:
    """The case id of one operator's report date (its deadline and its compliance record)."""
    return f"{operator}/{report_date.isoformat()}"


def needs_deadline(state: str, executed_at: datetime | None, deadline: datetime | None) -> bool:
    """Whether the scheduled-date deadline must (still) judge this request: pending, or executed
    at or after the end of its scheduled date."""
    if deadline is None:
        return False
    if state == RequestState.PENDING:
        return True
    return state == RequestState.EXECUTED and executed_at is not None and executed_at >= deadline
