"""The inoperability registry's vocabulary, terms and pure judgements (seed 002, Peru).

Every term is defined here once; the handler, the deadlines' notes and the obligation's text read
it from here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from npc.core.compliance import Rule, Source

FLOW = "inoperability"

# Seed 002: the consolidated report, sent to the operator's regulatory department
# ("regulatorio"), is "remitido como máximo a los 3 días hábiles posteriores al evento" (Peruvian
# business days). The term is the operator's own procedure, not the regulator's: missing it is a
# compliance record of that procedure, never an infraction of the regulator's table.
REPORT_WITHIN_BUSINESS_DAYS = 3
# Seed 002: "Informar si el rango es mayor a 1 hora": events over one hour are highlighted.
HIGHLIGHT_OVER = timedelta(hours=1)
# Registration may regularise an event noted on the manual form during the outage ("Contingencia").
LATE_REGISTRATION = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)
# Bounds of the inputs, before they cost a query.
MAX_REPORT_EVENTS = 500
MAX_DETAIL = 500
MAX_CLOSING_NOTE = 500
MAX_POINT_NAME = 120
MAX_ADDRESS = 200
MAX_LOCATION = 120

POINT_CODE = re.compile(r"(?a)^[A-Za-z0-9_-]{1,20}$")
REFERENCE = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")

INOPERABILITY_PROCEDURE = (
    "Inoperatividad de Aplicativos de Venta y Postventa (procedimiento interno del operador,"
    " 08/03/2023)"
)
REPORT = Rule(
    "report_inoperability",
    party="operator",
    description="Send the report of each inoperability event to the operator's regulatory"
    f" department at most {REPORT_WITHIN_BUSINESS_DAYS} business days after it ended (the"
    " operator's own procedure).",
    source=Source.operator_procedure(
        INOPERABILITY_PROCEDURE,
        article="Reporte de Eventos de Inoperatividad de los Sistemas de Atención",
    ),
)
# The note of the report deadline, as stored with it.
REPORT_NOTE = (
    f"report the event within {REPORT_WITHIN_BUSINESS_DAYS} business days after it (seed 002)"
)


class DeadlineKind(StrEnum):
    """Kinds of the inoperability registry's deadlines (stored as their values)."""

    REPORT = "report"


class PointType(StrEnum):
    """Kinds of attention points (stored as their values)."""

    STORE = "store"
    DEALER = "dealer"
    CALL_CENTRE = "call_centre"


class RequestType(StrEnum):
    """The regulated requests an inoperability prevents registering (stored as their values)."""

    CLAIMS = "claims"
    ACTIVATIONS = "activations"
    CANCELLATIONS = "cancellations"
    INQUIRIES = "inquiries"


class Scenario(StrEnum):
    """Why the applications are down (stored as their values)."""

    MASS_FAILURE = "mass_failure"
    UNFORESEEN_EVENT = "unforeseen_event"
    ERROR_OR_TEST = "error_or_test"


class ClosingReason(StrEnum):
    """Why an event ended (stored as their values)."""

    CONNECTIVITY = "connectivity"
    INTERMITTENCY = "intermittency"
    MAINTENANCE = "maintenance"
    MASS_APPLICATION_FAILURE = "mass_application_failure"
    POINT_INFRASTRUCTURE = "point_infrastructure"
    NO_POWER = "no_power"
    USER_ERROR = "user_error"


class CriticalTransaction(StrEnum):
    """Transactions served at the point during the event (stored as their values)."""

    BLOCK_STOLEN_OR_LOST = "block_stolen_or_lost"
    CLAIM_FILING = "claim_filing"


# "Validar que los motivos de Ocurrencia de cierre sea acorde al tipo de Escenario". Any event found
# to be an error or a test is closed as "Error de Usuario", whatever its scenario.
REASONS_OF_SCENARIO: dict[str, set[str]] = {
    Scenario.MASS_FAILURE: {
        ClosingReason.CONNECTIVITY,
        ClosingReason.INTERMITTENCY,
        ClosingReason.MAINTENANCE,
        ClosingReason.MASS_APPLICATION_FAILURE,
        ClosingReason.USER_ERROR,
    },
    Scenario.UNFORESEEN_EVENT: {
        ClosingReason.POINT_INFRASTRUCTURE,
        ClosingReason.NO_POWER,
        ClosingReason.USER_ERROR,
    },
    Scenario.ERROR_OR_TEST: {ClosingReason.USER_ERROR},
}


def event_id(operator: str, number: int) -> str:
    """The case id of an operator's event: ``claro-000012``."""
    return f"{operator}-{number:06d}"


def reportable(scenario: str, closing_reason: str | None) -> bool:
    """False for error/test records: opened as such, or closed as a user error."""
    return scenario != Scenario.ERROR_OR_TEST and closing_reason != ClosingReason.USER_ERROR


def is_reportable(row: Any) -> bool:
    """`reportable` of an event row."""
    return reportable(row["scenario"], row["closing_reason"])


def duration(row: Any) -> timedelta | None:
    """How long a closed event lasted."""
    if row["ended_at"] is None:
        return None
    ended: datetime = row["ended_at"]
    started: datetime = row["started_at"]
    return ended - started


def over_one_hour(row: Any) -> bool:
    """Closed and lasted more than one hour ("Informar si el rango es mayor a 1 hora")."""
    lasted = duration(row)
    return lasted is not None and lasted > HIGHLIGHT_OVER
