"""gRPC servicer of the registry: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.returns import ConsentReturns, ReturnsHandler
from npc.v1 import registry_pb2 as pb
from npc.v1 import registry_pb2_grpc as pb_grpc


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    """RegistryService over the handler. Every identified caller may look numbers up."""

    def __init__(self, handler: RegistryHandler) -> None:
        self.handler = handler

    async def LookupNumber(
        self, request: pb.LookupNumberRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberRouting:  # noqa: N802, E501
        return await self.handler.lookup_one(request)

    async def LookupNumbers(
        self, request: pb.LookupNumbersRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupNumbersResponse:  # noqa: N802, E501
        return await self.handler.lookup_many(request)

    async def StreamSnapshot(
        self, request: pb.StreamSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SnapshotChunk]:  # noqa: N802, E501
        async for chunk in self.handler.snapshot(request):
            yield chunk


class ReturnsServicer(CommandServicer, pb_grpc.ReturnsServiceServicer):
    """ReturnsService over its handler; mutating calls go through the idempotent command runner."""

    def __init__(
        self, handler: ReturnsHandler, consent: ConsentReturns, commands: CommandRunner
    ) -> None:
        self.handler = handler
        self.consent = consent
        self.commands = commands

    async def ReportDisconnection(
        self, request: pb.ReportDisconnectionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportDisconnectionResponse:  # noqa: N802, E501
        return await self._command(
            "ReportDisconnection",
            request,
            pb.ReportDisconnectionResponse,
            self.handler.report_disconnection,
        )

    async def RequestReturn(
        self, request: pb.RequestReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberReturn:  # noqa: N802, E501
        return await self._command(
            "RequestReturn", request, pb.NumberReturn, self.consent.request_return
        )

    async def AnswerReturn(
        self, request: pb.AnswerReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberReturn:  # noqa: N802, E501
        return await self._command(
            "AnswerReturn", request, pb.NumberReturn, self.consent.answer_return
        )

    async def ConfirmReturnExecution(
        self, request: pb.ConfirmReturnExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberReturn:  # noqa: N802, E501
        return await self._command(
            "ConfirmReturnExecution",
            request,
            pb.NumberReturn,
            self.consent.confirm_return_execution,
        )

    async def GetReturn(
        self, request: pb.GetReturnRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberReturn:  # noqa: N802, E501
        return await self.consent.get_return(current_caller(), request)
