"""Fixtures of the PQR tests: the Colombian demo providers, their CUN ranges and the SIC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from npc.admin import OperatorSpec, upsert_operator
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import pqr_pb2, pqr_pb2_grpc
from tests.helpers import rid


@dataclass
class Party:
    """One operator's PqrService stub with its identity."""

    operator: str
    stub: pqr_pb2_grpc.PqrServiceStub
    metadata: Any

    async def __call__(self, method: str, request: Any) -> Any:
        return await getattr(self.stub, method)(request, metadata=self.metadata, timeout=10)


class Colombia:
    """PqrService clients by operator id."""

    def __init__(self, operators: Any) -> None:
        self.operators = operators

    def __getitem__(self, operator: str) -> Party:
        client = self.operators[operator]
        return Party(operator, pqr_pb2_grpc.PqrServiceStub(client.channel), client.metadata)


@pytest.fixture
async def co(app, operators, clock) -> Colombia:
    """Colombian providers (claro-co, movistar-co, tigo) with CUN ranges, and the SIC."""
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    return Colombia(operators)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_co(module_app: Any, module_operators: Any, module_clock: Any) -> Colombia:
    """`co` on the module's shared clearinghouse (`module_app`), for cases that store nothing."""
    await seed_colombia(module_app.core.db, module_clock.now())
    await module_app.authenticator.load()
    return Colombia(module_operators)


async def new_provider(app, operator: str, routing_code: str) -> None:
    """Register a Colombian provider with no CUN range yet (token dev-token-<operator>)."""
    await upsert_operator(
        app.core.db,
        OperatorSpec(
            operator, operator.title(), routing_code, f"dev-token-{operator}", country="CO"
        ),
    )
    await app.authenticator.load()


def user(**overrides: Any) -> pqr_pb2.UserData:
    """A user with a cédula and an e-mail notification address."""
    fields: dict[str, Any] = {
        "name": "Luz Marina Gómez",
        "document_type": pqr_pb2.USER_DOCUMENT_TYPE_CC,
        "document_number": "52123456",
        "email": "luz@example.co",
        "phone": "3001234567",
    }
    fields.update(overrides)
    return pqr_pb2.UserData(**fields)


def filing(**overrides: Any) -> pqr_pb2.FilePqrRequest:
    """A complaint about billing, presented at the website."""
    fields: dict[str, Any] = {
        "request_id": rid(),
        "kind": pqr_pb2.PQR_KIND_COMPLAINT,
        "channel": pqr_pb2.PQR_CHANNEL_WEBSITE,
        "subject": pqr_pb2.PQR_SUBJECT_BILLING,
        "user": user(),
        "facts": "Me cobraron dos veces el plan de noviembre.",
    }
    fields.update(overrides)
    return pqr_pb2.FilePqrRequest(**fields)


async def records(app, case_id: str) -> list[str]:
    """Rules of the compliance records of a case, in order."""
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT rule FROM compliance_records WHERE case_id = $1 ORDER BY id", case_id
        )
    return [r["rule"] for r in rows]


async def notifications(app, case_id: str) -> list[tuple[str, str, str]]:
    """(channel, recipient, body) of the notifications queued for a case."""
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT channel, recipient, body FROM notifications WHERE case_id = $1 ORDER BY id",
            case_id,
        )
    return [(r["channel"], r["recipient"], r["body"]) for r in rows]


async def events(app, case_id: str) -> list[tuple[str, list[str]]]:
    """(type, audience) of the events of a case, in order."""
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT type, audience FROM events WHERE case_id = $1 ORDER BY id", case_id
        )
    return [(r["type"], list(r["audience"])) for r in rows]
