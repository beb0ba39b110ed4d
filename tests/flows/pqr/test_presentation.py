"""PQR terms from the user's presentation (issue 15, item 10; art. 2.1.5.2, 2.1.5.3, 2.1.5.9.1):
the 15 business days run from the day after the presentation, not the registration, across a
weekend and a Colombian holiday; the reposición's 10 days judge its presentation; a verbal PQR
needs no notification address. Through the `handlers` fixture; one wire test for the new fields.
Bogotá is UTC-5 all year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest

from npc.core.calendar import COLOMBIA
from npc.core.errors import FailedPrecondition, InvalidArgument
from npc.flows.pqr import convert
from npc.flows.pqr.handler import PqrHandler
from npc.flows.pqr.model import PqrCase
from npc.flows.pqr.seed import seed_colombia
from npc.store.database import Txn
from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import filing, user
from tests.helpers import Handlers, field_violations, ts

SECOND = timedelta(seconds=1)
# Presented on Friday 27 November 2026 at 16:00 in Bogotá, registered on Monday 30 November at
# 10:00: the 15 business days from Monday 30 November skip the weekends and Tuesday 8 December
# (Inmaculada Concepción) and end with Monday 21 December, at Bogotá's midnight.
PRESENTED = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
REGISTERED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 22, 5, 0, tzinfo=UTC)


def pqr(handlers: Handlers) -> PqrHandler:
    handler = handlers.flow("pqr").handler  # type: ignore[attr-defined]
    assert isinstance(handler, PqrHandler)
    return handler


async def colombia(handlers: Handlers) -> None:
    await seed_colombia(handlers.core.db, handlers.clock.now())


async def file(handlers: Handlers, request: pqr_pb2.FilePqrRequest) -> PqrCase:
    flow = pqr(handlers)

    async def command(txn: Txn) -> PqrCase:
        caller = handlers.caller("claro-co", country="CO")
        return await flow.file_pqr(txn, caller, convert.file_pqr(request))

    return await handlers.perform("FilePqr", command)


async def run(handlers: Handlers, name: str, method: str, model: Any) -> PqrCase:
    flow = pqr(handlers)

    async def command(txn: Txn) -> PqrCase:
        caller = handlers.caller("claro-co", country="CO")
        result: PqrCase = await getattr(flow, method)(txn, caller, model)
        return result

    return await handlers.perform(name, command)


async def state(handlers: Handlers, cun: str) -> dict[str, Any]:
    async with handlers.core.db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM pqrs WHERE id = $1", cun)
        rules = await conn.fetch(
            "SELECT rule, due_at FROM compliance_records WHERE case_id = $1", cun
        )
    assert row is not None
    return {**dict(row), "records": [(r["rule"], r["due_at"]) for r in rules]}


async def test_the_answer_term_runs_from_the_day_after_the_presentation(handlers: Handlers):
    assert COLOMBIA.is_holiday(date(2026, 12, 8))
    handlers.clock.set(REGISTERED)
    await colombia(handlers)
    filed = await file(handlers, filing(presented_at=ts(PRESENTED)))
    cun = filed.row["id"]
    assert filed.row["filed_at"] == PRESENTED
    assert filed.row["answer_due"] == DUE
    # The status sentence dates the filing by its presentation and names the term's last day.
    assert "en fecha 27/11/2026" in filed.status_sentence
    assert "a más tardar el día 21/12/2026" in filed.status_sentence

    await handlers.advance(DUE - SECOND - handlers.clock.now())
    before = await state(handlers, cun)
    assert (before["state"], before["records"]) == ("analysis", [])
    await handlers.advance(SECOND)
    at = await state(handlers, cun)
    assert at["state"] == "silence_applied" and at["silence_at"] == DUE
    assert at["records"] == [("provider_answer_pqr", DUE)]


async def test_a_presentation_instant_is_neither_in_the_future_nor_absurdly_old(
    handlers: Handlers,
):
    await colombia(handlers)
    now = handlers.clock.now()
    for offset, accepted in (
        (timedelta(minutes=5), True),
        (timedelta(minutes=5) + SECOND, False),
        (-timedelta(days=30), True),
        (-timedelta(days=30) - SECOND, False),
    ):
        request = filing(presented_at=ts(now + offset))
        if accepted:
            assert (await file(handlers, request)).row["filed_at"] == now + offset
        else:
            with pytest.raises(InvalidArgument) as refused:
                await file(handlers, request)
            assert [v.field for v in refused.value.violations] == ["presented_at"]


async def answered(handlers: Handlers) -> tuple[str, datetime]:
    """A complaint answered (unfavorably) and notified now; its CUN and reposición limit."""
    cun = (await file(handlers, filing())).row["id"]
    decision = pqr_pb2.AnswerPqrRequest(
        cun=cun, outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE, summary="No procede."
    )
    case = await run(handlers, "AnswerPqr", "answer", convert.answer(decision))
    return cun, case.row["reconsideration_until"]


def reposition(cun: str, presented: datetime) -> Any:
    request = pqr_pb2.FileReconsiderationRequest(
        cun=cun, appeal_in_subsidy=True, facts="No estoy de acuerdo.", presented_at=ts(presented)
    )
    return convert.file_reconsideration(request)


async def test_a_reposition_counts_from_its_presentation_even_registered_after_the_window(
    handlers: Handlers,
):
    await colombia(handlers)
    in_time, until = await answered(handlers)
    too_late, _ = await answered(handlers)
    with pytest.raises(InvalidArgument) as early:
        model = reposition(in_time, handlers.clock.now() - SECOND)
        await run(handlers, "FileReconsideration", "file_reconsideration", model)
    assert [v.field for v in early.value.violations] == ["presented_at"]  # before the notice
    # The window closes both PQRs at its end; the provider registers the reposiciones a day later.
    await handlers.advance(until + timedelta(days=1) - handlers.clock.now())
    assert (await state(handlers, in_time))["state"] == "closed"

    model = reposition(in_time, until - SECOND)
    case = await run(handlers, "FileReconsideration", "file_reconsideration", model)
    assert case.row["state"] == "reconsideration"
    assert case.row["rec_filed_at"] == until - SECOND
    assert case.row["rec_answer_due"] == COLOMBIA.end_of_business_days(until - SECOND, 15)
    with pytest.raises(FailedPrecondition, match="to file reconsideration ended"):
        model = reposition(too_late, until)
        await run(handlers, "FileReconsideration", "file_reconsideration", model)
    assert (await state(handlers, too_late))["state"] == "closed"


# Channel, verbal flag -> the field refused (None: filed without any notification address).
FORMS = [
    (pqr_pb2.PQR_CHANNEL_OFFICE, True, None),
    (pqr_pb2.PQR_CHANNEL_PHONE_LINE, False, None),  # the line is always spoken
    (pqr_pb2.PQR_CHANNEL_OFFICE, False, "user.email"),  # written: an address is needed
    (pqr_pb2.PQR_CHANNEL_WEBSITE, True, "verbal"),
]


async def test_a_verbal_pqr_needs_only_name_identification_and_reason(handlers: Handlers):
    await colombia(handlers)
    for channel, verbal, refused in FORMS:
        request = filing(
            channel=channel,
            verbal=verbal,
            user=user(email="", address="", phone=""),
            facts="Cobro.",
        )
        if refused is None:
            filed = await file(handlers, request)
            assert filed.row["email"] is None and filed.row["address"] is None
            continue
        with pytest.raises(InvalidArgument) as error:
            await file(handlers, request)
        assert [v.field for v in error.value.violations] == [refused]


async def test_the_presentation_and_the_verbal_form_travel_on_the_wire(app, co, clock):
    presented = clock.now() - timedelta(days=3)
    request = filing(
        presented_at=ts(presented),
        verbal=True,
        channel=pqr_pb2.PQR_CHANNEL_OFFICE,
        user=user(email="", address="", phone=""),
    )
    filed = await co["claro-co"]("FilePqr", request)
    assert filed.filed_at.ToDatetime(UTC) == presented
    late = filing(presented_at=ts(clock.now() + timedelta(hours=1)))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"]("FilePqr", late)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == {"presented_at"}
