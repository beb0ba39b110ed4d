"""The portability process's deadlines, through gRPC with the fake clock (DOMAIN.md §3).

Each test drives the clock to just before and just after a deadline and checks the outcome an
operator or the regulator sees: the request's state, the messages on the operators' streams and
the rows of the compliance ledger. The default clock start is Monday 23 November 2026, 10:00 in
Lima (UTC-5 all year).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.rpc import error_details_pb2

from npc.v1 import common_pb2, events_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import (
    advance,
    advance_to,
    block,
    day,
    field_violations,
    port_request,
    rid,
    rpc_error_details,
    settle,
    ts,
)

LIMA = ZoneInfo("America/Lima")


def lima(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A Lima wall-clock instant, as UTC."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LIMA).astimezone(UTC)


def when(stamp: Any) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)


# ----------------------------------------------------------------------------- private helpers


async def _file(operators, clock, *, recipient: str = "claro", **fields: Any) -> pb.PortRequest:
    return await operators[recipient].call("SubmitPortRequest", port_request(clock, **fields))


async def _answer(operators, request: pb.PortRequest, **fields: Any) -> pb.PortRequest:
    fields.setdefault("accept", True)
    return await operators[request.donor].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=request.id, **fields),
    )


async def _get(operators, case_id: str, who: str = "claro") -> pb.PortRequest:
    return await operators[who].call(
        "GetPortRequest", pb.GetPortRequestRequest(port_request_id=case_id)
    )


async def _schedule(
    operators, case_id: str, instant: datetime, who: str = "claro"
) -> pb.PortRequest:
    return await operators[who].call(
        "SchedulePort",
        pb.SchedulePortRequest(request_id=rid(), port_request_id=case_id, scheduled_at=ts(instant)),
    )


async def _confirm(
    operators, case_id: str, who: str, step: pb.ExecutionStep.ValueType
) -> pb.PortRequest:
    return await operators[who].call(
        "ConfirmPortExecution",
        pb.ConfirmPortExecutionRequest(request_id=rid(), port_request_id=case_id, step=step),
    )


async def _admissible(app, operators, clock, **fields: Any) -> pb.PortRequest:
    """A request filed now and accepted by the donor one minute later."""
    filed = await _file(operators, clock, **fields)
    await advance(app, clock, timedelta(minutes=1))
    answered = await _answer(operators, filed)
    assert answered.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    return answered


async def _records(app, case_id: str, rule: str | None = None) -> list[dict[str, Any]]:
    """Compliance ledger rows of a case (optionally of one rule), oldest first."""
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, flow, rule, infraction, severity, due_at, observed_at, evidence"
            " FROM compliance_records WHERE case_id = $1 AND ($2::text IS NULL OR rule = $2)"
            " ORDER BY id",
            case_id,
            rule,
        )
    return [dict(r) for r in rows]


async def _event(
    client,
    *,
    case_id: str,
    code: str | None = None,
    type_: str | None = None,
    after: int = 0,
    timeout: float = 5.0,
) -> events_pb2.Event | None:
    """The first event for `case_id` with `code` (and/or `type_`) on `client`'s stream, or None
    within `timeout`."""
    call = client.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=after, flows=["portability"]),
        metadata=client.metadata,
    )

    async def read() -> events_pb2.Event | None:
        async for event in call:
            if (
                event.case_id == case_id
                and (code is None or event.code == code)
                and (type_ is None or event.type == type_)
            ):
                return event
        return None

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        return None
    finally:
        call.cancel()


async def _compliance_event(client, case_id: str, rule: str, timeout: float = 5.0) -> bool:
    """True when `client`'s stream carries the compliance record of `rule` for `case_id`."""
    call = client.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=0, flows=["portability"]),
        metadata=client.metadata,
    )

    async def read() -> bool:
        async for event in call:
            if (
                event.type == "compliance.recorded"
                and event.case_id == case_id
                and event.compliance_recorded.rule == rule
            ):
                return True
        return False

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        return False
    finally:
        call.cancel()


