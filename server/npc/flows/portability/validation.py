"""Input checks of the portability messages (ABDCP: integrity failures, NI). Each failure names the
field path, so an operator's integration sees exactly what to fix; nothing is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.errors import FieldViolation, InvalidArgument
from npc.v1 import common_pb2, portability_pb2

MOBILE_NUMBER = re.compile(r"(?a)^9\d{8}$")
FIXED_NUMBER = re.compile(r"(?a)^(1\d{7}|[4-8]\d{7})$")
OPERATOR_ID = re.compile(r"(?a)^[a-z][a-z0-9_-]{1,31}$")
CASE_ID = re.compile(r"(?a)^[A-Z]{2}\d{10}$")
EMAIL = re.compile(r"(?a)^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
PHONE = re.compile(r"(?a)^\+?\d{6,15}$")
CURRENCY = re.compile(r"(?a)^[A-Z]{3}$")
AMOUNT = re.compile(r"(?a)^\d{1,12}(\.\d{1,2})?$")
RECEIPT = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")

SERVICES: dict[int, str] = {
    common_pb2.SERVICE_TYPE_MOBILE: "mobile",
    common_pb2.SERVICE_TYPE_FIXED: "fixed",
}
MODALITIES: dict[int, str] = {
    common_pb2.MODALITY_PREPAID: "prepaid",
    common_pb2.MODALITY_POSTPAID: "postpaid",
}
DOCUMENT_TYPES: dict[int, str] = {
    common_pb2.DOCUMENT_TYPE_DNI: "dni",
    common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA: "ce",
    common_pb2.DOCUMENT_TYPE_RUC: "ruc",
    common_pb2.DOCUMENT_TYPE_OTHER: "other",
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


class Violations:
    """Collects field violations and raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        """Record one violation."""
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        """Raise InvalidArgument when something was recorded."""
        if self.items:
            raise InvalidArgument(self.items)


def printable(value: str, *, limit: int) -> bool:
    """Non-empty after trimming, within `limit` characters, and free of control characters."""
    # Measured first: a megabyte of text is refused without being copied or scanned.
    return len(value) <= limit and bool(value.strip()) and value.isprintable()


def check_operator(v: Violations, field: str, value: str) -> None:
    """An operator id."""
    if not OPERATOR_ID.fullmatch(value):
        v.add(field, "required: an operator id such as 'claro'")


def check_case_id(v: Violations, field: str, value: str, prefix: str) -> None:
    """A case number issued by the clearinghouse."""
    if not CASE_ID.fullmatch(value) or not value.startswith(prefix):
        v.add(
            field, f"required: a {prefix} number issued by the clearinghouse ({prefix}0000000001)"
        )


def check_service(v: Violations, field: str, value: int) -> str:
    """The service type; returns its name."""
    if value not in SERVICES:
        v.add(field, "required: SERVICE_TYPE_MOBILE or SERVICE_TYPE_FIXED")
        return ""
    return SERVICES[value]


def ruc_is_valid(number: str) -> bool:
    """RUC: 11 digits with a modulo-11 check digit."""
    if not re.fullmatch(r"(?a)(10|15|16|17|20)\d{9}", number):
        return False
    weights = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    total = sum(int(d) * w for d, w in zip(number[:10], weights, strict=True))
    check = 11 - total % 11
    check = 0 if check == 10 else 1 if check == 11 else check
    return check == int(number[10])


def check_document(v: Violations, field: str, document: common_pb2.IdentityDocument) -> None:
    """Identity document: DNI 8 digits, RUC 11 digits with check digit, CE alphanumeric."""
    kind = document.type
    number = document.number
    if kind not in DOCUMENT_TYPES:
        v.add(f"{field}.type", "required: DNI, CARNET_EXTRANJERIA, RUC or OTHER")
        return
    if kind == common_pb2.DOCUMENT_TYPE_DNI and not re.fullmatch(r"(?a)\d{8}", number):
        v.add(f"{field}.number", "a DNI has exactly 8 digits")
    elif kind == common_pb2.DOCUMENT_TYPE_RUC and not ruc_is_valid(number):
        v.add(
            f"{field}.number",
            "a RUC has 11 digits, starts with 10, 15, 16, 17 or 20 and has a valid check digit",
        )
    elif kind == common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA and not re.fullmatch(
        r"[A-Za-z0-9]{8,12}", number
    ):
        v.add(f"{field}.number", "a carnet de extranjería has 8 to 12 letters or digits")
    elif kind == common_pb2.DOCUMENT_TYPE_OTHER and not re.fullmatch(
        r"(?a)[A-Za-z0-9-]{4,20}", number
    ):
        v.add(f"{field}.number", "4 to 20 letters, digits or hyphens")


def check_subscriber(v: Violations, field: str, subscriber: common_pb2.Subscriber) -> None:
    """The subscriber block of the request form (Anexo 1)."""
    if not printable(subscriber.name, limit=200):
        v.add(f"{field}.name", "required: up to 200 printable characters")
    if subscriber.legal_representative and not printable(
        subscriber.legal_representative, limit=200
    ):
        v.add(f"{field}.legal_representative", "up to 200 printable characters")
    check_document(v, f"{field}.document", subscriber.document)
    if subscriber.email and not EMAIL.fullmatch(subscriber.email):
        v.add(f"{field}.email", "not an e-mail address")
    if subscriber.contact_phone and not PHONE.fullmatch(subscriber.contact_phone):
        v.add(f"{field}.contact_phone", "6 to 15 digits, optionally with a leading +")


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


def parse_date(value: str) -> date | None:
    """A YYYY-MM-DD date, or None."""
    if not re.fullmatch(r"(?a)\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def timestamp(
    v: Violations, field: str, message: object, name: str, *, required: bool = True
) -> datetime | None:
    """A Timestamp field of `message` as an aware datetime (None when unset and optional)."""
    if not message.HasField(name):  # type: ignore[attr-defined]
        if required:
            v.add(field, "required")
        return None
    value: Timestamp = getattr(message, name)
    if not 0 <= value.nanos < 1_000_000_000 or not -62135596800 <= value.seconds <= 253402300799:
        v.add(field, "not a valid instant")
        return None
    try:
        return value.ToDatetime(tzinfo=_UTC)
    except (ValueError, OverflowError):
        v.add(field, "not a valid instant")
        return None


def within(
    v: Violations,
    field: str,
    instant: datetime | None,
    now: datetime,
    *,
    past: timedelta,
    future: timedelta,
) -> None:
    """The instant lies between now - `past` and now + `future`."""
    if instant is not None and not now - past <= instant <= now + future:
        v.add(field, "outside the accepted range of instants")


from datetime import UTC as _UTC  # noqa: E402
