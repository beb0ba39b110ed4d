"""A PQR step at its deadline's instant is late (issue 15; seed 004 art. 2.1.5.1 par. 1,
2.1.5.2, 2.1.5.9.3 c, 2.1.5.15.4): one second before it leaves no record; at the instant it is
recorded once, whether the step reaches the handler before its deadline fires or after. Through
the `handlers` fixture, in that fixed order (`tests.helpers.around_instant`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from npc.flows.pqr import convert
from npc.flows.pqr.handler import PqrHandler
from npc.flows.pqr.seed import seed_colombia
from npc.store.database import Txn
from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import filing, user
from tests.helpers import Handlers, around_instant

SECOND = timedelta(seconds=1)
UNFAVORABLE = pqr_pb2.PQR_OUTCOME_UNFAVORABLE


async def act(handlers: Handlers, method: str, model: Any) -> Any:
    """Run one of the PQR handler's commands as claro-co, at the clock's instant."""
    flow = handlers.flow("pqr").handler  # type: ignore[attr-defined]
    assert isinstance(flow, PqrHandler)

    async def command(txn: Txn) -> Any:
        return await getattr(flow, method)(txn, handlers.caller("claro-co", country="CO"), model)

    return await handlers.perform(method, command)


async def ledger(handlers: Handlers, case_id: str) -> list[tuple[str, datetime]]:
    """(rule, due_at) of a case's compliance records, in order."""
    async with handlers.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT rule, due_at FROM compliance_records WHERE case_id = $1 ORDER BY id", case_id
        )
    return [(r["rule"], r["due_at"]) for r in rows]


async def transfer_due(handlers: Handlers) -> tuple[str, datetime]:
    """A billing complaint answered, reconsidered with appeal in subsidy and answered again,
    unfavorably both times: its CUN and the instant its file is due at the SIC."""
    cun = (await act(handlers, "file_pqr", convert.file_pqr(filing()))).row["id"]
    decision = pqr_pb2.AnswerPqrRequest(cun=cun, outcome=UNFAVORABLE, summary="No procede.")
    await act(handlers, "answer", convert.answer(decision))
    reposition = pqr_pb2.FileReconsiderationRequest(
        cun=cun, appeal_in_subsidy=True, facts="No estoy de acuerdo."
    )
    await act(handlers, "file_reconsideration", convert.file_reconsideration(reposition))
    case = await act(handlers, "answer", convert.answer(decision))
    assert case.row["state"] == "transfer_due"
    return cun, case.row["transfer_due"]


async def test_a_transfer_or_silence_effects_at_their_deadlines_instant_are_late(
    handlers: Handlers,
):
    await seed_colombia(handlers.core.db, handlers.clock.now())
    silenced = [(await act(handlers, "file_pqr", convert.file_pqr(filing()))).row for _ in "abc"]
    transfers = [await transfer_due(handlers) for _ in "abc"]
    [due] = {d for _, d in transfers}

    async def send(by: Handlers, cun: str) -> None:
        model = convert.record_transfer(pqr_pb2.RecordTransferToSicRequest(cun=cun))
        assert (await act(by, "record_transfer", model)).row["state"] == "appeal"

    await around_instant(handlers, due, send, (transfers[0][0], transfers[1][0], transfers[2][0]))
    assert [await ledger(handlers, cun) for cun, _ in transfers] == [
        [],
        [("provider_transfer_to_sic", due)],
        [("provider_transfer_to_sic", due)],
    ]

    answer_due = silenced[0]["answer_due"]
    await handlers.advance(answer_due - handlers.clock.now())
    effects_due = answer_due + timedelta(hours=72)
    flow = handlers.flow("pqr").handler  # type: ignore[attr-defined]
    read = convert.get_pqr(pqr_pb2.GetPqrRequest(cun=silenced[0]["id"]))
    case = await flow.get_pqr(handlers.caller("claro-co", country="CO"), read)
    assert "materializar sus efectos antes del" in case.status_sentence  # the limit is late

    async def confirm(by: Handlers, cun: str) -> None:
        request = pqr_pb2.ConfirmSilenceEffectsRequest(cun=cun, description="Se reversó el cobro.")
        model = convert.confirm_silence_effects(request)
        assert (await act(by, "confirm_silence_effects", model)).row["state"] == "closed"

    await around_instant(handlers, effects_due, confirm, tuple(row["id"] for row in silenced))
    silence = ("provider_answer_pqr", answer_due)
    assert [await ledger(handlers, row["id"]) for row in silenced] == [
        [silence],
        [silence, ("provider_silence_effects", effects_due)],
        [silence, ("provider_silence_effects", effects_due)],
    ]


async def test_an_sms_queja_acknowledged_or_called_at_its_deadlines_instant_is_late(
    handlers: Handlers,
):
    """Art. 2.1.5.15.4 counts acknowledgements "antes de transcurridos cinco (5) minutos" and
    calls "antes de finalizado el día calendario siguiente": the monthly indicators count only
    the first request, as the ledger does."""
    await seed_colombia(handlers.core.db, handlers.clock.now())
    requests = []
    for msisdn in ("3101111111", "3102222222", "3103333333"):
        sms = pqr_pb2.ReceiveQuejaSmsRequest(msisdn=msisdn, short_code="85432", text="QUEJA")
        case = await act(handlers, "receive_queja_sms", convert.receive_queja_sms(sms))
        requests.append(case.row)
    ids = (requests[0]["id"], requests[1]["id"], requests[2]["id"])
    ack_due, call_due = requests[0]["ack_due"], requests[0]["call_due"]

    async def acknowledge(by: Handlers, sms_id: str) -> None:
        request = pqr_pb2.AcknowledgeQuejaSmsRequest(sms_request_id=sms_id)
        await act(by, "acknowledge_queja_sms", convert.acknowledge_queja_sms(request))

    async def call(by: Handlers, sms_id: str) -> None:
        complaint = pqr_pb2.CallComplaint(
            subject=pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY, user=user(), facts="Sin señal."
        )
        request = pqr_pb2.RecordCallAttemptRequest(
            sms_request_id=sms_id, answered=True, complaint=complaint
        )
        case = await act(by, "record_call_attempt", convert.record_call_attempt(request))
        assert case.row["state"] == "registered"

    await around_instant(handlers, ack_due, acknowledge, ids)
    await around_instant(handlers, call_due, call, ids)
    late = [("provider_acknowledge_queja_sms", ack_due), ("provider_call_queja_sms", call_due)]
    assert [await ledger(handlers, row["id"]) for row in requests] == [[], late, late]
    flow = handlers.flow("pqr").handler  # type: ignore[attr-defined]
    [november] = await flow.report("2026-11", "claro-co")
    counted = ("sms_requests", "sms_acknowledged_in_time", "sms_contacted_in_time")
    assert [november[key] for key in counted] == [3, 1, 1]
