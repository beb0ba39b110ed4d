"""A retry gets the first answer, refusals included: a request refused once stays refused under
its request id even after the state that refused it changed; statuses that answer nothing
(UNAVAILABLE, DEADLINE_EXCEEDED, ...) are not kept, so retrying those runs the command."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2

from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import block, port_request, rid, rpc_error_details, settle


async def fetchval(app: Any, sql: str, *args: Any) -> Any:
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def refused(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await `call`, which must fail with `code`."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    assert failure.value.code() == code, failure.value.details()
    return failure.value


async def stored_code(app: Any, caller: str, request_id: str) -> int | None:
    return await fetchval(
        app,
        "SELECT status_code FROM command_results WHERE caller = $1 AND request_id = $2",
        caller,
        request_id,
    )


async def test_already_exists_is_replayed_after_the_conflicting_case_ended(app, operators, clock):
    claro, entel = operators["claro"], operators["entel"]
    live = await claro.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")]))
    late = port_request(clock, numbers=[block("940000001")])
    first = await refused(entel.call("SubmitPortRequest", late), grpc.StatusCode.ALREADY_EXISTS)
    assert await stored_code(app, "entel", late.request_id) == code_pb2.ALREADY_EXISTS

    # The donor objects: the number is free again, but entel's request id was answered already.
    await operators["movistar"].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(
            request_id=rid(),
            port_request_id=live.id,
            accept=False,
            objection=pb.Objection(reason=pb.OBJECTION_REASON_WRONG_MODALITY),
        ),
    )
    await settle(app)
    cases = await fetchval(app, "SELECT count(*) FROM port_requests")
    events = await fetchval(app, "SELECT count(*) FROM events")
    again = await refused(entel.call("SubmitPortRequest", late), grpc.StatusCode.ALREADY_EXISTS)
    assert rpc_error_details(again) == rpc_error_details(first)
    await settle(app)
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == cases
    assert await fetchval(app, "SELECT count(*) FROM events") == events
    # A new request id is a new request: the number is free now.
    fresh = await entel.call("SubmitPortRequest", port_request(clock, numbers=[block("940000001")]))
    assert fresh.recipient == "entel"


async def test_invalid_argument_is_stored_and_replayed(app, operators, clock):
    claro = operators["claro"]
    request = port_request(clock, donor="claro")  # one's own number is never ported
    first = await refused(
        claro.call("SubmitPortRequest", request), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await stored_code(app, "claro", request.request_id) == code_pb2.INVALID_ARGUMENT
    again = await refused(
        claro.call("SubmitPortRequest", request), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert rpc_error_details(again) == rpc_error_details(first)
    assert await fetchval(app, "SELECT count(*) FROM command_results") == 1

    # The same id with another body is still refused as a reused id, not answered as the first.
    other = port_request(clock, numbers=[block("940000002")], request_id=request.request_id)
    reused = await refused(claro.call("SubmitPortRequest", other), grpc.StatusCode.INVALID_ARGUMENT)
    assert "already used for a different request" in reused.details()
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == 0


async def test_two_refused_attempts_racing_store_one_answer(app, operators, clock):
    claro = operators["claro"]
    request = port_request(clock, donor="claro")
    outcomes = await asyncio.gather(
        *(claro.call("SubmitPortRequest", request) for _ in range(4)), return_exceptions=True
    )
    assert {o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)} == {
        grpc.StatusCode.INVALID_ARGUMENT
    }, outcomes
    assert await fetchval(app, "SELECT count(*) FROM command_results") == 1


async def test_a_retry_of_an_attempt_that_answered_nothing_runs(app, operators, clock):
    claro = operators["claro"]
    filed = await claro.call("SubmitPortRequest", port_request(clock))
    answer = pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True)
    # No SDK retries: the test reads what the first attempt left (the SDK would send a
    # DEADLINE_EXCEEDED again, with the same request id, for `retry_for` seconds).
    movistar = OperatorClient(
        f"127.0.0.1:{app.grpc_port}", "dev-token-movistar", operator="movistar", retry_for=0
    )
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        # The case is locked here: the first attempt runs out of time waiting for it.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"portability:{filed.id}"
        )
        await refused(
            movistar.call("AnswerPortRequest", answer, timeout=1.0),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    assert await stored_code(app, "movistar", answer.request_id) is None
    accepted = await movistar.call("AnswerPortRequest", answer)
    await movistar.close()
    assert accepted.state != filed.state
    assert await stored_code(app, "movistar", answer.request_id) == code_pb2.OK