def _precondition_types(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_error_details(error)
    found: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found.extend(v.type for v in failure.violations)
    return found


@contextlib.asynccontextmanager
async def _timers_paused(app) -> AsyncIterator[None]:
    """No deadline fires inside the block (the scheduler's firing lock is held), so a command can
    meet an overdue deadline its timer has not handled yet. Never call settle() inside it."""
    async with app.core.deadlines._lock:
        yield


def _debt_objection() -> pb.Objection:
    return pb.Objection(
        reason=pb.OBJECTION_REASON_DEBT,
        detail="unpaid bill",
        debt=pb.Debt(
            owed=common_pb2.Money(amount="120.50", currency="PEN"),
            due_date=day("2026-11-10"),
            bill_number="B-2026-1001",
        ),
    )


# ----------------------------------------------------------------------------- donor silence


async def test_donor_silent_on_a_port_request_counts_as_no_objection(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    filed = await _file(operators, clock, numbers=[block("940000101")])
    assert when(filed.donor_deadline) == lima(2026, 11, 23, 10, 5)

    await advance(app, clock, timedelta(minutes=4, seconds=59))
    pending = await _get(operators, filed.id)
    assert pending.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    assert not pending.donor_silent
    assert await _records(app, filed.id) == []

    await advance(app, clock, timedelta(seconds=1))
    silent = await _get(operators, filed.id)
    assert silent.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert silent.donor_silent
    assert not silent.HasField("answered_at")
    assert when(silent.admissible_at) == lima(2026, 11, 23, 10, 5)
    assert when(silent.schedule_deadline) == lima(2026, 11, 23, 22, 0)

    [record] = await _records(app, filed.id)
    assert record["operator_id"] == "movistar"
    assert record["flow"] == "portability"
    assert record["rule"] == "request_donor_answer"
    assert record["infraction"] == 21
    assert record["severity"] == "grave"
    assert record["due_at"] == lima(2026, 11, 23, 10, 5)

    spr = await _event(claro, code="SPR", case_id=filed.id)
    assert spr is not None, "the recipient never received SPR"
    assert spr.port_request.port_request.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert await _event(movistar, code="SPR", case_id=filed.id) is not None
    assert await _compliance_event(movistar, filed.id, "request_donor_answer")


async def test_donor_silent_on_a_prior_consultation_counts_as_no_objection(app, operators, clock):
    claro = operators["claro"]
    consultation = await claro.call(
        "SubmitPriorConsultation",
        pb.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
            ),
            numbers=[block("940000102")],
        ),
    )
    assert consultation.state == pb.PRIOR_CONSULTATION_STATE_AWAITING_DONOR
    assert when(consultation.donor_deadline) == lima(2026, 11, 23, 10, 5)

    async def get() -> pb.PriorConsultation:
        return await claro.call(
            "GetPriorConsultation", pb.GetPriorConsultationRequest(consultation_id=consultation.id)
        )

    await advance(app, clock, timedelta(minutes=4, seconds=59))
    assert (await get()).state == pb.PRIOR_CONSULTATION_STATE_AWAITING_DONOR
    assert await _records(app, consultation.id) == []

    await advance(app, clock, timedelta(seconds=1))
    silent = await get()
    assert silent.state == pb.PRIOR_CONSULTATION_STATE_ADMISSIBLE
    assert silent.donor_silent

    [record] = await _records(app, consultation.id)
    assert record["operator_id"] == "movistar"
    assert record["rule"] == "consultation_donor_answer"
    assert record["infraction"] == 18
    assert record["severity"] == "grave"
    assert record["due_at"] == lima(2026, 11, 23, 10, 5)

    assert await _event(claro, code="CPPR", case_id=consultation.id) is not None

    # The admissible consultation backs a port request.
    filed = await _file(
        operators, clock, numbers=[block("940000102")], prior_consultation_id=consultation.id
    )
    assert filed.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR


