"""SMS "QUEJA" to 85432 (art. 2.1.5.1, parágrafo 1): acknowledgement within 5 minutes, a call by
the end of the next calendar day, 3 unanswered attempts 30 minutes apart close the request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import notifications, records, user
from tests.helpers import advance, advance_to, field_violations, rid

RECEIVED = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 23 November, 10:00 Bogotá
SECOND = timedelta(seconds=1)


def utc(value) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def sms(**overrides) -> pqr_pb2.ReceiveQuejaSmsRequest:
    fields = {
        "request_id": rid(),
        "msisdn": "3109876543",
        "short_code": "85432",
        "text": "QUEJA",
    }
    fields.update(overrides)
    return pqr_pb2.ReceiveQuejaSmsRequest(**fields)


def attempt(sms_id: str, answered: bool = False, **fields) -> pqr_pb2.RecordCallAttemptRequest:
    return pqr_pb2.RecordCallAttemptRequest(
        request_id=rid(), sms_request_id=sms_id, answered=answered, **fields
    )


def complaint() -> pqr_pb2.CallComplaint:
    return pqr_pb2.CallComplaint(
        subject=pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY,
        user=user(),
        facts="No tengo señal en mi casa desde hace una semana.",
    )


async def test_an_sms_queja_opens_a_request_with_the_regulated_acknowledgement(co):
    request = await co["claro-co"]("ReceiveQuejaSms", sms(text="hola, queja por el servicio"))
    assert request.id == "SQ0000000001"
    assert request.state == pqr_pb2.SMS_REQUEST_STATE_RECEIVED
    assert utc(request.acknowledgement_deadline) == RECEIVED + timedelta(minutes=5)
    # End of Tuesday 24 November in Bogotá.
    assert utc(request.call_deadline) == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert request.acknowledgement_text == (
        "Claro Colombia ha recibido su solicitud de atención, lo llamaremos a más tardar dentro "
        "del día calendario siguiente para conocer el detalle de su queja"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"msisdn": "910000001"}, "msisdn"),
        ({"short_code": "85433"}, "short_code"),
        ({"text": "QUEJAS no es la palabra"}, "text"),
        ({"text": "hola"}, "text"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_only_the_word_queja_to_85432_from_a_colombian_line_opens_a_request(
    module_app, module_co, overrides, field
):
    app, co = module_app, module_co
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"]("ReceiveQuejaSms", sms(**overrides))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    async with app.core.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pqr_sms_requests") == 0


async def test_acknowledgement_within_5_minutes_leaves_no_record(app, co, clock):
    claro = co["claro-co"]
    request = await claro("ReceiveQuejaSms", sms())
    await advance(app, clock, timedelta(minutes=5) - SECOND)
    acked = await claro(
        "AcknowledgeQuejaSms",
        pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=request.id),
    )
    assert utc(acked.acknowledged_at) == RECEIVED + timedelta(minutes=5) - SECOND
    await advance(app, clock, timedelta(minutes=1))
    assert await records(app, request.id) == []


async def test_no_acknowledgement_at_5_minutes_is_recorded(app, co, clock):
    request = await co["claro-co"]("ReceiveQuejaSms", sms())
    await advance(app, clock, timedelta(minutes=5) - SECOND)
    assert await records(app, request.id) == []
    await advance(app, clock, SECOND)
    assert await records(app, request.id) == ["provider_acknowledge_queja_sms"]


async def test_no_call_by_the_end_of_the_next_calendar_day_is_recorded(app, co, clock):
    request = await co["claro-co"]("ReceiveQuejaSms", sms())
    await co["claro-co"](
        "AcknowledgeQuejaSms",
        pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=request.id),
    )
    limit = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    await advance_to(app, clock, limit - SECOND)
    assert await records(app, request.id) == []
    await advance(app, clock, SECOND)
    assert await records(app, request.id) == ["provider_call_queja_sms"]


async def test_the_call_term_counts_calendar_days_even_over_a_holiday(app, co, clock):
    # Received Monday 7 December; the next calendar day is the 8 December holiday: the call is
    # still due by its end.
    await advance_to(app, clock, datetime(2026, 12, 7, 15, 0, tzinfo=UTC))
    request = await co["claro-co"]("ReceiveQuejaSms", sms())
    limit = datetime(2026, 12, 9, 5, 0, tzinfo=UTC)
    assert utc(request.call_deadline) == limit
    await advance_to(app, clock, limit - SECOND)
    called = await co["claro-co"]("RecordCallAttempt", attempt(request.id))
    assert called.call_attempts == 1
    await advance(app, clock, timedelta(hours=1))
    assert await records(app, request.id) == ["provider_acknowledge_queja_sms"]


async def test_an_answered_call_registers_the_complaint_with_its_cun(app, co, clock):
    claro = co["claro-co"]
    request = await claro("ReceiveQuejaSms", sms())
    await advance(app, clock, timedelta(hours=20))  # Tuesday 24 November, 06:00 Bogotá
    registered = await claro(
        "RecordCallAttempt", attempt(request.id, answered=True, complaint=complaint())
    )
    assert registered.state == pqr_pb2.SMS_REQUEST_STATE_REGISTERED
    assert registered.cun == "1000000000"
    pqr = await claro("GetPqr", pqr_pb2.GetPqrRequest(cun=registered.cun))
    assert pqr.channel == pqr_pb2.PQR_CHANNEL_SMS_85432
    assert pqr.kind == pqr_pb2.PQR_KIND_COMPLAINT
    assert pqr.sms_request_id == request.id
    # The 15 business days run from the call: from Wednesday 25 November, skipping 8 December.
    assert utc(pqr.answer_deadline) == datetime(2026, 12, 17, 5, 0, tzinfo=UTC)
    await advance_to(app, clock, datetime(2026, 11, 26, tzinfo=UTC))
    assert await records(app, request.id) == ["provider_acknowledge_queja_sms"]


async def test_an_answered_call_needs_the_complaint(co):
    request = await co["claro-co"]("ReceiveQuejaSms", sms())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"]("RecordCallAttempt", attempt(request.id, answered=True))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "complaint.facts" in field_violations(refused.value)


async def test_three_unanswered_attempts_30_minutes_apart_close_with_a_notice(app, co, clock):
    claro = co["claro-co"]
    request = await claro("ReceiveQuejaSms", sms())
    await claro("RecordCallAttempt", attempt(request.id))
    await advance(app, clock, timedelta(minutes=30) - SECOND)
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await claro("RecordCallAttempt", attempt(request.id))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await advance(app, clock, SECOND)
    second = await claro("RecordCallAttempt", attempt(request.id))
    assert (second.call_attempts, second.state) == (2, pqr_pb2.SMS_REQUEST_STATE_RECEIVED)
    await advance(app, clock, timedelta(minutes=30))
    closed = await claro("RecordCallAttempt", attempt(request.id))
    assert (closed.call_attempts, closed.state) == (
        3,
        pqr_pb2.SMS_REQUEST_STATE_CLOSED_UNREACHABLE,
    )
    [(channel, to, body)] = await notifications(app, request.id)
    assert (channel, to) == ("sms", "3109876543")
    assert "se da por cerrada" in body
    with pytest.raises(grpc.aio.AioRpcError) as after:
        await claro("RecordCallAttempt", attempt(request.id, answered=True, complaint=complaint()))
    assert after.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_sms_requests_belong_to_their_provider(co):
    request = await co["claro-co"]("ReceiveQuejaSms", sms())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["tigo"]("RecordCallAttempt", attempt(request.id))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    read = await co["sic"]("GetSmsRequest", pqr_pb2.GetSmsRequestRequest(sms_request_id=request.id))
    assert read.provider == "claro-co"
    with pytest.raises(grpc.aio.AioRpcError) as peruvian:
        await co["movistar"]("ReceiveQuejaSms", sms())
    assert peruvian.value.code() == grpc.StatusCode.PERMISSION_DENIED
