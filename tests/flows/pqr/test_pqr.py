"""PQR with CUN: ranges, filing, the answer term with its extension, positive silence by itself,
reconsideration, appeal to the SIC, and the status sentence, each deadline at its boundary on
Colombian business days (fake clock; 8 December and 25 December 2026, 1 January 2027 are holidays).

The clock starts on Monday 23 November 2026, 10:00 in Bogotá (15:00 UTC).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.api.commands import IdempotentCommandRunner
from npc.core.calendar import COLOMBIA
from npc.core.clock import FakeClock
from npc.core.errors import FailedPrecondition
from npc.core.identity import Caller
from npc.flows.pqr import convert
from npc.notifications.outbox import MAX_SMS_TEXT
from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import (
    events,
    filing,
    new_provider,
    notifications,
    records,
    user,
)
from tests.helpers import advance, advance_to, field_violations, live_case, rid, ts

# 15 business days from Tuesday 24 November: 8 December is a holiday, so the 15th is Tuesday
# 15 December and the term ends at its midnight in Bogotá (Wednesday 16, 05:00 UTC).
ANSWER_LIMIT = datetime(2026, 12, 16, 5, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def utc(value) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def test_the_calendar_knows_colombian_holidays():
    assert not COLOMBIA.is_business_day(datetime(2026, 12, 8).date())  # Immaculate Conception
    assert COLOMBIA.is_business_day(datetime(2026, 12, 7).date())  # an ordinary Monday
    assert not COLOMBIA.is_business_day(datetime(2026, 12, 25).date())
    assert not COLOMBIA.is_business_day(datetime(2027, 1, 1).date())


# ------------------------------------------------------------------------------------ ranges


async def test_cuns_come_from_the_providers_range_without_duplicates_under_concurrency(co):
    claro = co["claro-co"]
    filed = await asyncio.gather(*(claro("FilePqr", filing()) for _ in range(20)))
    cuns = sorted(p.cun for p in filed)
    assert cuns == [str(1000000000 + i) for i in range(20)]
    first = await co["movistar-co"]("FilePqr", filing())
    assert first.cun == "2000000000"


async def test_the_sic_assigns_ranges_and_a_provider_moves_to_its_next_range(app, co):
    await new_provider(app, "wom-co", "732130")
    sic, wom = co["sic"], co["wom-co"]
    assigned = await sic(
        "AssignCunRange",
        pqr_pb2.AssignCunRangeRequest(
            request_id=rid(), provider="wom-co", first="000001", last="000002"
        ),
    )
    assert (assigned.first, assigned.last, assigned.next) == ("000001", "000002", "000001")
    assert [(await wom("FilePqr", filing())).cun for _ in range(2)] == ["000001", "000002"]
    with pytest.raises(grpc.aio.AioRpcError) as exhausted:
        await wom("FilePqr", filing())
    assert exhausted.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await sic(
        "AssignCunRange",
        pqr_pb2.AssignCunRangeRequest(
            request_id=rid(), provider="wom-co", first="000010", last="000019"
        ),
    )
    assert (await wom("FilePqr", filing())).cun == "000010"


async def test_ranges_never_overlap_and_only_the_regulator_assigns_them(co):
    overlapping = pqr_pb2.AssignCunRangeRequest(
        request_id=rid(), provider="tigo", first="1000000005", last="1000000010"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["sic"]("AssignCunRange", overlapping)
    assert live_case(refused.value) == ("1000000000-1999999999", "1000000005-1000000010")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"](
            "AssignCunRange",
            pqr_pb2.AssignCunRangeRequest(
                request_id=rid(), provider="claro-co", first="5000000000", last="5000000009"
            ),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [("12ab56", "123457", "first"), ("123456", "12345", "last"), ("200000", "100000", "last")],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_a_range_is_two_numbers_of_the_same_width_in_order(module_co, first, last, field):
    co = module_co
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["sic"](
            "AssignCunRange",
            pqr_pb2.AssignCunRangeRequest(
                request_id=rid(), provider="tigo", first=first, last=last
            ),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)


async def test_a_provider_without_cun_range_cannot_file(app, co):
    await new_provider(app, "wom-co", "732130")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["wom-co"]("FilePqr", filing())
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CUN range" in refused.value.details()


# ------------------------------------------------------------------------------------ filing


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": pqr_pb2.PQR_KIND_UNSPECIFIED}, "kind"),
        ({"channel": pqr_pb2.PQR_CHANNEL_SMS_85432}, "channel"),
        ({"subject": pqr_pb2.PQR_SUBJECT_UNSPECIFIED}, "subject"),
        ({"facts": "   "}, "facts"),
        ({"user": user(name="")}, "user.name"),
        ({"user": user(document_number="12a")}, "user.document_number"),
        (
            {
                "user": user(
                    document_type=pqr_pb2.USER_DOCUMENT_TYPE_NIT, document_number="8001972685"
                )
            },
            "user.document_number",
        ),
        ({"user": user(email="", address="")}, "user.email"),
        ({"user": user(phone="6011234567")}, "user.phone"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_filing_validates_every_field_and_stores_nothing(
    module_app, module_co, overrides, field
):
    app, co = module_app, module_co
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"]("FilePqr", filing(**overrides))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    async with app.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pqrs") == 0
        assert (
            await conn.fetchval("SELECT next_value FROM cun_ranges WHERE operator_id = 'claro-co'")
            == 1000000000
        )


async def test_a_nit_with_its_check_digit_is_accepted(co):
    filed = await co["claro-co"](
        "FilePqr",
        filing(
            user=user(document_type=pqr_pb2.USER_DOCUMENT_TYPE_NIT, document_number="800197268-4")
        ),
    )
    assert filed.user.document_number == "800197268-4"


async def test_filing_gives_the_cun_and_the_constancy_to_the_user(app, co):
    request = filing()
    filed = await co["claro-co"]("FilePqr", request)
    again = await co["claro-co"]("FilePqr", request)  # a retry gets the first answer
    assert again.cun == filed.cun == "1000000000"
    assert filed.state == pqr_pb2.PQR_STATE_ANALYSIS
    assert utc(filed.answer_deadline) == ANSWER_LIMIT
    [(channel, to, body)] = await notifications(app, filed.cun)
    assert (channel, to) == ("email", "luz@example.co")
    assert "1000000000" in body and "15/12/2026" in body
    assert await events(app, filed.cun) == [("pqr.filed", ["claro-co"])]


async def test_status_by_cun_is_the_regulated_sentence(app, co):
    filed = await co["claro-co"]("FilePqr", filing())
    expected = (
        "Señor usuario, le informamos que su queja, radicada bajo el Código Único Numérico -CUN- "
        "1000000000 en fecha 23/11/2026, se encuentra en análisis por parte del proveedor, y la "
        "misma será respondida a través del mismo mecanismo en que fue presentada y a la "
        "dirección de notificación suministrada por usted al momento de presentación de su "
        "queja, a más tardar el día 15/12/2026."
    )
    assert filed.status_sentence == expected
    handler = app.core.flows["pqr"].handler
    status = await handler.public_status(filed.cun)
    assert status["sentence"] == expected
    assert status["state"] == "analysis"
    assert "Luz" not in str(status) and "52123456" not in str(status)
    assert await handler.public_status("1000000099") is None
    assert await handler.public_status("not-a-cun") is None


async def test_only_the_provider_and_the_regulator_read_a_pqr(co):
    filed = await co["claro-co"]("FilePqr", filing())
    read = await co["sic"]("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert read.user.name == "Luz Marina Gómez"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["tigo"]("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["tigo"](
            "AnswerPqr",
            pqr_pb2.AnswerPqrRequest(
                request_id=rid(),
                cun=filed.cun,
                outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE,
                summary="Se reversa el cobro.",
            ),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


# ------------------------------------------------------------------- positive silence


async def test_positive_silence_applies_by_itself_at_the_end_of_the_term(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance_to(app, clock, ANSWER_LIMIT - SECOND)
    assert (await claro("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))).state == (
        pqr_pb2.PQR_STATE_ANALYSIS
    )
    assert await records(app, filed.cun) == []
    await advance(app, clock, SECOND)
    silenced = await claro("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert silenced.state == pqr_pb2.PQR_STATE_SILENCE_APPLIED
    assert utc(silenced.silence_at) == ANSWER_LIMIT
    assert utc(silenced.silence_effects_deadline) == ANSWER_LIMIT + timedelta(hours=72)
    assert await records(app, filed.cun) == ["provider_answer_pqr"]
    assert ("pqr.silence_applied", ["claro-co"]) in await events(app, filed.cun)
    assert "silencio administrativo positivo" in (await notifications(app, filed.cun))[-1][2]
    assert "se entiende resuelta a su favor" in silenced.status_sentence
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claro(
            "AnswerPqr",
            pqr_pb2.AnswerPqrRequest(
                request_id=rid(),
                cun=filed.cun,
                outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
                summary="Tarde.",
            ),
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_silence_effects_carried_out_within_72_hours_leave_no_further_record(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance_to(app, clock, ANSWER_LIMIT + timedelta(hours=72) - SECOND)
    done = await claro(
        "ConfirmSilenceEffects",
        pqr_pb2.ConfirmSilenceEffectsRequest(
            request_id=rid(), cun=filed.cun, description="Se reversó el cobro doble."
        ),
    )
    assert done.state == pqr_pb2.PQR_STATE_CLOSED
    await advance(app, clock, timedelta(days=5))
    assert await records(app, filed.cun) == ["provider_answer_pqr"]


async def test_silence_effects_missed_at_72_hours_are_recorded(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    effects_due = ANSWER_LIMIT + timedelta(hours=72)
    await advance_to(app, clock, effects_due - SECOND)
    assert await records(app, filed.cun) == ["provider_answer_pqr"]
    await advance(app, clock, SECOND)
    assert await records(app, filed.cun) == ["provider_answer_pqr", "provider_silence_effects"]


async def test_the_evidence_extension_adds_15_business_days_across_christmas_and_new_year(
    app, co, clock
):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance(app, clock, timedelta(days=3))
    extended = await claro(
        "ExtendPqrForEvidence",
        pqr_pb2.ExtendPqrForEvidenceRequest(
            request_id=rid(), cun=filed.cun, reason="Se requiere revisar los registros de la red."
        ),
    )
    # From Wednesday 16 December: 25 December and 1 January are holidays; the 15th business day
    # is Thursday 7 January 2027, so the term ends on Friday 8, 00:00 Bogotá.
    limit = datetime(2027, 1, 8, 5, 0, tzinfo=UTC)
    assert extended.state == pqr_pb2.PQR_STATE_EVIDENCE
    assert utc(extended.answer_deadline) == limit
    assert "etapa de pruebas que practica el proveedor" in extended.status_sentence
    assert "07/01/2027" in extended.status_sentence
    assert "registros de la red" in (await notifications(app, filed.cun))[-1][2]
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await claro(
            "ExtendPqrForEvidence",
            pqr_pb2.ExtendPqrForEvidenceRequest(request_id=rid(), cun=filed.cun, reason="Otra."),
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await advance_to(app, clock, limit - SECOND)
    assert await records(app, filed.cun) == []
    await advance(app, clock, SECOND)
    assert await records(app, filed.cun) == ["provider_answer_pqr"]


# ------------------------------------------------------------------- answer and recourses


async def _answer(party, cun, outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE, **fields):
    return await party(
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(), cun=cun, outcome=outcome, summary="El cobro es correcto.", **fields
        ),
    )


async def _reconsider(party, cun, appeal=True):
    return await party(
        "FileReconsideration",
        pqr_pb2.FileReconsiderationRequest(
            request_id=rid(), cun=cun, appeal_in_subsidy=appeal, facts="No estoy de acuerdo."
        ),
    )


async def test_an_answer_in_time_carries_the_recourse_notice(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance_to(app, clock, ANSWER_LIMIT - SECOND)
    answered = await _answer(claro, filed.cun)
    assert answered.state == pqr_pb2.PQR_STATE_ANSWERED
    assert "recurso de reposición y en subsidio de apelación" in answered.recourse_notice
    await advance(app, clock, timedelta(days=1))
    assert await records(app, filed.cun) == []


async def test_reconsideration_is_accepted_until_the_10th_business_day_after_notification(
    app, co, clock
):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance_to(app, clock, datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    answered = await _answer(claro, filed.cun)
    # Notified Thursday 3 December: 8 December is a holiday; the 10th business day is Friday 18.
    window_end = datetime(2026, 12, 19, 5, 0, tzinfo=UTC)
    assert utc(answered.reconsideration_until) == window_end
    await advance_to(app, clock, window_end - SECOND)
    filed_again = await _reconsider(claro, filed.cun)
    assert filed_again.cun == filed.cun
    assert filed_again.state == pqr_pb2.PQR_STATE_RECONSIDERATION
    assert "su recurso" in filed_again.status_sentence


async def test_reconsideration_window_closes_the_pqr_at_its_end(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await advance_to(app, clock, datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    await _answer(claro, filed.cun, notified_at=ts(clock.now() - timedelta(hours=1)))
    await advance_to(app, clock, datetime(2026, 12, 19, 5, 0, tzinfo=UTC))
    closed = await claro("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert closed.state == pqr_pb2.PQR_STATE_CLOSED
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await _reconsider(claro, filed.cun)
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_appeal_needs_an_appealable_subject(co):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing(subject=pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY))
    await _answer(claro, filed.cun)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _reconsider(claro, filed.cun, appeal=True)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await _reconsider(claro, filed.cun, appeal=False)).state == (
        pqr_pb2.PQR_STATE_RECONSIDERATION
    )


async def test_unanswered_reconsideration_falls_into_positive_silence(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await _answer(claro, filed.cun)
    await advance(app, clock, timedelta(days=1))  # Tuesday 24 November
    recourse = await _reconsider(claro, filed.cun)
    # From Wednesday 25 November, 15 business days skipping 8 December: Wednesday 16 December.
    limit = datetime(2026, 12, 17, 5, 0, tzinfo=UTC)
    assert utc(recourse.reconsideration_deadline) == limit
    await advance_to(app, clock, limit - SECOND)
    assert await records(app, filed.cun) == []
    await advance(app, clock, SECOND)
    assert await records(app, filed.cun) == ["provider_answer_reconsideration"]
    silenced = await claro("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert silenced.state == pqr_pb2.PQR_STATE_SILENCE_APPLIED


async def _to_transfer(app, co, clock):
    """A billing complaint answered unfavorably, reconsidered with appeal, answered unfavorably
    on Friday 4 December 2026."""
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await _answer(claro, filed.cun)
    await advance(app, clock, timedelta(days=1))
    await _reconsider(claro, filed.cun, appeal=True)
    await advance_to(app, clock, datetime(2026, 12, 4, 15, 0, tzinfo=UTC))
    decided = await _answer(claro, filed.cun, outcome=pqr_pb2.PQR_OUTCOME_PARTIALLY_FAVORABLE)
    return filed.cun, decided


# Notified Friday 4 December: 5 business days skipping 8 December end on Monday 14 December.
TRANSFER_LIMIT = datetime(2026, 12, 15, 5, 0, tzinfo=UTC)


async def test_the_file_goes_to_the_sic_within_5_business_days_and_the_cun_stays(app, co, clock):
    cun, decided = await _to_transfer(app, co, clock)
    assert decided.state == pqr_pb2.PQR_STATE_TRANSFER_DUE
    assert utc(decided.transfer_deadline) == TRANSFER_LIMIT
    await advance_to(app, clock, TRANSFER_LIMIT - SECOND)
    sent = await co["claro-co"](
        "RecordTransferToSic", pqr_pb2.RecordTransferToSicRequest(request_id=rid(), cun=cun)
    )
    assert sent.cun == cun
    assert sent.state == pqr_pb2.PQR_STATE_APPEAL
    assert "se encuentra en análisis por parte de la SIC" in sent.status_sentence
    assert sent.transfer_notice.startswith(
        "Señor usuario, el expediente de su recurso, fue enviado en fecha 14/12/2026 a la "
        "Superintendencia de Industria y Comercio"
    )
    assert sent.transfer_notice in [body for _, _, body in await notifications(app, cun)]
    await advance(app, clock, timedelta(days=2))
    assert await records(app, cun) == []
    decided = await co["sic"](
        "DecideAppeal",
        pqr_pb2.DecideAppealRequest(
            request_id=rid(), cun=cun, outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE, summary="Procede."
        ),
    )
    assert (decided.cun, decided.state) == (cun, pqr_pb2.PQR_STATE_CLOSED)


async def test_a_transfer_missed_at_5_business_days_is_recorded(app, co, clock):
    cun, _ = await _to_transfer(app, co, clock)
    await advance_to(app, clock, TRANSFER_LIMIT - SECOND)
    assert await records(app, cun) == []
    await advance(app, clock, SECOND)
    assert await records(app, cun) == ["provider_transfer_to_sic"]
    late = await co["claro-co"](
        "RecordTransferToSic", pqr_pb2.RecordTransferToSicRequest(request_id=rid(), cun=cun)
    )
    assert late.state == pqr_pb2.PQR_STATE_APPEAL
    assert await records(app, cun) == ["provider_transfer_to_sic"]


async def test_a_favorable_reconsideration_closes_without_appeal(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await _answer(claro, filed.cun)
    await _reconsider(claro, filed.cun, appeal=True)
    closed = await _answer(claro, filed.cun, outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE)
    assert closed.state == pqr_pb2.PQR_STATE_CLOSED
    assert "se encuentra cerrada" in closed.status_sentence


async def test_an_answer_arriving_at_the_end_of_the_term_finds_the_silence_applied(app, co):
    # The answer reaches a process whose deadline loop has not fired yet: the command applies the
    # silence itself, keeps it, and refuses the answer.
    filed = await co["claro-co"]("FilePqr", filing())
    handler = app.core.flows["pqr"].handler
    runner = IdempotentCommandRunner(app.core.db, FakeClock(ANSWER_LIMIT))
    caller = Caller("claro-co")
    request = pqr_pb2.AnswerPqrRequest(
        request_id=rid(),
        cun=filed.cun,
        outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
        summary="El cobro es correcto.",
    )
    with pytest.raises(FailedPrecondition):
        await runner.run(
            caller,
            "AnswerPqr",
            request,
            pqr_pb2.Pqr,
            lambda txn: handler.answer(txn, caller, convert.answer(request)),
        )
    read = await co["claro-co"]("GetPqr", pqr_pb2.GetPqrRequest(cun=filed.cun))
    assert read.state == pqr_pb2.PQR_STATE_SILENCE_APPLIED
    assert utc(read.silence_at) == ANSWER_LIMIT
    assert await records(app, filed.cun) == ["provider_answer_pqr"]


async def test_an_unreadable_notification_instant_is_refused_with_the_other_violations(co):
    # The wire can carry instants no datetime holds; the answer reports them in the same refusal
    # as the other fields, in the order of the request, and an unknown outcome reads as missing.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"](
            "AnswerPqr",
            pqr_pb2.AnswerPqrRequest(
                request_id=rid(),
                cun="1000000000",
                outcome=pqr_pb2.PqrOutcome.ValueType(99),
                summary="",
                notified_at=Timestamp(seconds=253402300800),  # year 10000
            ),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(refused.value).items()) == [
        ("outcome", "required: FAVORABLE, PARTIALLY_FAVORABLE or UNFAVORABLE"),
        ("summary", "required: a summary of the decision, up to 4000 printable characters"),
        ("notified_at", "not a valid instant"),
    ]


async def test_a_user_without_email_gets_the_longest_sms_the_outbox_sends(app, co, clock):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing(user=user(email="", address="Calle 10 # 5-20, Bogotá")))
    await advance(app, clock, timedelta(days=1))
    await claro(
        "ExtendPqrForEvidence",
        pqr_pb2.ExtendPqrForEvidenceRequest(
            request_id=rid(), cun=filed.cun, reason="Revisión de registros de la red. " * 40
        ),
    )
    channel, recipient, body = (await notifications(app, filed.cun))[-1]
    assert (channel, recipient) == ("sms", "3001234567")
    # Cut where the outbox's limit is (six concatenated segments), not shorter.
    assert len(body) == MAX_SMS_TEXT
    assert body.startswith("Para la práctica de pruebas")