async def test_donor_answering_a_port_request_too_late_is_refused(app, operators, clock):
    claro = operators["claro"]
    filed = await _file(operators, clock, numbers=[block("940000103")])
    late = pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True)
    async with _timers_paused(app):
        clock.advance(timedelta(minutes=5, seconds=1))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await operators["movistar"].call("AnswerPortRequest", late)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _precondition_types(refused.value) == ["DEADLINE_PASSED"]
        # The refusal itself declares the silence (its timer has not run yet).
        meanwhile = await _get(operators, filed.id)
        assert meanwhile.state == pb.PORT_REQUEST_STATE_ADMISSIBLE, "the refusal kept no effects"
        assert meanwhile.donor_silent
        assert len(await _records(app, filed.id, "request_donor_answer")) == 1
    await settle(app)
    # A retry of the same command gets the same answer.
    with pytest.raises(grpc.aio.AioRpcError) as retried:
        await operators["movistar"].call("AnswerPortRequest", late)
    assert retried.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _precondition_types(retried.value) == ["DEADLINE_PASSED"]

    after = await _get(operators, filed.id)
    assert after.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert after.donor_silent
    assert not after.HasField("answered_at")
    [record] = await _records(app, filed.id)
    assert (record["operator_id"], record["rule"], record["infraction"]) == (
        "movistar",
        "request_donor_answer",
        21,
    )
    assert await _event(claro, code="SPR", case_id=filed.id) is not None

    # A late objection fares no better: the request stays admissible.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await _answer(operators, filed, accept=False, objection=_debt_objection())
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await _get(operators, filed.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert len(await _records(app, filed.id)) == 1


async def test_donor_answering_a_prior_consultation_too_late_is_refused(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    consultation = await claro.call(
        "SubmitPriorConsultation",
        pb.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
            ),
            numbers=[block("940000104")],
        ),
    )
    async with _timers_paused(app):
        clock.advance(timedelta(minutes=6))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await movistar.call(
                "AnswerPriorConsultation",
                pb.AnswerPriorConsultationRequest(
                    request_id=rid(),
                    consultation_id=consultation.id,
                    accept=False,
                    objection=pb.Objection(reason=pb.OBJECTION_REASON_NUMBER_NOT_OWNED),
                ),
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _precondition_types(refused.value) == ["DEADLINE_PASSED"]
        meanwhile = await claro.call(
            "GetPriorConsultation", pb.GetPriorConsultationRequest(consultation_id=consultation.id)
        )
        assert meanwhile.state == pb.PRIOR_CONSULTATION_STATE_ADMISSIBLE, (
            "the refusal kept no effects"
        )
        assert len(await _records(app, consultation.id)) == 1
    await settle(app)

    after = await claro.call(
        "GetPriorConsultation", pb.GetPriorConsultationRequest(consultation_id=consultation.id)
    )
    assert after.state == pb.PRIOR_CONSULTATION_STATE_ADMISSIBLE
    assert after.donor_silent
    assert not after.HasField("objection")
    [record] = await _records(app, consultation.id)
    assert (record["operator_id"], record["rule"], record["infraction"]) == (
        "movistar",
        "consultation_donor_answer",
        18,
    )
    assert await _event(claro, code="CPPR", case_id=consultation.id) is not None


# ----------------------------------------------------------------------------- mobile scheduling


async def test_mobile_schedule_at_2159_is_accepted_and_broadcast(app, operators, clock):
    entel = operators["entel"]
    request = await _admissible(app, operators, clock, numbers=[block("940000201")])
    assert when(request.admissible_at) == lima(2026, 11, 23, 10, 1)
    assert when(request.schedule_deadline) == lima(2026, 11, 23, 22, 0)
    assert when(request.execution_limit) == lima(2026, 11, 24, 6, 0)

    await advance_to(app, clock, lima(2026, 11, 23, 21, 59))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    scheduled = await _schedule(operators, request.id, lima(2026, 11, 24, 2, 0))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED
    assert when(scheduled.scheduled_at) == lima(2026, 11, 24, 2, 0)
    await settle(app)

    pep = await _event(entel, code="PEP", case_id=request.id)
    assert pep is not None, "a third operator never received the PEP broadcast"
    assert pep.broadcast
    assert when(pep.port_request.port_request.scheduled_at) == lima(2026, 11, 24, 2, 0)
    assert not pep.port_request.port_request.HasField("subscriber")
    assert not pep.port_request.port_request.HasField("execution_limit")

    # The 22:00 limit passes harmlessly once scheduled.
    await advance_to(app, clock, lima(2026, 11, 23, 22, 1))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_SCHEDULED
    assert await _records(app, request.id) == []

    # And the port executes at the scheduled instant.
    await advance_to(app, clock, lima(2026, 11, 24, 2, 0))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_EXECUTED


async def test_mobile_not_scheduled_by_2200_is_cancelled(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    request = await _admissible(app, operators, clock, numbers=[block("940000202")])

    await advance_to(app, clock, lima(2026, 11, 23, 21, 59, 59))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert await _records(app, request.id) == []

    await advance_to(app, clock, lima(2026, 11, 23, 22, 1))
    cancelled = await _get(operators, request.id)
    assert cancelled.state == pb.PORT_REQUEST_STATE_CANCELLED
    assert when(cancelled.closed_at) <= lima(2026, 11, 23, 22, 1)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, request.id, lima(2026, 11, 24, 2, 0))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_CANCELLED

    [record] = await _records(app, request.id)
    assert record["operator_id"] == "claro"
    assert record["rule"] == "mobile_schedule"
    assert record["infraction"] == 24
    assert record["severity"] == "leve"
    assert record["due_at"] == lima(2026, 11, 23, 22, 0)

    assert await _event(claro, code="CNPF", case_id=request.id) is not None
    assert await _event(movistar, code="CNPF", case_id=request.id) is not None

    # The number is free again: a new request for it is accepted.
    again = await _file(operators, clock, numbers=[block("940000202")])
    assert again.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR


async def test_mobile_schedule_after_2200_before_the_timer_cancels(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    request = await _admissible(app, operators, clock, numbers=[block("940000203")])
    async with _timers_paused(app):
        clock.set(lima(2026, 11, 23, 22, 1))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _schedule(operators, request.id, lima(2026, 11, 24, 2, 0))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _precondition_types(refused.value) == ["DEADLINE_PASSED"]
        meanwhile = await _get(operators, request.id)
        assert meanwhile.state == pb.PORT_REQUEST_STATE_CANCELLED, "the refusal kept no effects"
        assert len(await _records(app, request.id, "mobile_schedule")) == 1
    await settle(app)

    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_CANCELLED
    [record] = await _records(app, request.id)
    assert (record["operator_id"], record["rule"], record["infraction"]) == (
        "claro",
        "mobile_schedule",
        24,
    )
    assert await _event(claro, code="CNPF", case_id=request.id) is not None
    assert await _event(movistar, code="CNPF", case_id=request.id) is not None


async def test_schedule_outside_a_change_window_is_invalid(app, operators, clock):
    request = await _admissible(app, operators, clock, numbers=[block("940000204")])
    for outside in (
        lima(2026, 11, 23, 23, 0),  # before the window opens
        lima(2026, 11, 24, 6, 0),  # the window's end is exclusive
        lima(2026, 11, 23, 14, 0),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _schedule(operators, request.id, outside)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "scheduled_at" in field_violations(refused.value)
    after = await _get(operators, request.id)
    assert after.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert not after.HasField("scheduled_at")


async def test_schedule_beyond_the_execution_limit_is_refused_with_flep(app, operators, clock):
    claro = operators["claro"]
    request = await _admissible(app, operators, clock, numbers=[block("940000205")])
    beyond = lima(2026, 11, 25, 2, 0)  # Wednesday's window; the limit is Tuesday 06:00
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, request.id, beyond)
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "scheduled_at" in field_violations(refused.value)
    await settle(app)

    flep = await _event(claro, code="FLEP", case_id=request.id)
    assert flep is not None, "the recipient never received FLEP"
    assert when(flep.port_request.requested_at) == beyond
    after = await _get(operators, request.id)
    assert after.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert not after.HasField("scheduled_at")

    # The recipient can still schedule inside the limit.
    ok = await _schedule(operators, request.id, lima(2026, 11, 24, 5, 59))
    assert ok.state == pb.PORT_REQUEST_STATE_SCHEDULED


# ----------------------------------------------------------------------------- the 24-hour rule


async def test_execution_limit_ordinary_monday(app, operators, clock):
    filed = await _file(operators, clock, numbers=[block("940000301")])
    assert when(filed.submitted_at) == lima(2026, 11, 23, 10, 0)
    assert not filed.special_client
    assert when(filed.execution_limit) == lima(2026, 11, 24, 6, 0)


async def test_execution_limit_saturday_before_a_monday_holiday(app, operators, clock):
    # Monday 7 June 2027 is Flag Day. Saturday (day before Sunday), Sunday and the holiday are
    # skipped; the 24 hours run from Tuesday 8 June 00:00 to Wednesday 00:00, whose window closes
    # at 06:00.
    assert app.core.calendar("PE").is_holiday(datetime(2027, 6, 7).date())
    clock.set(lima(2027, 6, 5, 10, 0))
    filed = await _file(operators, clock, numbers=[block("940000302")])
    assert when(filed.execution_limit) == lima(2027, 6, 9, 6, 0)

    await advance(app, clock, timedelta(minutes=1))
    await _answer(operators, filed)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, filed.id, lima(2027, 6, 10, 2, 0))
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
    scheduled = await _schedule(operators, filed.id, lima(2027, 6, 9, 2, 0))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED


async def test_execution_limit_friday_before_a_holiday(app, operators, clock):
    # Saturday 25 December 2027 is Christmas: Friday 24 (day before it), Saturday and Sunday are
    # skipped; 24 hours from Monday 27 00:00 end Tuesday 28 00:00, window closes 06:00.
    assert app.core.calendar("PE").is_holiday(datetime(2027, 12, 25).date())
    clock.set(lima(2027, 12, 24, 10, 0))
    filed = await _file(operators, clock, numbers=[block("940000303")])
    assert when(filed.execution_limit) == lima(2027, 12, 28, 6, 0)


# ----------------------------------------------------------------------------- special clients


async def test_special_client_has_five_business_days(app, operators, clock):
    request = await _admissible(app, operators, clock, numbers=[block("940000401", "940000411")])
    assert request.number_count == 11
    assert request.special_client
    # Monday 23 Nov + 5 business days = Monday 30 Nov; the next window closes Tue 1 Dec 06:00.
    assert when(request.execution_limit) == lima(2026, 12, 1, 6, 0)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, request.id, lima(2026, 12, 2, 2, 0))
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE

    third_business_day = lima(2026, 11, 26, 2, 0)  # Thursday
    scheduled = await _schedule(operators, request.id, third_business_day)
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED
    assert when(scheduled.scheduled_at) == third_business_day


