"""SGU registration (issue 15, item 11; seed 001): the claim code goes to the subscriber by e-mail,
so a registration that may need it asks for an address; fixed-service subcategories of the
catalogue register fixed lines. Through the `handlers` fixture."""

from __future__ import annotations

from typing import Any

import pytest

from npc.core.errors import InvalidArgument, Reason
from npc.core.identity import Caller
from npc.flows.sgu import convert
from npc.flows.sgu.emails import service_word
from npc.flows.sgu.handler import SguHandler
from npc.flows.sgu.rules import CLAIM_EMAIL_REQUIRED
from npc.store.database import Txn
from npc.v1 import common_pb2, sgu_pb2
from tests.helpers import Handlers

REGULATOR = Caller("osiptel", role="regulator")
OFFICE = sgu_pb2.Office(code="CUS-01", name="Oficina Cusco", department="Cusco")
# A fixed-service subcategory the regulator adds to the catalogue (a later stage, seed 001).
FIXED = sgu_pb2.Subcategory(
    code="FIJ-01",
    name="Línea fija sin tono",
    category="FIJ",
    category_name="Telefonía fija",
    service="fixed",
    deadline_unit=sgu_pb2.DEADLINE_UNIT_BUSINESS_DAYS,
    deadline_amount=2,
    claimable=False,
    claim_business_days=3,
    active=True,
)


def sgu(handlers: Handlers) -> SguHandler:
    handler = handlers.flow("sgu").handler  # type: ignore[attr-defined]
    assert isinstance(handler, SguHandler)
    return handler


async def register(handlers: Handlers, **fields: Any) -> Any:
    """RegisterProblem at an office (no confirmation needed) for the regulator's identity."""
    values: dict[str, Any] = {
        "channel": sgu_pb2.CHANNEL_OFFICE,
        "subscriber": common_pb2.Subscriber(
            name="Rosa Quispe Mamani",
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
            ),
        ),
        "number": "940000001",
        "subcategory": "REC-01",
        "description": "Recargué 10 soles y no se acreditaron.",
        "office": OFFICE,
        "registered_by": "Orientadora Ana Huamán",
    }
    values.update(fields)
    command = convert.register_problem(sgu_pb2.RegisterProblemRequest(**values))
    flow = sgu(handlers)

    async def run(txn: Txn) -> Any:
        return await flow.register_problem(txn, REGULATOR, command)

    return await handlers.perform("RegisterProblem", run)


def with_email(email: str) -> common_pb2.Subscriber:
    return common_pb2.Subscriber(
        name="Rosa Quispe Mamani",
        document=common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"),
        email=email,
    )


async def test_a_problem_that_may_become_a_claim_needs_an_email(handlers: Handlers):
    # Claimable: the code could not reach the subscriber; nothing is stored.
    with pytest.raises(InvalidArgument) as error:
        await register(handlers, subscriber=with_email(""))
    assert error.value.reason == Reason.INVALID_FIELDS
    assert [(v.field, v.description) for v in error.value.violations] == [
        ("subscriber.email", CLAIM_EMAIL_REQUIRED)
    ]
    async with handlers.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sgu_problems") == 0
    row = await register(handlers, subscriber=with_email("rosa@example.pe"))
    assert (row["state"], row["email"]) == ("in_tray", "rosa@example.pe")
    # Never a claim: no address needed at an office.
    row = await register(handlers, subscriber=with_email(""), subcategory="INF-01")
    assert (row["state"], row["email"]) == ("in_tray", None)


async def test_a_fixed_subcategory_registers_a_fixed_line_and_only_that(handlers: Handlers):
    flow = sgu(handlers)

    async def add(txn: Txn) -> Any:
        request = sgu_pb2.UpsertSubcategoryRequest(subcategory=FIXED)
        return await flow.upsert_subcategory(txn, REGULATOR, convert.upsert_subcategory(request))

    await handlers.perform("UpsertSubcategory", add)
    row = await register(handlers, number="12000001", subcategory="FIJ-01")
    assert (row["operator"], row["state"], row["number"]) == ("movistar", "in_tray", "12000001")
    with pytest.raises(InvalidArgument) as mobile:
        await register(handlers, number="940000001", subcategory="FIJ-01")
    assert [v.field for v in mobile.value.violations] == ["number"]
    assert (service_word("12000001"), service_word("940000001")) == ("fijo", "móvil")
