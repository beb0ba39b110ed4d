"""gRPC servicer of suspensions: translation only."""

from __future__ import annotations

from typing import Any

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.flows.suspension.handler import SuspensionHandler
from npc.v1 import suspension_pb2 as pb
from npc.v1 import suspension_pb2_grpc as pb_grpc


class SuspensionServicer(pb_grpc.SuspensionServiceServicer):
    """SuspensionService over the handler."""

    def __init__(self, handler: SuspensionHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def _command(self, method: str, request: Any, fn: Any) -> pb.Suspension:
        caller = current_caller()
        return await self.commands.run(
            caller, method, request, pb.Suspension, lambda txn: fn(txn, caller, request)
        )

    async def RequestSuspension(
        self, request: pb.RequestSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command("RequestSuspension", request, self.handler.request_suspension)

    async def ConfirmSuspension(
        self, request: pb.ConfirmSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command("ConfirmSuspension", request, self.handler.confirm_suspension)

    async def RequestReactivation(
        self, request: pb.RequestReactivationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "RequestReactivation", request, self.handler.request_reactivation
        )

    async def ConfirmReactivation(
        self, request: pb.ConfirmReactivationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "ConfirmReactivation", request, self.handler.confirm_reactivation
        )

    async def GetSuspension(
        self, request: pb.GetSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self.handler.get_suspension(current_caller(), request)
