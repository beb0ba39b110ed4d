"""The SDK's blocking client (`SyncOperatorClient`, what Locust uses) retries a call whose deadline
passed with the same request, so the clearinghouse answers it once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc

from npc.v1 import portability_pb2 as pb
from npc_clients import SyncOperatorClient
from tests.helpers import port_request, rid


async def test_a_deadline_is_retried_with_the_same_request_id_and_answered_once(
    app, operators, clock
):
    filed = await operators["claro"].call("SubmitPortRequest", port_request(clock))
    answer = pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True)
    retries: list[tuple[str, str, grpc.StatusCode]] = []
    retried = threading.Event()

    def on_retry(method: str, request: Any, error: grpc.RpcError) -> None:
        retries.append((method, request.request_id, error.code()))
        retried.set()

    target = f"127.0.0.1:{app.grpc_port}"
    with SyncOperatorClient(
        target, "dev-token-movistar", operator="movistar", retry_for=30, on_retry=on_retry
    ) as movistar:
        assert app.core is not None
        # Someone else holds the case (as a long command would): the answer waits past its
        # deadline until the lock is released, then a retry goes through.
        async with app.core.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"portability:{filed.id}"
            )
            answering = asyncio.create_task(
                asyncio.to_thread(
                    movistar.call, movistar.portability.AnswerPortRequest, answer, timeout=0.5
                )
            )
            assert await asyncio.to_thread(retried.wait, 20)
        answered = await answering
        again = await asyncio.to_thread(
            movistar.call, movistar.portability.AnswerPortRequest, answer
        )
    assert retries[0] == (
        "/npc.v1.PortabilityService/AnswerPortRequest",
        answer.request_id,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    assert answered.state != filed.state
    assert again == answered  # the first answer again, not a second answer
