"""A port from filing to completion, for one number and for a range."""

from __future__ import annotations

from datetime import timedelta

import aiohttp

from npc.v1 import portability_pb2 as pb
from tests.helpers import advance, advance_to, block, port_request, rid, settle, ts


async def test_one_number_end_to_end(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    filed = await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")]))
    assert filed.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    assert filed.id.startswith("SP")
    assert filed.donor_deadline.ToDatetime() - filed.submitted_at.ToDatetime() == timedelta(
        minutes=5
    )

    await advance(app, clock, timedelta(minutes=1))
    answered = await movistar.call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
    )
    assert answered.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert not answered.donor_silent

    window = answered.execution_limit.ToDatetime().replace(tzinfo=clock.now().tzinfo) - timedelta(
        hours=6
    )
    scheduled = await claro.call(
        "SchedulePort",
        pb.SchedulePortRequest(request_id=rid(), port_request_id=filed.id, scheduled_at=ts(window)),
    )
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED

    await advance_to(app, clock, window)
    executed = await claro.call(
        "GetPortRequest", pb.GetPortRequestRequest(port_request_id=filed.id)
    )
    assert executed.state == pb.PORT_REQUEST_STATE_EXECUTED
    async with app.core.db.pool.acquire() as conn:
        serving = await conn.fetchval(
            "SELECT serving_operator FROM ported_numbers WHERE number = '940000001'"
        )
    assert serving == "claro"

    await movistar.call(
        "ConfirmPortExecution",
        pb.ConfirmPortExecutionRequest(
            request_id=rid(), port_request_id=filed.id, step=pb.EXECUTION_STEP_DONOR_DISABLED
        ),
    )
    done = await claro.call(
        "ConfirmPortExecution",
        pb.ConfirmPortExecutionRequest(
            request_id=rid(), port_request_id=filed.id, step=pb.EXECUTION_STEP_RECIPIENT_ENABLED
        ),
    )
    assert done.state == pb.PORT_REQUEST_STATE_COMPLETED
    await settle(app)


async def test_metrics_expose_rpc_counts_and_donor_answer_times(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    filed = await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000077")]))
    await advance(app, clock, timedelta(seconds=42))
    await movistar.call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.http_port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert (
        samples['npc_donor_answer_seconds_bucket{le="60.0",message="SP",operator="movistar"}'] >= 1
    )
    assert (
        samples[
            'npc_rpc_handled_total{code="OK",method="SubmitPortRequest",operator="claro",service="PortabilityService"}'
        ]
        >= 1
    )
    assert (
        'npc_rpc_duration_seconds_bucket{le="0.5",method="AnswerPortRequest",operator="movistar",service="PortabilityService"}'
        in samples
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.http_port}/healthz") as response,
    ):
        health = await response.json()
    assert response.status == 200
    assert health["checks"] == {"postgres": "ok", "redis": "ok"}
