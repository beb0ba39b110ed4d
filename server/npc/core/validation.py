"""Input checks every flow shares. Each failure names the field path, so an operator's
integration sees exactly what to fix; nothing is stored.

Flow-specific checks (a portability request's number blocks, an SGU subcategory) stay in the
flow; what is here is the common vocabulary: violations collected and raised together, bounded
printable text, operator ids, case numbers, e-mail and phone formats, Peru's numbering plan and
its identity documents.
"""

from __future__ import annotations

import re
from typing import Protocol

from npc.core.errors import FieldViolation, InvalidArgument

MOBILE_NUMBER = re.compile(r"(?a)^9\d{8}$")
FIXED_NUMBER = re.compile(r"(?a)^(1\d{7}|[4-8]\d{7})$")
OPERATOR_ID = re.compile(r"(?a)^[a-z][a-z0-9_-]{1,31}$")
CASE_ID = re.compile(r"(?a)^[A-Z]{2}\d{10}$")
EMAIL = re.compile(r"(?a)^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
PHONE = re.compile(r"(?a)^\+?\d{6,15}$")
CURRENCY = re.compile(r"(?a)^[A-Z]{3}$")
AMOUNT = re.compile(r"(?a)^\d{1,12}(\.\d{1,2})?$")
RECEIPT = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")

# Peru's identity documents, by the wire numbers of npc.v1.DocumentType (common.proto); a test
# pins the two together, so the core needs no generated code.
DOCUMENT_DNI = 1
DOCUMENT_CARNET_EXTRANJERIA = 2
DOCUMENT_RUC = 3
DOCUMENT_OTHER = 4
DOCUMENT_TYPES: dict[int, str] = {
    DOCUMENT_DNI: "dni",
    DOCUMENT_CARNET_EXTRANJERIA: "ce",
    DOCUMENT_RUC: "ruc",
    DOCUMENT_OTHER: "other",
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


def ruc_is_valid(number: str) -> bool:
    """RUC: 11 digits with a modulo-11 check digit."""
    if not re.fullmatch(r"(?a)(10|15|16|17|20)\d{9}", number):
        return False
    weights = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    total = sum(int(d) * w for d, w in zip(number[:10], weights, strict=True))
    check = 11 - total % 11
    check = 0 if check == 10 else 1 if check == 11 else check
    return check == int(number[10])


class IdentityDocument(Protocol):
    """An identity document as the requests carry it (npc.v1.IdentityDocument)."""

    @property
    def type(self) -> int: ...

    @property
    def number(self) -> str: ...


class Subscriber(Protocol):
    """The subscriber block of a request form (npc.v1.Subscriber)."""

    @property
    def name(self) -> str: ...

    @property
    def legal_representative(self) -> str: ...

    @property
    def document(self) -> IdentityDocument: ...

    @property
    def email(self) -> str: ...

    @property
    def contact_phone(self) -> str: ...


def check_document(v: Violations, field: str, document: IdentityDocument) -> None:
    """Identity document: DNI 8 digits, RUC 11 digits with check digit, CE alphanumeric."""
    kind = document.type
    number = document.number
    if kind not in DOCUMENT_TYPES:
        v.add(f"{field}.type", "required: DNI, CARNET_EXTRANJERIA, RUC or OTHER")
        return
    if kind == DOCUMENT_DNI and not re.fullmatch(r"(?a)\d{8}", number):
        v.add(f"{field}.number", "a DNI has exactly 8 digits")
    elif kind == DOCUMENT_RUC and not ruc_is_valid(number):
        v.add(
            f"{field}.number",
            "a RUC has 11 digits, starts with 10, 15, 16, 17 or 20 and has a valid check digit",
        )
    elif kind == DOCUMENT_CARNET_EXTRANJERIA and not re.fullmatch(r"[A-Za-z0-9]{8,12}", number):
        v.add(f"{field}.number", "a carnet de extranjería has 8 to 12 letters or digits")
    elif kind == DOCUMENT_OTHER and not re.fullmatch(r"(?a)[A-Za-z0-9-]{4,20}", number):
        v.add(f"{field}.number", "4 to 20 letters, digits or hyphens")


def check_subscriber(v: Violations, field: str, subscriber: Subscriber) -> None:
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
