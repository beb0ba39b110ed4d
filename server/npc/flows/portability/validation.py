"""Input checks of the portability messages (ABDCP: integrity failures, NI). Each failure names the
field path, so an operator's integration sees exactly what to fix; nothing is stored. The checks
every flow shares (documents, subscribers, case numbers, instants) are in `npc.core.validation`
and `npc.core.instants`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from npc.core.validation import (
    AMOUNT,
    CURRENCY,
    FIXED_NUMBER,
    MOBILE_NUMBER,
    RECEIPT,
    Violations,
    parse_date,
    printable,
)
from npc.v1 import common_pb2, portability_pb2

SERVICES: dict[int, str] = {
    common_pb2.SERVICE_TYPE_MOBILE: "mobile",
    common_pb2.SERVICE_TYPE_FIXED: "fixed",
}
MODALITIES: dict[int, str] = {
    common_pb2.MODALITY_PREPAID: "prepaid",
    common_pb2.MODALITY_POSTPAID: "postpaid",
}
OBJECTION_CODES: dict[int, str] = {
    portability_pb2.OBJECTION_REASON_SERVICE_SUSPENDED: "REC01PRT01",
    portability_pb2.OBJECTION_REASON_NUMBER_NOT_OWNED: "REC01PRT05",
    portability_pb2.OBJECTION_REASON_WRONG_SERVICE_TYPE: "REC01PRT06",
    portability_pb2.OBJECTION_REASON_DOCUMENT_MISMATCH: "REC01PRT07",
    portability_pb2.OBJECTION_REASON_WRONG_MODALITY: "REC01PRT08",
    portability_pb2.OBJECTION_REASON_DEBT: "REC01PRT09",
}
OBJECTION_NAMES = {
    value: name.removeprefix("OBJECTION_REASON_").lower()
    for name, value in portability_pb2.ObjectionReason.items()
    if value != portability_pb2.OBJECTION_REASON_UNSPECIFIED
}


def check_service(v: Violations, field: str, value: int) -> str:
    """The service type; returns its name."""
    if value not in SERVICES:
        v.add(field, "required: SERVICE_TYPE_MOBILE or SERVICE_TYPE_FIXED")
        return ""
    return SERVICES[value]


@dataclass(frozen=True)
class NumberEntry:
    """One number of a request, with its modality."""

    number: str
    modality: str


# Violations collected from the blocks of one request: enough to fix a systematic mistake.
MAX_BLOCK_VIOLATIONS = 100


def expand_numbers(
    v: Violations,
    field: str,
    blocks: Sequence[common_pb2.NumberBlock],
    service: str,
    limit: int,
) -> list[NumberEntry]:
    """Validate the number blocks and expand ranges into numbers (no duplicates, at most `limit`)."""
    pattern = MOBILE_NUMBER if service == "mobile" else FIXED_NUMBER
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
        if block.modality not in MODALITIES:
            v.add(f"{path}.modality", "required: MODALITY_PREPAID or MODALITY_POSTPAID")
            ok = False
        if not ok or not service:
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
            entries.append(NumberEntry(number, MODALITIES[block.modality]))
    return entries


def check_objection(v: Violations, field: str, objection: portability_pb2.Objection) -> None:
    """An objection states its reason; a debt objection states amount, currency and due date."""
    if objection.reason not in OBJECTION_NAMES:
        v.add(f"{field}.reason", "required: an objection reason (REC01PRTnn)")
        return
    if objection.detail and not printable(objection.detail, limit=500):
        v.add(f"{field}.detail", "up to 500 printable characters")
    if objection.reason == portability_pb2.OBJECTION_REASON_DEBT:
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
        if parse_date(debt.due_date) is None:
            v.add(
                f"{field}.debt.due_date",
                "required for a debt objection: the bill's due date, YYYY-MM-DD",
            )
        if debt.bill_number and not RECEIPT.fullmatch(debt.bill_number):
            v.add(f"{field}.debt.bill_number", "up to 40 letters, digits or . / _ -")


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        return Decimal(0)
