"""Malformed input of every PortabilityService RPC and of EventService.Subscribe.

Each case sends one request that is wrong in one way (or several, where the test says so) and
checks that the clearinghouse refuses it with INVALID_ARGUMENT (OUT_OF_RANGE where the API says so),
names the offending field path in the google.rpc.BadRequest details, and stores nothing: no port
request, no prior consultation, no event, no command result, no deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.embedded import EmbeddedRedis
from npc.v1 import common_pb2, events_pb2
from npc.v1 import portability_pb2 as pb
from tests.conftest import DEFAULT_START, DatabaseSupply, Operators
from tests.helpers import (
    block,
    day,
    field_violations,
    head,
    port_request,
    rid,
    running,
    settle,
    subscriber,
    ts,
)

# Numbers no case of the module names: the accepted controls on `shared_app` each take one.
_unused_numbers = itertools.count(940_000_800)

# Tables whose row counts must not move when a request is refused.
TABLES = (
    "port_requests",
    "port_request_numbers",
    "prior_consultations",
    "events",
    "command_results",
    "deadlines",
    "compliance_records",
    "ported_numbers",
)


async def row_counts(app) -> dict[str, int]:
    """Row count of every table a command could write."""
    async with app.core.db.pool.acquire() as conn:
        # A refusal stores its answer (a retry gets it again); only accepted answers count.
        return {
            t: await conn.fetchval(
                "SELECT count(*) FROM command_results WHERE status_code = 0"
                if t == "command_results"
                else f"SELECT count(*) FROM {t}"
            )
            for t in TABLES
        }


@dataclass
class Ctx:
    """What exists before each malformed call: one live port request, one open consultation."""

    clock: Any
    port_request_id: str
    consultation_id: str
    fixed_request_id: str


# Every malformed call is refused before it stores anything, so the refusal cases share one
# clearinghouse per module (per xdist worker) instead of starting one each: a started server and a
# fresh database cost more than a hundred refusals. Each case still compares the stored rows and
# the states before and after its own call.


@pytest.fixture(scope="module")
def shared_clock() -> FakeClock:
    """The refusal cases' clock; nothing they do moves it."""
    return FakeClock(DEFAULT_START)


