"""gRPC servicer of suspensions: translation only."""

from __future__ import annotations

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.suspension.handler import SuspensionHandler
from npc.v1 import suspension_pb2 as pb
from npc.v1 import suspension_pb2_grpc as pb_grpc


class SuspensionServicer(CommandServicer, pb_grpc.SuspensionServiceServicer):
    """SuspensionService over the handler."""

    def __init__(self, handler: SuspensionHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def RequestSuspension(
        self, request: pb.RequestSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "RequestSuspension", request, pb.Suspension, self.handler.request_suspension
        )

    async def ConfirmSuspension(
        self, request: pb.ConfirmSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "ConfirmSuspension", request, pb.Suspension, self.handler.confirm_suspension
        )

    async def RequestReactivation(
        self, request: pb.RequestReactivationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "RequestReactivation", request, pb.Suspension, self.handler.request_reactivation
        )

    async def ConfirmReactivation(
        self, request: pb.ConfirmReactivationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self._command(
            "ConfirmReactivation", request, pb.Suspension, self.handler.confirm_reactivation
        )

    async def GetSuspension(
        self, request: pb.GetSuspensionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Suspension:  # noqa: N802, E501
        return await self.handler.get_suspension(current_caller(), request)
