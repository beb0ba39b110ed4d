"""Improper objections (003 art. 22, infraction 23): the pure findings of `rules`, then the
handler recording each one in the compliance ledger with its evidence, and not recording the proper
objection on the other side of each boundary (the `handlers` fixture: a transaction and the fake
clock, no gRPC). The clock starts Monday 23 November 2026, 10:00 in Lima (UTC-5 all year).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asyncpg import Record

from npc.config import PortabilitySettings
from npc.core import numbers
from npc.core.calendar import PERU
from npc.flows.portability import convert as C
from npc.flows.portability import rules as R
from npc.flows.portability.flow import PortabilityFlow
from npc.flows.portability.handler import PortabilityHandler
from npc.store.database import Txn
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import Handlers, block, day, port_request, ts

LIMA = ZoneInfo("America/Lima")
SECOND = timedelta(seconds=1)


def lima(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A Lima wall-clock instant, as UTC."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LIMA).astimezone(UTC)


# ----------------------------------------------------------------------------- pure findings


def test_a_debt_is_exigible_from_the_midnight_after_its_due_date():
    timeline = R.Timeline(PERU, PortabilitySettings())
    assert timeline.debt_exigible_from(date(2026, 11, 22)) == lima(2026, 11, 23)


@pytest.mark.parametrize(("offset", "improper"), [(-SECOND, True), (timedelta(0), False)])
def test_debt_not_exigible_at_presentation(offset, improper):
    exigible_from = lima(2026, 11, 23)
    assert R.debt_not_exigible(exigible_from, exigible_from + offset) is improper


@pytest.mark.parametrize(
    ("modalities", "improper"),
    [(["prepaid"], True), (["prepaid", "prepaid"], True), (["prepaid", "postpaid"], False)],
)
def test_debt_on_a_prepaid_line(modalities, improper):
    assert R.debt_on_prepaid_line(modalities) is improper


@pytest.mark.parametrize(
    ("serving", "improper"),
    [(["movistar", "movistar"], True), (["movistar", "entel"], False), ([None], False)],
)
def test_number_not_owned_contradicted_by_the_registry(serving, improper):
    assert R.ownership_contradicted("movistar", serving) is improper


@pytest.mark.parametrize(
    ("services", "improper"), [(["mobile"], True), (["mobile", "fixed"], False), ([None], False)]
)
def test_wrong_service_contradicted_by_the_registry(services, improper):
    assert R.service_contradicted("mobile", services) is improper


@pytest.mark.parametrize(("offset", "improper"), [(-SECOND, True), (timedelta(0), False)])
def test_payment_dated_before_the_presentation(offset, improper):
    received_at = lima(2026, 11, 23, 10)
    assert R.paid_before_presentation(received_at + offset, received_at) is improper


# ----------------------------------------------------------------------------- the handler


def _portability(handlers: Handlers) -> PortabilityHandler:
    flow = handlers.flow("portability")
    assert isinstance(flow, PortabilityFlow) and flow.handler is not None
    return flow.handler


async def _file(
    handlers: Handlers,
    number: str,
    *,
    modality: int = common_pb2.MODALITY_POSTPAID,
    received_at: datetime | None = None,
) -> Record:
    message = port_request(
        handlers.clock,
        numbers=[block(number, modality=modality)],
        received_at=ts(received_at or handlers.clock.now()),
    )
    command = C.port_request_submission(message)

    async def submit(txn: Txn) -> Record:
        return await _portability(handlers).submit_port_request(
            txn, handlers.caller("claro"), command
        )

    return await handlers.perform("test.submit", submit)


def _debt(due: str) -> pb.Objection:
    return pb.Objection(
        reason=pb.OBJECTION_REASON_DEBT,
        debt=pb.Debt(owed=common_pb2.Money(amount="80.00", currency="PEN"), due_date=day(due)),
    )


async def _object(handlers: Handlers, case_id: str, objection: pb.Objection) -> Record:
    message = pb.AnswerPortRequestRequest(
        port_request_id=case_id, accept=False, objection=objection
    )
    command = C.port_request_answer(message)

    async def answer(txn: Txn) -> Record:
        return await _portability(handlers).answer_port_request(
            txn, handlers.caller("movistar"), command
        )

    return await handlers.perform("test.answer", answer)


async def _prove(handlers: Handlers, case_id: str, paid_at: datetime) -> Record:
    message = pb.SubmitDebtPaymentProofRequest(
        port_request_id=case_id, receipt_number="R-9/2026", paid_at=ts(paid_at)
    )
    command = C.debt_payment_proof(message)

    async def prove(txn: Txn) -> Record:
        return await _portability(handlers).submit_debt_payment_proof(
            txn, handlers.caller("claro"), command
        )

    return await handlers.perform("test.prove", prove)


async def _improper(handlers: Handlers, case_id: str) -> list[dict[str, Any]]:
    """The case's improper-objection records (a late registration may add infraction 20's)."""
    async with handlers.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, infraction, severity, due_at, evidence FROM compliance_records"
            " WHERE case_id = $1 AND rule = 'improper_objection'",
            case_id,
        )
    return [dict(r) for r in rows]


def _only(records: list[dict[str, Any]]) -> dict[str, Any]:
    [record] = records
    assert (record["operator_id"], record["infraction"], record["severity"]) == (
        "movistar",
        23,
        "muy_grave",
    )
    evidence: dict[str, Any] = record["evidence"]
    return evidence


async def test_debt_objection_before_the_debt_is_exigible(handlers):
    """Due 22 November: exigible from 23 November 00:00. Presented one second before: flagged;
    presented at that instant: a proper objection."""
    exigible_from = lima(2026, 11, 23)
    early = await _file(handlers, "940000801", received_at=exigible_from - SECOND)
    on_time = await _file(handlers, "940000802", received_at=exigible_from)
    for filed in (early, on_time):
        objected = await _object(handlers, filed["id"], _debt("2026-11-22"))
        assert objected["state"] == R.State.OBJECTED_DEBT  # the objection takes its course

    assert await _improper(handlers, on_time["id"]) == []
    assert _only(await _improper(handlers, early["id"])) == {
        "findings": ["debt_not_exigible"],
        "objection_reason": "debt",
        "received_at": (exigible_from - SECOND).isoformat(),
        "objected_at": handlers.clock.now().isoformat(),
        "due_date": "2026-11-22",
        "exigible_from": exigible_from.isoformat(),
    }


async def test_debt_objection_on_a_prepaid_line(handlers):
    prepaid = await _file(handlers, "940000803", modality=common_pb2.MODALITY_PREPAID)
    postpaid = await _file(handlers, "940000804", modality=common_pb2.MODALITY_POSTPAID)
    for filed in (prepaid, postpaid):
        await _object(handlers, filed["id"], _debt("2026-11-10"))

    assert await _improper(handlers, postpaid["id"]) == []
    evidence = _only(await _improper(handlers, prepaid["id"]))
    assert evidence["findings"] == ["debt_on_prepaid_line"]
    assert evidence["modality"] == "prepaid"
    assert evidence["due_date"] == "2026-11-10"


# (number, objection reason, the number ported away before the answer, the finding expected)
REGISTRY_CASES = [
    ("940000805", pb.OBJECTION_REASON_NUMBER_NOT_OWNED, False, "number_served_by_donor"),
    ("940000806", pb.OBJECTION_REASON_NUMBER_NOT_OWNED, True, None),
    ("940000807", pb.OBJECTION_REASON_WRONG_SERVICE_TYPE, False, "service_type_matches"),
    ("940000808", pb.OBJECTION_REASON_DOCUMENT_MISMATCH, False, None),
]


async def test_objections_the_registry_contradicts(handlers):
    filed = {number: await _file(handlers, number) for number, *_ in REGISTRY_CASES}
    away = [number for number, _, ported_away, _ in REGISTRY_CASES if ported_away]

    async def port_away(txn: Txn) -> int:
        # The registry changed after the filing: the number is no longer the donor's.
        return await numbers.move_numbers(txn, away, "entel", reason="port", case_id="SP9999999999")

    assert await handlers.perform("test.port", port_away) == len(away)
    for number, reason, _, finding in REGISTRY_CASES:
        case_id = filed[number]["id"]
        rejected = await _object(handlers, case_id, pb.Objection(reason=reason))
        assert rejected["state"] == R.State.REJECTED
        records = await _improper(handlers, case_id)
        if finding is None:
            assert records == [], number
            continue
        evidence = _only(records)
        assert evidence["findings"] == [finding]
        assert evidence["request_service"] == "mobile"
        assert evidence["number_count"] == 1
        assert evidence["registry"] == [
            {"number": number, "serving": "movistar", "service": "mobile"}
        ]


async def test_payment_proven_before_the_presentation(handlers):
    """Paid one second before the presentation: flagged; paid at it: a proper objection."""
    before = await _file(handlers, "940000809")
    at = await _file(handlers, "940000810")
    received_at = before["received_at"]
    handlers.clock.advance(timedelta(minutes=1))
    for filed in (before, at):
        await _object(handlers, filed["id"], _debt("2026-11-10"))
        assert await _improper(handlers, filed["id"]) == []  # a proper debt objection

    for filed, paid_at in ((before, received_at - SECOND), (at, received_at)):
        lifted = await _prove(handlers, filed["id"], paid_at)
        assert lifted["state"] == R.State.ADMISSIBLE
    assert await _improper(handlers, at["id"]) == []
    assert _only(await _improper(handlers, before["id"])) == {
        "findings": ["paid_before_presentation"],
        "objection_reason": "debt",
        "received_at": received_at.isoformat(),
        "objected_at": lima(2026, 11, 23, 10, 1).isoformat(),
        "paid_at": (received_at - SECOND).isoformat(),
        "receipt_number": "R-9/2026",
    }
