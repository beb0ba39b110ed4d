"""Every error the API returns carries a google.rpc.ErrorInfo: domain "npc" and a stable reason
an operator's system can branch on (npc.core.errors.Reason, or a precondition's type)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from npc.api.errors import to_status
from npc.api.interceptors import _failure_status
from npc.core.errors import ERROR_DOMAIN, AlreadyExists, FailedPrecondition, Reason
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import block, error_info, port_request, rid, ts


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_each_refusal_says_its_reason(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    seen: dict[grpc.StatusCode, str] = {}

    async def expect(call, code: grpc.StatusCode, reason: str) -> error_details_pb2.ErrorInfo:
        error = await _refused(call)
        assert error.code() == code, error.details()
        info = error_info(error)
        assert (info.domain, info.reason) == (ERROR_DOMAIN, reason), error.details()
        seen[code] = reason
        return info

    bad = port_request(clock, numbers=[block("12")])
    info = await expect(
        claro.call("SubmitPortRequest", bad), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELDS"
    )
    assert "numbers[0].first" in info.metadata["fields"]

    filed = await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")]))
    info = await expect(
        claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")])),
        grpc.StatusCode.ALREADY_EXISTS,
        "LIVE_CASE_EXISTS",
    )
    assert info.metadata["resource_name"]

    reused = port_request(clock, numbers=[block("940000002")])
    await claro.call("SubmitPortRequest", reused)
    reused.subscriber.name = "Otra Persona"
    await expect(
        claro.call("SubmitPortRequest", reused),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )

    await expect(
        claro.call("GetPortRequest", pb.GetPortRequestRequest(port_request_id="SP9999999999")),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    await expect(
        claro.call(
            "AnswerPortRequest",
            pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    await movistar.call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
    )
    await expect(
        movistar.call(
            "AnswerPortRequest",
            pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WRONG_STATE",
    )
    late = (clock.now() + timedelta(days=20)).replace(hour=6, minute=0)  # 01:00 in Lima
    await expect(
        claro.call(
            "SchedulePort",
            pb.SchedulePortRequest(
                request_id=rid(), port_request_id=filed.id, scheduled_at=ts(late)
            ),
        ),
        grpc.StatusCode.OUT_OF_RANGE,
        "VALUE_OUT_OF_RANGE",
    )
    stranger = OperatorClient(f"127.0.0.1:{app.grpc_port}", "not-a-token")
    try:
        await expect(
            stranger.call("GetPortRequest", pb.GetPortRequestRequest(port_request_id=filed.id)),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
        )
    finally:
        await stranger.close()
    huge = port_request(clock)
    huge.subscriber.name = "x" * 300_000
    await expect(
        claro.call("SubmitPortRequest", huge),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_TOO_LARGE",
    )
    assert len(seen) == 8  # every code above answered with its ErrorInfo

    # A refusal answered again from the stored result carries the same ErrorInfo.
    again = await _refused(claro.call("SubmitPortRequest", bad))
    assert error_info(again).reason == "INVALID_FIELDS"


def test_failures_that_are_not_domain_errors_carry_their_reason_too():
    cases = {
        asyncpg.DeadlockDetectedError("deadlock"): (code_pb2.ABORTED, Reason.CONCURRENT_UPDATE),
        TimeoutError(): (code_pb2.DEADLINE_EXCEEDED, Reason.CALL_TIMEOUT),
        ConnectionResetError(): (code_pb2.UNAVAILABLE, Reason.STORAGE_UNAVAILABLE),
        RuntimeError("a defect"): (code_pb2.INTERNAL, Reason.INTERNAL),
    }
    for exc, (code, reason) in cases.items():
        status = _failure_status(exc, "/npc.v1.PortabilityService/SubmitPortRequest")
        infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert status.code == code and len(infos) == 1, exc
        info = error_details_pb2.ErrorInfo()
        infos[0].Unpack(info)
        assert (info.domain, info.reason) == ("npc", reason), exc


def test_a_precondition_reason_is_its_type_and_a_live_case_is_named():
    status = to_status(FailedPrecondition("no", violation_type="NUMBER_NOT_IN_PLAN", subject="5"))
    info = error_details_pb2.ErrorInfo()
    status.details[-1].Unpack(info)
    assert (info.reason, info.metadata["subject"]) == ("NUMBER_NOT_IN_PLAN", "5")
    status = to_status(AlreadyExists("port request", "SP-1", "940000001 has a live request"))
    status.details[-1].Unpack(info)
    assert (info.reason, info.metadata["resource_name"]) == ("LIVE_CASE_EXISTS", "SP-1")