@pytest.fixture(scope="module")
def shared_database(database_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh database for the refusal cases of this module."""
    name, dsn = database_supply.take()
    yield dsn
    database_supply.drop(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_app(
    shared_database: str, redis_server: EmbeddedRedis, shared_clock: FakeClock
) -> AsyncIterator[Clearinghouse]:
    """One running clearinghouse for the refusal cases of this module."""
    settings = Settings(
        database_url=shared_database,
        redis_url=redis_server.url,
        redis_prefix=f"validation{os.getpid()}",
        grpc_port=0,
        http_port=0,
        db_pool_size=10,
    )
    async with running(settings, shared_clock) as house:
        yield house


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_operators(shared_app: Clearinghouse) -> AsyncIterator[Operators]:
    """Clients of the demo operators on `shared_app`."""
    ops = Operators(f"127.0.0.1:{shared_app.grpc_port}")
    try:
        yield ops
    finally:
        await ops.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(shared_app, shared_operators, shared_clock) -> Ctx:
    app, operators, clock = shared_app, shared_operators, shared_clock
    claro = operators["claro"]
    filed = await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")]))
    fixed = await claro.call(
        "SubmitPortRequest",
        port_request(clock, service=common_pb2.SERVICE_TYPE_FIXED, numbers=[block("12000001")]),
    )
    consultation = await claro.call(
        "SubmitPriorConsultation",
        pb.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            document=dni(),
            numbers=[block("940000002")],
        ),
    )
    await settle(app)
    return Ctx(clock, filed.id, consultation.id, fixed.id)


def dni(number: str = "44556677") -> common_pb2.IdentityDocument:
    return common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number=number)


def person(**fields: Any) -> common_pb2.Subscriber:
    """The default subscriber with some fields replaced."""
    base = subscriber()
    values: dict[str, Any] = {
        "name": base.name,
        "legal_representative": base.legal_representative,
        "document": base.document,
        "email": base.email,
        "contact_phone": base.contact_phone,
    }
    values.update(fields)
    return common_pb2.Subscriber(**values)


def bad_instant(seconds: int = 253402300800, nanos: int = 0) -> Timestamp:
    """A Timestamp outside what google.protobuf.Timestamp allows (year 10000, or bad nanos)."""
    return Timestamp(seconds=seconds, nanos=nanos)


@dataclass
class Case:
    """One malformed call: who calls what with which request, and what the answer must name."""

    caller: str
    method: str
    build: Callable[[Ctx], Any]
    fields: tuple[str, ...]
    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT
    label: str = field(default="")


def sp(build: Callable[[Ctx], Any], *fields: str) -> Case:
    return Case("claro", "SubmitPortRequest", build, fields)


def pr(**kw: Any) -> Callable[[Ctx], Any]:
    """A SubmitPortRequest for a free number (940000050) with some fields replaced."""

    return pr_with(lambda c: kw)


def pr_with(fn: Callable[[Ctx], dict[str, Any]]) -> Callable[[Ctx], Any]:
    """Like `pr`, with fields computed from the context (times relative to the fake clock)."""

    def build(c: Ctx) -> Any:
        values = fn(c)
        numbers = values.pop("numbers", [block("940000050")])
        request = port_request(c.clock, **values)
        del request.numbers[:]  # the builder replaces an empty list by its default number
        request.numbers.extend(numbers)
        return request

    return build


MOBILE = common_pb2.SERVICE_TYPE_MOBILE
FIXED = common_pb2.SERVICE_TYPE_FIXED

SUBMIT_PORT_REQUEST = {
    # request id (idempotency key)
    "missing request_id": sp(pr(request_id=""), "request_id"),
    "request_id too long": sp(pr(request_id="r" * 65), "request_id"),
    "request_id with a space": sp(pr(request_id="req 1"), "request_id"),
    "request_id non-ascii": sp(pr(request_id="req-ñ"), "request_id"),
    "request_id trailing newline": sp(pr(request_id="req-77\n"), "request_id"),
    # donor
    "donor empty": sp(pr(donor=""), "donor"),
    "donor uppercase": sp(pr(donor="Movistar"), "donor"),
    "donor with a space": sp(pr(donor="mov istar"), "donor"),
    "donor trailing newline": sp(pr(donor="movistar\n"), "donor"),
    # enums
    "service unspecified": sp(pr(service=common_pb2.SERVICE_TYPE_UNSPECIFIED), "service"),
    "service unknown value": sp(pr(service=99), "service"),
    "modality unspecified": sp(
        pr(numbers=[block("940000050", modality=common_pb2.MODALITY_UNSPECIFIED)]),
        "numbers[0].modality",
    ),
    "modality unknown value": sp(
        pr(numbers=[block("940000050", modality=77)]), "numbers[0].modality"
    ),
    "document type unspecified": sp(
        pr(subscriber=person(document=common_pb2.IdentityDocument(number="44556677"))),
        "subscriber.document.type",
    ),
    "document type unknown value": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DocumentType.ValueType(42), number="44556677"
                )
            )
        ),
        "subscriber.document.type",
    ),
    # identity documents
    "DNI 7 digits": sp(
        pr(subscriber=person(document=dni("4455667"))), "subscriber.document.number"
    ),
    "DNI 9 digits": sp(
        pr(subscriber=person(document=dni("445566778"))), "subscriber.document.number"
    ),
    "DNI with a letter": sp(
        pr(subscriber=person(document=dni("4455667A"))), "subscriber.document.number"
    ),
    "DNI empty": sp(pr(subscriber=person(document=dni(""))), "subscriber.document.number"),
    "DNI fullwidth digits": sp(
        pr(subscriber=person(document=dni("４４５５６６７７"))), "subscriber.document.number"
    ),
    "RUC bad check digit": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_RUC, number="20100070971"
                )
            )
        ),
        "subscriber.document.number",
    ),
    "RUC 10 digits": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_RUC, number="2010007097"
                )
            )
        ),
        "subscriber.document.number",
    ),
    "RUC unknown prefix": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_RUC, number="30100070970"
                )
            )
        ),
        "subscriber.document.number",
    ),
    "carnet de extranjeria too short": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA, number="AB12"
                )
            )
        ),
        "subscriber.document.number",
    ),
    # names and contact data
    "name empty": sp(pr(subscriber=person(name="")), "subscriber.name"),
    "name only spaces": sp(pr(subscriber=person(name="   ")), "subscriber.name"),
    "name with NUL": sp(pr(subscriber=person(name="Rosa\x00Quispe")), "subscriber.name"),
    "name with BEL": sp(pr(subscriber=person(name="Rosa\x07Quispe")), "subscriber.name"),
    "name with newline": sp(pr(subscriber=person(name="Rosa\nQuispe")), "subscriber.name"),
    "name with ANSI escape": sp(pr(subscriber=person(name="\x1b[31mRosa")), "subscriber.name"),
    "name with DEL": sp(pr(subscriber=person(name="Rosa\x7f")), "subscriber.name"),
    "name with C1 control": sp(pr(subscriber=person(name="Rosa\x85Quispe")), "subscriber.name"),
    "name zero-width only": sp(pr(subscriber=person(name="\u200b\u200b")), "subscriber.name"),
    "name with RTL override": sp(
        pr(subscriber=person(name="Rosa \u202eepsiuQ")), "subscriber.name"
    ),
    "name with line separator": sp(
        pr(subscriber=person(name="Rosa\u2028Quispe")), "subscriber.name"
    ),
    "name too long": sp(pr(subscriber=person(name="R" * 201)), "subscriber.name"),
    "legal representative with control": sp(
        pr(subscriber=person(legal_representative="Juan\x0bPerez")),
        "subscriber.legal_representative",
    ),
    "email without domain": sp(pr(subscriber=person(email="rosa@")), "subscriber.email"),
    "email with space": sp(pr(subscriber=person(email="ro sa@example.pe")), "subscriber.email"),
    "email trailing newline": sp(
        pr(subscriber=person(email="rosa@example.pe\n")), "subscriber.email"
    ),
    "contact phone arabic-indic digits": sp(
        pr(subscriber=person(contact_phone="٩٩٩١٢٣٤٥٦")), "subscriber.contact_phone"
    ),
    "RUC with a fullwidth digit": sp(
        pr(
            subscriber=person(
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_RUC, number="20１00070970"
                )
            )
        ),
        "subscriber.document.number",
    ),
    "contact phone letters": sp(
        pr(subscriber=person(contact_phone="99x123456")), "subscriber.contact_phone"
    ),
    # numbers
    "numbers empty": sp(pr(numbers=[]), "numbers"),
    "mobile number 8 digits": sp(pr(numbers=[block("94000005")]), "numbers[0].first"),
    "mobile number 10 digits": sp(pr(numbers=[block("9400000500")]), "numbers[0].first"),
    "mobile number not starting with 9": sp(pr(numbers=[block("840000050")]), "numbers[0].first"),
    "mobile number with a letter": sp(pr(numbers=[block("94000005O")]), "numbers[0].first"),
    "mobile number with +51": sp(pr(numbers=[block("+51940000050")]), "numbers[0].first"),
    "mobile number empty": sp(pr(numbers=[block("")]), "numbers[0].first"),
    "mobile number trailing newline": sp(pr(numbers=[block("940000050\n")]), "numbers[0].first"),
    "mobile number arabic-indic digits": sp(pr(numbers=[block("9٤٠٠٠٠٠٥٠")]), "numbers[0].first"),
    "mobile number fullwidth digits": sp(
        pr(numbers=[block("9４０００００５０")]), "numbers[0].first"
    ),
    "fixed number on a mobile request": sp(pr(numbers=[block("12000050")]), "numbers[0].first"),
    "mobile number on a fixed request": sp(
        pr(service=FIXED, numbers=[block("940000050")]), "numbers[0].first"
    ),
    "range last malformed": sp(pr(numbers=[block("940000050", "94000006")]), "numbers[0].last"),
    "range last below first": sp(pr(numbers=[block("940000060", "940000050")]), "numbers[0].last"),
    "second block malformed": sp(
        pr(numbers=[block("940000050"), block("94000005")]), "numbers[1].first"
    ),
    "duplicate number": sp(pr(numbers=[block("940000050"), block("940000050")]), "numbers[1]"),
    "overlapping ranges": sp(
        pr(numbers=[block("940000050", "940000055"), block("940000053", "940000058")]),
        "numbers[1]",
    ),
    "too many numbers in one range": sp(pr(numbers=[block("940100000", "940110000")]), "numbers"),
    "too many numbers over two ranges": sp(
        pr(numbers=[block("940100000", "940105000"), block("940200000", "940205000")]),
        "numbers",
    ),
    # reception time
    "received_at missing": sp(pr_with(lambda c: {"received_at": None}), "received_at"),
    "received_at 31 days ago": sp(
        pr_with(lambda c: {"received_at": ts(c.clock.now() - timedelta(days=31))}), "received_at"
    ),
    "received_at year 2000": sp(
        pr_with(lambda c: {"received_at": ts(c.clock.now().replace(year=2000))}), "received_at"
    ),
    "received_at 10 minutes ahead": sp(
        pr_with(lambda c: {"received_at": ts(c.clock.now() + timedelta(minutes=10))}),
        "received_at",
    ),
    "received_at next year": sp(
        pr_with(lambda c: {"received_at": ts(c.clock.now() + timedelta(days=365))}),
        "received_at",
    ),
    "received_at beyond year 9999": sp(pr(received_at=bad_instant()), "received_at"),
    "received_at negative nanos": sp(
        pr_with(lambda c: {"received_at": bad_instant(int(c.clock.now().timestamp()), -1)}),
        "received_at",
    ),
    # other form fields
    "form_number with control": sp(pr(form_number="F-\x000001"), "form_number"),
    "form_number too long": sp(pr(form_number="F" * 41), "form_number"),
    "prior_consultation_id malformed": sp(pr(prior_consultation_id="CP1"), "prior_consultation_id"),
    "prior_consultation_id of a port request": sp(
        pr(prior_consultation_id="SP0000000001"), "prior_consultation_id"
    ),
    "installation_date on mobile": sp(pr(installation_date=day("2026-11-20")), "installation_date"),
    "installation_date not a date": sp(
        pr(service=FIXED, numbers=[block("12000050")], installation_date=day("2026-02-30")),
        "installation_date",
    ),
    "installation_date without a day": sp(
        pr(service=FIXED, numbers=[block("12000050")], installation_date=Date(year=2026, month=11)),
        "installation_date",
    ),
    "installation_date in the future": sp(
        pr(service=FIXED, numbers=[block("12000050")], installation_date=day("2026-11-30")),
        "installation_date",
    ),
    # several faults at once: every one is reported
    "several fields at once": sp(
        pr_with(
            lambda c: {
                "subscriber": person(name="\x00", document=dni("1234567")),
                "numbers": [block("94000005"), block("940000051", modality=0)],
                "received_at": None,
                "form_number": "x" * 41,
                "installation_date": day("2026-13-01"),
            }
        ),
        "subscriber.name",
        "subscriber.document.number",
        "numbers[0].first",
        "numbers[1].modality",
        "received_at",
        "form_number",
        "installation_date",
    ),
}


def cp(**kw: Any) -> Callable[[Ctx], Any]:
    """A SubmitPriorConsultation for a free number with some fields replaced."""

    def build(c: Ctx) -> Any:
        values: dict[str, Any] = {
            "request_id": rid(),
            "donor": "movistar",
            "service": MOBILE,
            "document": dni(),
            "numbers": [block("940000060")],
        }
        values.update(kw)
        return pb.SubmitPriorConsultationRequest(**values)

    return build


def spc(build: Callable[[Ctx], Any], *fields: str) -> Case:
    return Case("claro", "SubmitPriorConsultation", build, fields)


SUBMIT_PRIOR_CONSULTATION = {
    "missing request_id": spc(cp(request_id=""), "request_id"),
    "donor empty": spc(cp(donor=""), "donor"),
    "donor with symbols": spc(cp(donor="movi$tar"), "donor"),
    "service unspecified": spc(cp(service=0), "service"),
    "service unknown value": spc(cp(service=5), "service"),
    "document missing": spc(cp(document=None), "document.type"),
    "DNI 7 digits": spc(cp(document=dni("1234567")), "document.number"),
    "RUC bad check digit": spc(
        cp(
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_RUC, number="10123456782"
            )
        ),
        "document.number",
    ),
    "other document with spaces": spc(
        cp(
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_OTHER, number="AB 1234"
            )
        ),
        "document.number",
    ),
    "numbers empty": spc(cp(numbers=[]), "numbers"),
    "number 8 digits": spc(cp(numbers=[block("94000006")]), "numbers[0].first"),
    "number not starting with 9": spc(cp(numbers=[block("740000060")]), "numbers[0].first"),
    "range last below first": spc(cp(numbers=[block("940000069", "940000060")]), "numbers[0].last"),
    "duplicate number": spc(cp(numbers=[block("940000060"), block("940000060")]), "numbers[1]"),
    "too many numbers": spc(cp(numbers=[block("940100000", "940110000")]), "numbers"),
    "modality unspecified": spc(
        cp(numbers=[block("940000060", modality=0)]), "numbers[0].modality"
    ),
}


def debt(
    amount: str = "120.50", currency: str = "PEN", due_date: Date | str | None = "2026-10-31"
) -> pb.Debt:
    due = day(due_date) if isinstance(due_date, str) else due_date
    return pb.Debt(owed=common_pb2.Money(amount=amount, currency=currency), due_date=due)


def objection(reason: int = pb.OBJECTION_REASON_SERVICE_SUSPENDED, **kw: Any) -> pb.Objection:
    return pb.Objection(reason=pb.ObjectionReason.ValueType(reason), **kw)


def answer_cases(method: str, id_field: str, prefix: str, other: str) -> dict[str, Case]:
    """Malformed answers of the donor (movistar) to a port request or a prior consultation."""
    request_type = (
        pb.AnswerPortRequestRequest
        if method == "AnswerPortRequest"
        else pb.AnswerPriorConsultationRequest
    )

    def ans(case_id: str | None = None, **kw: Any) -> Callable[[Ctx], Any]:
        def build(c: Ctx) -> Any:
            own = c.port_request_id if prefix == "SP" else c.consultation_id
            values: dict[str, Any] = {
                "request_id": rid(),
                id_field: own if case_id is None else case_id,
                "accept": False,
                "objection": objection(),
            }
            values.update(kw)
            return request_type(**values)

        return build

    def case(build: Callable[[Ctx], Any], *fields: str) -> Case:
        return Case("movistar", method, build, fields)

    debt_reason = pb.OBJECTION_REASON_DEBT
    return {
        "missing request_id": case(ans(request_id=""), "request_id"),
        f"{id_field} empty": case(ans(""), id_field),
        f"{id_field} of the other kind": case(ans(f"{other}0000000001"), id_field),
        f"{id_field} too short": case(ans(f"{prefix}123"), id_field),
        f"{id_field} lowercase": case(ans(f"{prefix.lower()}0000000001"), id_field),
        f"{id_field} trailing newline": case(ans(f"{prefix}0000000001\n"), id_field),
        f"{id_field} arabic-indic digits": case(ans(f"{prefix}٠٠٠٠٠٠٠٠٠١"), id_field),
        "objecting without objection": case(ans(objection=None), "objection"),
        "accepting with an objection": case(ans(accept=True), "objection"),
        "objection reason unspecified": case(
            ans(objection=objection(pb.OBJECTION_REASON_UNSPECIFIED)), "objection.reason"
        ),
        "objection reason unknown value": case(ans(objection=objection(3)), "objection.reason"),
        "objection detail with control": case(
            ans(objection=objection(detail="no\x00pago")), "objection.detail"
        ),
        "objection detail too long": case(
            ans(objection=objection(detail="d" * 501)), "objection.detail"
        ),
        "debt without debt block": case(
            ans(objection=objection(debt_reason)),
            "objection.debt.owed.amount",
            "objection.debt.owed.currency",
            "objection.debt.due_date",
        ),
        "debt without amount": case(
            ans(objection=objection(debt_reason, debt=debt(amount=""))),
            "objection.debt.owed.amount",
        ),
        "debt amount zero": case(
            ans(objection=objection(debt_reason, debt=debt(amount="0.00"))),
            "objection.debt.owed.amount",
        ),
        "debt amount negative": case(
            ans(objection=objection(debt_reason, debt=debt(amount="-10"))),
            "objection.debt.owed.amount",
        ),
        "debt amount exponent": case(
            ans(objection=objection(debt_reason, debt=debt(amount="1e3"))),
            "objection.debt.owed.amount",
        ),
        "debt amount three decimals": case(
            ans(objection=objection(debt_reason, debt=debt(amount="10.505"))),
            "objection.debt.owed.amount",
        ),
        "debt amount trailing newline": case(
            ans(objection=objection(debt_reason, debt=debt(amount="120\n"))),
            "objection.debt.owed.amount",
        ),
        "debt without currency": case(
            ans(objection=objection(debt_reason, debt=debt(currency=""))),
            "objection.debt.owed.currency",
        ),
        "debt currency lowercase": case(
            ans(objection=objection(debt_reason, debt=debt(currency="pen"))),
            "objection.debt.owed.currency",
        ),
        "debt currency trailing newline": case(
            ans(objection=objection(debt_reason, debt=debt(currency="PEN\n"))),
            "objection.debt.owed.currency",
        ),
        "debt without due date": case(
            ans(objection=objection(debt_reason, debt=debt(due_date=None))),
            "objection.debt.due_date",
        ),
        "debt due date impossible": case(
            ans(objection=objection(debt_reason, debt=debt(due_date=day("2026-02-30")))),
            "objection.debt.due_date",
        ),
        "debt due date without a year": case(
            ans(objection=objection(debt_reason, debt=debt(due_date=Date(month=10, day=31)))),
            "objection.debt.due_date",
        ),
        "debt bill number with spaces": case(
            ans(
                objection=objection(
                    debt_reason,
                    debt=pb.Debt(
                        owed=common_pb2.Money(amount="10", currency="PEN"),
                        due_date=day("2026-10-31"),
                        bill_number="B 001",
                    ),
                )
            ),
            "objection.debt.bill_number",
        ),
    }


def recipient_case(method: str, request_type: Any, **defaults: Any):
    """Builder of malformed recipient (claro) commands on the existing port request."""

    def make(fields: tuple[str, ...], **kw: Any) -> Case:
        def build(c: Ctx) -> Any:
            values: dict[str, Any] = {"request_id": rid(), "port_request_id": c.port_request_id}
            for key, value in defaults.items():
                values[key] = value(c) if callable(value) else value
            for key, value in kw.items():
                values[key] = value(c) if callable(value) else value
            return request_type(**values)

        return Case("claro", method, build, fields)

    return make


proof = recipient_case(
    "SubmitDebtPaymentProof",
    pb.SubmitDebtPaymentProofRequest,
    receipt_number="R-2026-001",
    paid_at=lambda c: ts(c.clock.now() - timedelta(hours=1)),
)
SUBMIT_DEBT_PAYMENT_PROOF = {
    "missing request_id": proof(("request_id",), request_id=""),
    "port_request_id empty": proof(("port_request_id",), port_request_id=""),
    "port_request_id of a consultation": proof(
        ("port_request_id",), port_request_id="CP0000000001"
    ),
    "receipt_number empty": proof(("receipt_number",), receipt_number=""),
    "receipt_number with space": proof(("receipt_number",), receipt_number="R 1"),
    "receipt_number too long": proof(("receipt_number",), receipt_number="R" * 41),
    "receipt_number with control": proof(("receipt_number",), receipt_number="R-1\n"),
    "paid_at missing": proof(("paid_at",), paid_at=None),
    "paid_at two years ago": proof(
        ("paid_at",), paid_at=lambda c: ts(c.clock.now() - timedelta(days=730))
    ),
    "paid_at an hour ahead": proof(
        ("paid_at",), paid_at=lambda c: ts(c.clock.now() + timedelta(hours=1))
    ),
    "paid_at invalid instant": proof(("paid_at",), paid_at=bad_instant()),
}

install = recipient_case(
    "ReportInstallation",
    pb.ReportInstallationRequest,
    port_request_id=lambda c: c.fixed_request_id,
    installation_date=day("2026-11-22"),
)
REPORT_INSTALLATION = {
    "missing request_id": install(("request_id",), request_id=""),
    "port_request_id malformed": install(("port_request_id",), port_request_id="SP-1"),
    "installation_date unset": install(("installation_date",), installation_date=None),
    "installation_date month 13": install(
        ("installation_date",), installation_date=day("2026-13-01")
    ),
    "installation_date set but empty": install(("installation_date",), installation_date=Date()),
    "installation_date year 10000": install(
        ("installation_date",), installation_date=Date(year=10000, month=1, day=1)
    ),
    "installation_date in the future": install(
        ("installation_date",), installation_date=day("2026-11-25")
    ),
    "installation_date and port_request_id": install(
        ("port_request_id", "installation_date"),
        port_request_id="SP-1",
        installation_date=day("2026-02-29"),
    ),
}

schedule = recipient_case(
    "SchedulePort",
    pb.SchedulePortRequest,
    scheduled_at=lambda c: ts(c.clock.now() + timedelta(hours=14)),
)
SCHEDULE_PORT = {
    "missing request_id": schedule(("request_id",), request_id=""),
    "port_request_id empty": schedule(("port_request_id",), port_request_id=""),
    "port_request_id with space": schedule(("port_request_id",), port_request_id="SP 0000000001"),
    "scheduled_at missing": schedule(("scheduled_at",), scheduled_at=None),
    "scheduled_at invalid instant": schedule(("scheduled_at",), scheduled_at=bad_instant()),
    "scheduled_at negative nanos": schedule(
        ("scheduled_at",), scheduled_at=bad_instant(1_800_000_000, -5)
    ),
}


def confirm(fields: tuple[str, ...], caller: str = "movistar", **kw: Any) -> Case:
    def build(c: Ctx) -> Any:
        values: dict[str, Any] = {
            "request_id": rid(),
            "port_request_id": c.port_request_id,
            "step": pb.EXECUTION_STEP_DONOR_DISABLED,
        }
        for key, value in kw.items():
            values[key] = value(c) if callable(value) else value
        return pb.ConfirmPortExecutionRequest(**values)

    return Case(caller, "ConfirmPortExecution", build, fields)


CONFIRM_PORT_EXECUTION = {
    "missing request_id": confirm(("request_id",), request_id=""),
    "port_request_id malformed": confirm(("port_request_id",), port_request_id="SP00000000012"),
    "step unspecified": confirm(("step",), step=pb.EXECUTION_STEP_UNSPECIFIED),
    "step unknown value": confirm(("step",), step=9),
    "done_at eight days ago": confirm(
        ("done_at",), done_at=lambda c: ts(c.clock.now() - timedelta(days=8))
    ),
    "done_at an hour ahead": confirm(
        ("done_at",), done_at=lambda c: ts(c.clock.now() + timedelta(hours=1))
    ),
    "done_at invalid instant": confirm(("done_at",), done_at=bad_instant()),
}


def get_request(value: str) -> Case:
    return Case(
        "claro",
        "GetPortRequest",
        lambda c: pb.GetPortRequestRequest(port_request_id=value),
        ("port_request_id",),
    )


GET_PORT_REQUEST = {
    "empty": get_request(""),
    "lowercase": get_request("sp0000000001"),
    "trailing space": get_request("SP0000000001 "),
    "trailing newline": get_request("SP0000000001\n"),
    "consultation id": get_request("CP0000000001"),
    "sql-ish": get_request("SP0000000001' OR '1'='1"),
    "arabic-indic digits": get_request("SP٠٠٠٠٠٠٠٠٠١"),
}


def get_consultation(value: str) -> Case:
    return Case(
        "claro",
        "GetPriorConsultation",
        lambda c: pb.GetPriorConsultationRequest(consultation_id=value),
        ("consultation_id",),
    )


GET_PRIOR_CONSULTATION = {
    "empty": get_consultation(""),
    "port request id": get_consultation("SP0000000001"),
    "too short": get_consultation("CP1"),
    "trailing newline": get_consultation("CP0000000001\n"),
}


def list_requests(fields: tuple[str, ...], **kw: Any) -> Case:
    return Case("claro", "ListPortRequests", lambda c: pb.ListPortRequestsRequest(**kw), fields)


LIST_PORT_REQUESTS = {
    "page_size negative": list_requests(("page_size",), page_size=-1),
    "page_size too large": list_requests(("page_size",), page_size=501),
    "page_token garbage": list_requests(("page_token",), page_token="not-a-token!"),
    "page_token base64 of junk": list_requests(("page_token",), page_token="aGVsbG8="),
    "page_token not utf-8": list_requests(("page_token",), page_token="__79"),
    "state unknown value": list_requests(("state",), state=42),
}


def _cases() -> list[Any]:
    groups = {
        "SubmitPortRequest": SUBMIT_PORT_REQUEST,
        "SubmitPriorConsultation": SUBMIT_PRIOR_CONSULTATION,
        "AnswerPortRequest": answer_cases("AnswerPortRequest", "port_request_id", "SP", "CP"),
        "AnswerPriorConsultation": answer_cases(
            "AnswerPriorConsultation", "consultation_id", "CP", "SP"
        ),
        "GetPriorConsultation": GET_PRIOR_CONSULTATION,
        "SubmitDebtPaymentProof": SUBMIT_DEBT_PAYMENT_PROOF,
        "ReportInstallation": REPORT_INSTALLATION,
        "SchedulePort": SCHEDULE_PORT,
        "ConfirmPortExecution": CONFIRM_PORT_EXECUTION,
        "GetPortRequest": GET_PORT_REQUEST,
        "ListPortRequests": LIST_PORT_REQUESTS,
    }
    params = []
    for method, cases in groups.items():
        for name, case in cases.items():
            assert case.method == method
            params.append(pytest.param(case, id=f"{method}: {name}"))
    return params


async def _state_of(app, case_id: str) -> str:
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT state FROM port_requests WHERE id = $1"
            " UNION ALL SELECT state FROM prior_consultations WHERE id = $1",
            case_id,
        )


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", _cases())
async def test_malformed_request_is_refused_and_nothing_is_stored(
    shared_app, shared_operators, ctx, case
):
    app, operators = shared_app, shared_operators
    request = case.build(ctx)
    before = await row_counts(app)
    states = {i: await _state_of(app, i) for i in (ctx.port_request_id, ctx.consultation_id)}

    try:
        answer = await operators[case.caller].call(case.method, request)
    except grpc.aio.AioRpcError as refused:
        error = refused
    else:
        pytest.fail(f"accepted instead of {case.code.name}: {str(answer)[:300]!r}")
    assert error.code() == case.code, error.details()
    violations = field_violations(error)
    for name in case.fields:
        assert name in violations, f"{name} not named in {violations}"
        assert violations[name]
    # Only the named fields are blamed (a wrong field path would send integrators astray).
    assert set(violations) == set(case.fields), violations
    await settle(app)
    assert await row_counts(app) == before
    assert {i: await _state_of(app, i) for i in states} == states


# ------------------------------------------------------------------- well-formed controls


@pytest.mark.parametrize(
    "name",
    ["José Ñúñez Ávila", "Jose\u0301 Quispe", "O'Brien-Mamani", "Empresa S.A.C.", "李小龍"],
)
@pytest.mark.asyncio(loop_scope="module")  # one accepted request each, on a number of its own
async def test_ordinary_unicode_names_are_accepted(shared_operators, shared_clock, name):
    number = str(next(_unused_numbers))
    filed = await shared_operators["claro"].call(
        "SubmitPortRequest",
        port_request(shared_clock, subscriber=person(name=name), numbers=[block(number)]),
    )
    assert filed.subscriber.name == name


async def test_valid_documents_are_accepted(app, operators, clock):
    claro = operators["claro"]
    documents = [
        common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_RUC, number="20100070970"),
        common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_RUC, number="10123456781"),
        common_pb2.IdentityDocument(
            type=common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA, number="CE0012345"
        ),
        common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_OTHER, number="PA-123456"),
    ]
    for index, document in enumerate(documents):
        filed = await claro.call(
            "SubmitPortRequest",
            port_request(
                clock,
                subscriber=person(document=document),
                numbers=[block(f"94000010{index}")],
            ),
        )
        assert filed.subscriber.document == document


async def test_range_at_the_limit_is_accepted(app, operators, clock):
    """Exactly the per-request maximum is fine; one more is refused (see the cases above)."""
    limit = app.settings.portability.max_numbers_per_request
    filed = await operators["claro"].call(
        "SubmitPortRequest",
        port_request(clock, numbers=[block("940100000", str(940100000 + limit - 1))]),
        timeout=60,
    )
    assert filed.number_count == limit
    assert filed.special_client


# --------------------------------------------------------------------------- event stream


async def _subscribe_error(client, request: events_pb2.SubscribeRequest) -> grpc.aio.AioRpcError:
    call = client.events.Subscribe(request, metadata=client.metadata)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), 5)
    finally:
        call.cancel()
    return raised.value


@pytest.mark.parametrize(
    ("request_fields", "code", "field_name"),
    [
        pytest.param(
            {"from_position": -1}, grpc.StatusCode.INVALID_ARGUMENT, "from_position", id="negative"
        ),
        pytest.param(
            {"from_position": -(2**63)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "from_position",
            id="most negative",
        ),
        pytest.param(
            {"from_position": 1000}, grpc.StatusCode.OUT_OF_RANGE, "from_position", id="beyond head"
        ),
        pytest.param(
            {"from_position": 2**63 - 1},
            grpc.StatusCode.OUT_OF_RANGE,
            "from_position",
            id="int64 max",
        ),
        pytest.param(
            {"flows": ["not a flow!"]}, grpc.StatusCode.INVALID_ARGUMENT, "flows", id="bad flow"
        ),
        pytest.param(
            {"flows": ["portability\n"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "flows",
            id="flow with newline",
        ),
        pytest.param(
            {"flows": [f"f{i}" for i in range(21)]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "flows",
            id="too many flows",
        ),
        pytest.param(
            {"flows": ["x" * 41]}, grpc.StatusCode.INVALID_ARGUMENT, "flows", id="flow too long"
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_subscribe_is_refused(
    shared_app, shared_operators, ctx, request_fields, code, field_name
):
    app, operators = shared_app, shared_operators
    before = await row_counts(app)
    error = await _subscribe_error(
        operators["claro"], events_pb2.SubscribeRequest(**request_fields)
    )
    assert error.code() == code, error.details()
    assert set(field_violations(error)) == {field_name}
    assert head(app) < 1000
    assert await row_counts(app) == before


@pytest.mark.asyncio(loop_scope="module")
async def test_subscribe_at_the_head_is_accepted(shared_app, shared_operators, ctx):
    """The head itself is a valid position: the stream opens and waits for live events."""
    app, operators = shared_app, shared_operators
    client = operators["claro"]
    call = client.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=head(app)), metadata=client.metadata
    )
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call.read(), 0.5)
    finally:
        call.cancel()