async def test_ten_numbers_is_not_a_special_client(app, operators, clock):
    request = await _admissible(app, operators, clock, numbers=[block("940000501", "940000510")])
    assert request.number_count == 10
    assert not request.special_client
    assert when(request.execution_limit) == lima(2026, 11, 24, 6, 0)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, request.id, lima(2026, 11, 26, 2, 0))
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE


# ----------------------------------------------------------------------------- fixed service


async def _fixed_admissible(app, operators, clock, number: str) -> pb.PortRequest:
    return await _admissible(
        app,
        operators,
        clock,
        numbers=[block(number)],
        service=common_pb2.SERVICE_TYPE_FIXED,
    )


async def _report_installation(operators, case_id: str, installed: str) -> pb.PortRequest:
    return await operators["claro"].call(
        "ReportInstallation",
        pb.ReportInstallationRequest(
            request_id=rid(), port_request_id=case_id, installation_date=day(installed)
        ),
    )


async def test_fixed_cannot_be_scheduled_before_the_installation(app, operators, clock):
    request = await _fixed_admissible(app, operators, clock, "12000001")
    assert not request.HasField("schedule_deadline")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _schedule(operators, request.id, lima(2026, 11, 24, 2, 0))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _precondition_types(refused.value) == ["INSTALLATION_PENDING"]

    installed = await _report_installation(operators, request.id, "2026-11-23")
    assert installed.installation_date == day("2026-11-23")
    assert when(installed.schedule_deadline) == lima(2026, 11, 24, 22, 0)
    scheduled = await _schedule(operators, request.id, lima(2026, 11, 24, 2, 0))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED


