"""Monthly indicators per provider (art. 2.1.5.15.3 and 2.1.5.15.4, answers and silences)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import filing, user
from tests.helpers import advance, advance_to, field_violations, rid


async def _november(app, co, clock) -> None:
    """In November 2026 claro-co gets two SMS QUEJA and three complaints; one is answered."""
    claro = co["claro-co"]
    quick = await claro(
        "ReceiveQuejaSms",
        pqr_pb2.ReceiveQuejaSmsRequest(
            request_id=rid(), msisdn="3101111111", short_code="85432", text="QUEJA"
        ),
    )
    slow = await claro(
        "ReceiveQuejaSms",
        pqr_pb2.ReceiveQuejaSmsRequest(
            request_id=rid(), msisdn="3102222222", short_code="85432", text="Queja"
        ),
    )
    await advance(app, clock, timedelta(minutes=2))
    await claro(
        "AcknowledgeQuejaSms",
        pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=quick.id),
    )
    await advance(app, clock, timedelta(minutes=4))
    await claro(
        "AcknowledgeQuejaSms",
        pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=slow.id),
    )
    await claro(
        "RecordCallAttempt",
        pqr_pb2.RecordCallAttemptRequest(
            request_id=rid(),
            sms_request_id=quick.id,
            answered=True,
            complaint=pqr_pb2.CallComplaint(
                subject=pqr_pb2.PQR_SUBJECT_BILLING, user=user(), facts="Cobro doble."
            ),
        ),
    )
    for _ in range(3):
        await claro(
            "RecordCallAttempt",
            pqr_pb2.RecordCallAttemptRequest(request_id=rid(), sms_request_id=slow.id),
        )
        await advance(app, clock, timedelta(minutes=30))
    answered = await claro("FilePqr", filing())
    await claro("FilePqr", filing(subject=pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY))
    await claro("FilePqr", filing(kind=pqr_pb2.PQR_KIND_PETITION))
    await claro(
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=answered.cun,
            outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE,
            summary="Se reversa el cobro.",
        ),
    )


async def test_november_indicators_of_a_provider(app, co, clock):
    await _november(app, co, clock)
    report = await co["sic"](
        "GetMonthlyIndicators", pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-11")
    )
    by_provider = {row.provider: row for row in report.providers}
    assert set(by_provider) == {"claro-co", "movistar-co", "tigo"}
    claro = by_provider["claro-co"]
    assert (claro.sms_requests, claro.sms_acknowledged_in_time) == (2, 1)
    assert claro.sms_acknowledged_in_time_pct == 50.0
    assert (claro.sms_contacted_in_time, claro.sms_contacted_in_time_pct) == (1, 50.0)
    assert claro.sms_closed_unreachable == 1
    assert claro.pqrs_filed == 4
    assert (claro.answers, claro.answers_in_time, claro.answers_in_time_pct) == (1, 1, 100.0)
    assert claro.silences_applied == 0
    assert [(s.subject, s.complaints) for s in claro.frequent_complaints] == [
        (pqr_pb2.PQR_SUBJECT_BILLING, 2),
        (pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY, 1),
    ]
    assert by_provider["tigo"].sms_requests == 0
    assert by_provider["tigo"].sms_acknowledged_in_time_pct == 0.0


async def test_silences_count_in_the_month_they_applied(app, co, clock):
    await _november(app, co, clock)
    await advance_to(app, clock, datetime(2026, 12, 31, 12, 0, tzinfo=UTC))
    handler = app.core.flows["pqr"].handler
    [december] = await handler.report("2026-12", "claro-co")
    assert december["silences_applied"] == 3  # the three unanswered PQRs of 23 November
    assert december["silence_effects_late"] == 3
    assert december["pqrs_filed"] == 0
    [november] = await handler.report("2026-11", "claro-co")
    assert november["silences_applied"] == 0


async def test_a_provider_reads_only_its_own_indicators(app, co, clock):
    await _november(app, co, clock)
    own = await co["claro-co"](
        "GetMonthlyIndicators", pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-11")
    )
    assert [row.provider for row in own.providers] == ["claro-co"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await co["claro-co"](
            "GetMonthlyIndicators",
            pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-11", provider="tigo"),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await co["sic"](
            "GetMonthlyIndicators", pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-13")
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "month" in field_violations(invalid.value)
