"""A port through the installed SDK, run by the interpreter of a fresh virtual environment.

    python wheel_port.py file TARGET RECEIVED_AT   # claro files, movistar accepts, claro schedules
    python wheel_port.py finish TARGET CASE_ID     # both confirm the execution; prints the state

Imports only what the wheels installed (npc_clients, npc.v1, grpc); prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta

import npc_clients
from npc.v1 import common_pb2, portability_pb2
from npc_clients import OperatorClient


async def file(target: str, received_at: datetime) -> dict[str, str]:
    async with (
        OperatorClient(target, "dev-token-claro", operator="claro") as claro,
        OperatorClient(target, "dev-token-movistar", operator="movistar") as movistar,
    ):
        request = portability_pb2.SubmitPortRequestRequest(
            request_id=claro.new_request_id(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani",
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
                ),
            ),
            numbers=[
                common_pb2.NumberBlock(first="940000001", modality=common_pb2.MODALITY_PREPAID)
            ],
            form_number="F-0001",
        )
        request.received_at.FromDatetime(received_at)
        filed: portability_pb2.PortRequest = await claro.unary(
            claro.portability.SubmitPortRequest, request
        )
        await movistar.unary(
            movistar.portability.AnswerPortRequest,
            portability_pb2.AnswerPortRequestRequest(
                request_id=movistar.new_request_id(), port_request_id=filed.id, accept=True
            ),
        )
        window = filed.execution_limit.ToDatetime() - timedelta(hours=6)
        schedule = portability_pb2.SchedulePortRequest(
            request_id=claro.new_request_id(), port_request_id=filed.id
        )
        schedule.scheduled_at.FromDatetime(window)
        scheduled: portability_pb2.PortRequest = await claro.unary(
            claro.portability.SchedulePort, schedule
        )
        return {
            "id": filed.id,
            "window": window.isoformat(),
            "state": portability_pb2.PortRequestState.Name(scheduled.state),
            "sdk": npc_clients.__file__,
        }


async def finish(target: str, case_id: str) -> dict[str, str]:
    async with (
        OperatorClient(target, "dev-token-claro", operator="claro") as claro,
        OperatorClient(target, "dev-token-movistar", operator="movistar") as movistar,
    ):
        for client, step in (
            (movistar, portability_pb2.EXECUTION_STEP_DONOR_DISABLED),
            (claro, portability_pb2.EXECUTION_STEP_RECIPIENT_ENABLED),
        ):
            done: portability_pb2.PortRequest = await client.unary(
                client.portability.ConfirmPortExecution,
                portability_pb2.ConfirmPortExecutionRequest(
                    request_id=client.new_request_id(), port_request_id=case_id, step=step
                ),
            )
        return {"state": portability_pb2.PortRequestState.Name(done.state)}


def main() -> None:
    phase, target, value = sys.argv[1:4]
    if phase == "file":
        result = asyncio.run(file(target, datetime.fromisoformat(value)))
    else:
        result = asyncio.run(finish(target, value))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
