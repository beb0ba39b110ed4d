"""Input checks of the PQR commands: each failure names the request's field; nothing is stored."""

from __future__ import annotations

import re
from datetime import datetime

from npc.core.instants import Instant, check_instant, within
from npc.core.validation import EMAIL, OPERATOR_ID, Violations, printable
from npc.flows.pqr.model import UserData
from npc.flows.pqr.rules import PRESENTED_AT_FUTURE, PRESENTED_AT_PAST, DocumentType
from npc.notifications.outbox import MAX_SMS_TEXT

CUN = re.compile(r"(?a)^\d{6,18}$")
SMS_REQUEST_ID = re.compile(r"(?a)^SQ\d{10}$")
CO_MOBILE = re.compile(r"(?a)^3\d{9}$")
MONTH = re.compile(r"(?a)^(\d{4})-(0[1-9]|1[0-2])$")
QUEJA = re.compile(r"(?i)(?<![a-záéíóúñ])queja(?![a-záéíóúñ])")
MAX_NAME = 200
MAX_ADDRESS = 300
MAX_TEXT = 4000
MAX_SMS = MAX_SMS_TEXT  # an SMS is what the outbox can send, defined once there

_NIT_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)


def nit_check_digit(body: str) -> int:
    """The DIAN check digit of a NIT body (weights 3, 7, 13... from the rightmost digit)."""
    total = sum(int(d) * w for d, w in zip(reversed(body), _NIT_WEIGHTS, strict=False))
    rest = total % 11
    return rest if rest < 2 else 11 - rest


def nit_is_valid(number: str) -> bool:
    """A NIT: 9 digits, optionally a dash, and the check digit."""
    match = re.fullmatch(r"(?a)(\d{9})-?(\d)", number)
    return match is not None and nit_check_digit(match.group(1)) == int(match.group(2))


# The number of each document type, and what a wrong one is told.
DOCUMENT_NUMBERS: dict[DocumentType, tuple[str, str]] = {
    DocumentType.CC: (r"(?a)\d{6,10}", "a cédula de ciudadanía has 6 to 10 digits"),
    DocumentType.CE: (
        r"(?a)[A-Za-z0-9]{6,12}",
        "a cédula de extranjería has 6 to 12 letters or digits",
    ),
    DocumentType.PASSPORT: (
        r"(?a)[A-Za-z0-9]{5,20}",
        "a passport number has 5 to 20 letters or digits",
    ),
}


def check_document(v: Violations, field: str, kind: DocumentType | None, number: str) -> None:
    """A Colombian identification document by its type."""
    if kind is None:
        v.add(f"{field}.document_type", "required: CC, CE, NIT or PASSPORT")
        return
    if kind is DocumentType.NIT:
        if not nit_is_valid(number):
            v.add(f"{field}.document_number", "a NIT has 9 digits and its check digit")
    elif not re.fullmatch(DOCUMENT_NUMBERS[kind][0], number):
        v.add(f"{field}.document_number", DOCUMENT_NUMBERS[kind][1])


def check_user(v: Violations, field: str, user: UserData, *, verbal: bool = False) -> None:
    """Name and identification of the user, and for a written PQR its notification address: a
    verbal one needs only name, identification and reason (art. 2.1.5.3)."""
    if not printable(user.name, limit=MAX_NAME):
        v.add(f"{field}.name", f"required: the user's full name, up to {MAX_NAME} characters")
    check_document(v, field, user.document_type, user.document_number)
    if user.email and not EMAIL.fullmatch(user.email):
        v.add(f"{field}.email", "not an e-mail address")
    if user.address and not printable(user.address, limit=MAX_ADDRESS):
        v.add(f"{field}.address", f"up to {MAX_ADDRESS} printable characters")
    if not verbal and not user.email and not user.address:
        v.add(f"{field}.email", "required: a notification address (e-mail or physical address)")
    if user.phone and not CO_MOBILE.fullmatch(user.phone):
        v.add(f"{field}.phone", "a Colombian mobile line: 10 digits starting with 3")


def check_presented(v: Violations, field: str, value: Instant, now: datetime) -> datetime:
    """When the user presented a PQR or recourse: not in the future, not absurdly old; `now`
    (presented at the filing itself) when unset."""
    presented = check_instant(v, field, value, required=False)
    within(v, field, presented, now, past=PRESENTED_AT_PAST, future=PRESENTED_AT_FUTURE)
    return presented or now


def check_text(v: Violations, field: str, value: str, what: str, limit: int = MAX_TEXT) -> None:
    """A required free text."""
    if not printable(value, limit=limit):
        v.add(field, f"required: {what}, up to {limit} printable characters")


def check_cun(v: Violations, field: str, value: str) -> None:
    """A CUN: 6 to 18 digits."""
    if not CUN.fullmatch(value):
        v.add(field, "required: a CUN, 6 to 18 digits")


def check_sms_request_id(v: Violations, field: str, value: str) -> None:
    """An SMS QUEJA request id issued by the clearinghouse."""
    if not SMS_REQUEST_ID.fullmatch(value):
        v.add(field, "required: an SMS request id issued by the clearinghouse (SQ0000000001)")


def check_provider(v: Violations, field: str, value: str) -> None:
    """An operator id."""
    if not OPERATOR_ID.fullmatch(value):
        v.add(field, "required: a provider id such as 'claro-co'")