async def test_fixed_not_scheduled_by_2200_after_installation_is_cancelled(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    request = await _fixed_admissible(app, operators, clock, "12000002")
    await _report_installation(operators, request.id, "2026-11-23")

    # No limit runs before the installation is reported, and the mobile 22:00 does not apply.
    await advance_to(app, clock, lima(2026, 11, 24, 21, 59, 59))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert await _records(app, request.id) == []

    await advance_to(app, clock, lima(2026, 11, 24, 22, 0))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_CANCELLED
    [record] = await _records(app, request.id)
    assert record["operator_id"] == "claro"
    assert record["rule"] == "fixed_schedule"
    assert record["infraction"] == 25
    assert record["severity"] == "leve"
    assert record["due_at"] == lima(2026, 11, 24, 22, 0)
    assert await _event(claro, code="CNPF", case_id=request.id) is not None
    assert await _event(movistar, code="CNPF", case_id=request.id) is not None


async def test_fixed_without_installation_is_never_cancelled_by_the_mobile_limit(
    app, operators, clock
):
    request = await _fixed_admissible(app, operators, clock, "12000003")
    await advance_to(app, clock, lima(2026, 11, 24, 23, 0))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert await _records(app, request.id) == []


async def test_fixed_installed_days_later_can_be_scheduled_in_time(app, operators, clock):
    """The fixed port "is subject to the prior installation of the new service" (003, form) and
    must be scheduled by 22:00 of the day after the installation (infraction 25): a recipient that
    installs two days after filing and schedules the next change window, before its limit, must
    be accepted rather than refused (FLEP) and then fined for not scheduling."""
    request = await _fixed_admissible(app, operators, clock, "12000004")
    await advance_to(app, clock, lima(2026, 11, 25, 10, 0))  # Wednesday
    installed = await _report_installation(operators, request.id, "2026-11-25")
    assert when(installed.schedule_deadline) == lima(2026, 11, 26, 22, 0)
    scheduled = await _schedule(operators, request.id, lima(2026, 11, 26, 2, 0))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED


# ----------------------------------------------------------------------------- execution


async def _executed(app, operators, clock, number: str) -> pb.PortRequest:
    """Admissible at 10:01, scheduled for Tuesday 01:00 Lima, executed at that instant."""
    request = await _admissible(app, operators, clock, numbers=[block(number)])
    await _schedule(operators, request.id, lima(2026, 11, 24, 1, 0))
    await advance_to(app, clock, lima(2026, 11, 24, 1, 0))
    executed = await _get(operators, request.id)
    assert executed.state == pb.PORT_REQUEST_STATE_EXECUTED
    return executed


async def test_donor_not_disabling_at_the_scheduled_instant(app, operators, clock):
    request = await _executed(app, operators, clock, "940000601")
    await advance_to(app, clock, lima(2026, 11, 24, 1, 10))
    enabled = await _confirm(operators, request.id, "claro", pb.EXECUTION_STEP_RECIPIENT_ENABLED)
    assert enabled.state == pb.PORT_REQUEST_STATE_EXECUTED

    # Scheduled at 01:00, with the default tolerance of 15 minutes (infraction 27).
    await advance_to(app, clock, lima(2026, 11, 24, 1, 14, 59))
    assert await _records(app, request.id) == []

    await advance_to(app, clock, lima(2026, 11, 24, 1, 15))
    [record] = await _records(app, request.id)
    assert record["operator_id"] == "movistar"
    assert record["rule"] == "donor_disable"
    assert record["infraction"] == 27
    assert record["severity"] == "grave"
    assert record["due_at"] == lima(2026, 11, 24, 1, 15)
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_EXECUTED
    assert await _compliance_event(operators["movistar"], request.id, "donor_disable")

    # Confirming late completes the port; the breach is recorded once.
    await advance(app, clock, timedelta(minutes=30))
    done = await _confirm(operators, request.id, "movistar", pb.EXECUTION_STEP_DONOR_DISABLED)
    assert done.state == pb.PORT_REQUEST_STATE_COMPLETED
    await settle(app)
    assert len(await _records(app, request.id)) == 1


async def test_recipient_not_enabling_within_three_hours(app, operators, clock):
    request = await _executed(app, operators, clock, "940000602")
    await advance_to(app, clock, lima(2026, 11, 24, 1, 10))
    disabled = await _confirm(operators, request.id, "movistar", pb.EXECUTION_STEP_DONOR_DISABLED)
    assert disabled.state == pb.PORT_REQUEST_STATE_EXECUTED

    await advance_to(app, clock, lima(2026, 11, 24, 3, 59, 59))
    assert await _records(app, request.id) == []

    await advance_to(app, clock, lima(2026, 11, 24, 4, 0))
    [record] = await _records(app, request.id)
    assert record["operator_id"] == "claro"
    assert record["rule"] == "recipient_enable"
    assert record["infraction"] == 28
    assert record["severity"] == "grave"
    assert record["due_at"] == lima(2026, 11, 24, 4, 0)

    await advance_to(app, clock, lima(2026, 11, 24, 7, 0))
    assert len(await _records(app, request.id)) == 1  # the donor confirmed in time


async def test_confirmations_in_time_complete_the_port_without_records(app, operators, clock):
    claro = operators["claro"]
    request = await _executed(app, operators, clock, "940000603")
    await advance_to(app, clock, lima(2026, 11, 24, 1, 14))
    await _confirm(operators, request.id, "movistar", pb.EXECUTION_STEP_DONOR_DISABLED)
    await advance_to(app, clock, lima(2026, 11, 24, 1, 45))
    done = await _confirm(operators, request.id, "claro", pb.EXECUTION_STEP_RECIPIENT_ENABLED)
    assert done.state == pb.PORT_REQUEST_STATE_COMPLETED
    assert when(done.donor_disabled_at) == lima(2026, 11, 24, 1, 14)
    assert when(done.recipient_enabled_at) == lima(2026, 11, 24, 1, 45)

    await advance_to(app, clock, lima(2026, 11, 24, 12, 0))  # past both deadlines
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_COMPLETED
    assert await _records(app, request.id) == []
    completed = await _event(claro, type_="portability.request.completed", case_id=request.id)
    assert completed is not None
    assert completed.port_request.port_request.state == pb.PORT_REQUEST_STATE_COMPLETED


# ----------------------------------------------------------------------------- debt objections


async def _objected(app, operators, clock, number: str) -> pb.PortRequest:
    filed = await _file(operators, clock, numbers=[block(number)])
    await advance(app, clock, timedelta(minutes=1))
    objected = await _answer(operators, filed, accept=False, objection=_debt_objection())
    assert objected.state == pb.PORT_REQUEST_STATE_OBJECTED_DEBT
    assert when(objected.answered_at) == lima(2026, 11, 23, 10, 1)
    return objected


async def _prove(operators, case_id: str, paid_at: datetime) -> pb.PortRequest:
    return await operators["claro"].call(
        "SubmitDebtPaymentProof",
        pb.SubmitDebtPaymentProofRequest(
            request_id=rid(),
            port_request_id=case_id,
            receipt_number="R-77/2026",
            paid_at=ts(paid_at),
        ),
    )


async def test_debt_objection_not_lifted_in_time_is_rejected(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    request = await _objected(app, operators, clock, "940000701")
    assert await _event(claro, code="OCC", case_id=request.id) is not None

    await advance_to(app, clock, lima(2026, 11, 24, 10, 0, 59))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_OBJECTED_DEBT

    await advance_to(app, clock, lima(2026, 11, 24, 10, 1))
    rejected = await _get(operators, request.id)
    assert rejected.state == pb.PORT_REQUEST_STATE_REJECTED
    assert rejected.rejection_reason
    assert await _event(claro, code="RABDCP", case_id=request.id) is not None
    assert await _event(movistar, code="RABDCP", case_id=request.id) is not None

    with pytest.raises(grpc.aio.AioRpcError) as late:
        await _prove(operators, request.id, lima(2026, 11, 24, 9, 0))
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The number is free again.
    again = await _file(operators, clock, numbers=[block("940000701")])
    assert again.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR


async def test_debt_paid_after_the_objection_lifts_it(app, operators, clock):
    movistar = operators["movistar"]
    request = await _objected(app, operators, clock, "940000702")
    await advance_to(app, clock, lima(2026, 11, 23, 11, 0))
    lifted = await _prove(operators, request.id, lima(2026, 11, 23, 10, 30))
    assert lifted.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert when(lifted.admissible_at) == lima(2026, 11, 23, 11, 0)
    assert when(lifted.schedule_deadline) == lima(2026, 11, 23, 22, 0)
    await settle(app)

    apdc = await _event(movistar, code="APDC", case_id=request.id)
    assert apdc is not None, "the donor never received APDC"
    assert apdc.port_request.debt_proof.receipt_number == "R-77/2026"
    assert await _event(operators["claro"], code="SPR", case_id=request.id) is not None

    # The debt-proof timer does not reject it later.
    await advance_to(app, clock, lima(2026, 11, 23, 21, 0))
    assert (await _get(operators, request.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert await _records(app, request.id) == []


async def test_debt_paid_before_the_presentation_is_an_improper_objection(app, operators, clock):
    request = await _objected(app, operators, clock, "940000703")
    await advance_to(app, clock, lima(2026, 11, 23, 11, 0))
    lifted = await _prove(operators, request.id, lima(2026, 11, 20, 16, 0))
    assert lifted.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    await settle(app)

    [record] = await _records(app, request.id)
    assert record["operator_id"] == "movistar"
    assert record["rule"] == "improper_objection"
    assert record["infraction"] == 23
    assert record["severity"] == "muy_grave"
    assert await _compliance_event(operators["movistar"], request.id, "improper_objection")


async def test_debt_lifted_the_next_morning_can_still_be_scheduled(app, operators, clock):
    """A request declared admissible after a lifted debt objection gets a scheduling limit of 22:00
    that day; the recipient must be able to meet it with some change window. With the execution
    limit frozen at submission + 24 h (Tuesday 06:00) every schedule made on Tuesday is refused
    (FLEP) and the request is then cancelled with the recipient fined (infraction 24)."""
    request = await _objected(app, operators, clock, "940000704")
    await advance_to(app, clock, lima(2026, 11, 24, 9, 0))
    lifted = await _prove(operators, request.id, lima(2026, 11, 24, 8, 30))
    assert lifted.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert when(lifted.schedule_deadline) == lima(2026, 11, 24, 22, 0)
    scheduled = await _schedule(operators, request.id, lima(2026, 11, 25, 2, 0))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED
