"""Input checks of the portability commands (ABDCP: integrity failures, NI). Each failure names the
field path, so an operator's integration sees exactly what to fix; nothing is stored. The checks
every flow shares (documents, subscribers, case numbers, instants) are in `npc.core.validation`
and `npc.core.instants`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from npc.core.dates import check_date
from npc.core.instants import check_instant, within
from npc.core.validation import (
    AMOUNT,
    CURRENCY,
    FIXED_NUMBER,
    MOBILE_NUMBER,
    RECEIPT,
    Violations,
    check_case_id,
    check_operator,
    check_subscriber,
    printable,
)
from npc.flows.portability.model import (
    ConfirmPortExecution,
    NumberBlock,
    Objection,
    SubmitPortRequest,
)
from npc.flows.portability.rules import ExecutionStep, Modality, ObjectionReason, Service

SERVICE_REQUIRED = "required: SERVICE_TYPE_MOBILE or SERVICE_TYPE_FIXED"
MODALITY_REQUIRED = "required: MODALITY_PREPAID or MODALITY_POSTPAID"
STEP_REQUIRED = "required: EXECUTION_STEP_DONOR_DISABLED or EXECUTION_STEP_RECIPIENT_ENABLED"

# Violations collected from the blocks of one request: enough to fix a systematic mistake.
MAX_BLOCK_VIOLATIONS = 100
# Free texts of the forms, in characters.
MAX_FORM_NUMBER = 40
MAX_OBJECTION_DETAIL = 500
# The instants the parties state are accepted this far from the clearinghouse's clock: forms
# signed up to a month ago, payments up to a year ago, confirmations of the last week, and clocks
# a little ahead of ours.
RECEIVED_AT_PAST = timedelta(days=30)
RECEIVED_AT_FUTURE = timedelta(minutes=5)
PAID_AT_PAST = timedelta(days=365)
PAID_AT_FUTURE = timedelta(minutes=5)
DONE_AT_PAST = timedelta(days=7)
DONE_AT_FUTURE = timedelta(minutes=1)


def check_service(v: Violations, field: str, value: Service | None) -> Service | None:
    """The service type, required."""
    if value is None:
        v.add(field, SERVICE_REQUIRED)
    return value


@dataclass(frozen=True)
class NumberEntry:
    """One number of a request, with its modality."""

    number: str
    modality: Modality


def expand_numbers(
    v: Violations,
    field: str,
    blocks: Sequence[NumberBlock],
    service: Service | None,
    limit: int,
) -> list[NumberEntry]:
    """Validate the number blocks and expand ranges into numbers (no duplicates, at most `limit`)."""
    pattern = MOBILE_NUMBER if service == Service.MOBILE else FIXED_NUMBER
    entries: list[NumberEntry] = []
    seen: set[str] = set()
    if not blocks:
        v.add(field, "at least one number is required")
        return entries
    # Counted before any block is read: each block holds at least one number.
    if len(blocks) > limit:
        v.add(field, f"at most {limit} numbers per request")
        return entries
    reported = len(v.items)
    for index, block in enumerate(blocks):
        if len(v.items) - reported >= MAX_BLOCK_VIOLATIONS:
            break
        path = f"{field}[{index}]"
        ok = True
        if service and not pattern.fullmatch(block.first):
            v.add(f"{path}.first", f"not a {service} number of the numbering plan")
            ok = False
        if block.last and service and not pattern.fullmatch(block.last):
            v.add(f"{path}.last", f"not a {service} number of the numbering plan")
            ok = False
        if block.modality is None:
            v.add(f"{path}.modality", MODALITY_REQUIRED)
            ok = False
        if not ok or not service or block.modality is None:
            continue
        first = int(block.first)
        last = int(block.last) if block.last else first
        if last < first:
            v.add(f"{path}.last", "must not be lower than first")
            continue
        if len(entries) + (last - first + 1) > limit:
            v.add(field, f"at most {limit} numbers per request")
            return entries
        for value in range(first, last + 1):
            number = str(value).zfill(len(block.first))
            if number in seen:
                v.add(path, f"number {number} appears twice")
                return entries
            seen.add(number)
            entries.append(NumberEntry(number, block.modality))
    return entries


def check_objection(v: Violations, field: str, objection: Objection) -> None:
    """An objection states its reason; a debt objection states amount, currency and due date."""
    if objection.reason is None:
        v.add(f"{field}.reason", "required: an objection reason (REC01PRTnn)")
        return
    if objection.detail and not printable(objection.detail, limit=MAX_OBJECTION_DETAIL):
        v.add(f"{field}.detail", f"up to {MAX_OBJECTION_DETAIL} printable characters")
    if objection.reason == ObjectionReason.DEBT:
        debt = objection.debt
        if not AMOUNT.fullmatch(debt.owed.amount) or _decimal(debt.owed.amount) <= 0:
            v.add(
                f"{field}.debt.owed.amount",
                "required for a debt objection: a positive amount such as 120.50",
            )
        if not CURRENCY.fullmatch(debt.owed.currency):
            v.add(
                f"{field}.debt.owed.currency",
                "required for a debt objection: an ISO 4217 code such as PEN",
            )
        if debt.due_date is None:
            v.add(f"{field}.debt.due_date", "required for a debt objection: the bill's due date")
        else:
            check_date(v, f"{field}.debt.due_date", debt.due_date)
        if debt.bill_number and not RECEIPT.fullmatch(debt.bill_number):
            v.add(f"{field}.debt.bill_number", "up to 40 letters, digits or . / _ -")


def check_answer(v: Violations, accept: bool, objection: Objection | None) -> None:
    """A donor's answer: an acceptance carries no objection, an objection a valid one."""
    if accept and objection is not None:
        v.add("objection", "must be empty when accepting")
    if not accept:
        if objection is None:
            v.add(
                "objection",
                "required when objecting: reason, and for debt the amount and due date",
            )
        else:
            check_objection(v, "objection", objection)


@dataclass(frozen=True)
class PortRequestForm:
    """What the checks of a port request form read from it."""

    service: Service
    entries: list[NumberEntry]
    received_at: datetime
    installation_date: date | None


def check_port_request(
    v: Violations, request: SubmitPortRequest, now: datetime, today: date, limit: int
) -> PortRequestForm:
    """Every field of a port request form (raises InvalidArgument naming each one that fails);
    `today` is the jurisdiction's local date, `limit` the most numbers a request may carry."""
    check_operator(v, "donor", request.donor)
    service = check_service(v, "service", request.service)
    check_subscriber(v, "subscriber", request.subscriber)
    entries = expand_numbers(v, "numbers", request.numbers, service, limit)
    received_at = check_instant(v, "received_at", request.received_at)
    within(v, "received_at", received_at, now, past=RECEIVED_AT_PAST, future=RECEIVED_AT_FUTURE)
    if request.form_number and not printable(request.form_number, limit=MAX_FORM_NUMBER):
        v.add("form_number", f"up to {MAX_FORM_NUMBER} printable characters")
    if request.prior_consultation_id:
        check_case_id(v, "prior_consultation_id", request.prior_consultation_id, "CP")
    installation = check_date(v, "installation_date", request.installation_date, required=False)
    if installation is not None:
        if service == Service.MOBILE:
            v.add("installation_date", "only for fixed service")
        elif installation > today:
            v.add("installation_date", "must not be in the future")
    v.raise_if_any()
    assert service is not None and received_at is not None
    return PortRequestForm(service, entries, received_at, installation)


def check_confirmation(v: Violations, request: ConfirmPortExecution, now: datetime) -> datetime:
    """A confirmation names its request and step; returns the instant the step was done (the
    call's when not stated). Raises InvalidArgument naming each field that fails."""
    check_case_id(v, "port_request_id", request.port_request_id, "SP")
    if request.step not in (ExecutionStep.DONOR_DISABLED, ExecutionStep.RECIPIENT_ENABLED):
        v.add("step", STEP_REQUIRED)
    done_at = check_instant(v, "done_at", request.done_at, required=False) or now
    within(v, "done_at", done_at, now, past=DONE_AT_PAST, future=DONE_AT_FUTURE)
    v.raise_if_any()
    return done_at


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        return Decimal(0)
