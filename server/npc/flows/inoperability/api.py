"""gRPC servicer of the inoperability registry: translation only."""

from __future__ import annotations

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.inoperability.handler import InoperabilityHandler
from npc.v1 import inoperability_pb2 as pb
from npc.v1 import inoperability_pb2_grpc as pb_grpc


class InoperabilityServicer(CommandServicer, pb_grpc.InoperabilityServiceServicer):
    """InoperabilityService over the handler."""

    def __init__(self, handler: InoperabilityHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def RegisterAttentionPoint(
        self, request: pb.RegisterAttentionPointRequest, context: grpc.aio.ServicerContext
    ) -> pb.AttentionPoint:  # noqa: N802, E501
        return await self._command(
            "RegisterAttentionPoint",
            request,
            pb.AttentionPoint,
            self.handler.register_attention_point,
        )

    async def RegisterInoperability(
        self, request: pb.RegisterInoperabilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.InoperabilityEvent:  # noqa: N802, E501
        return await self._command(
            "RegisterInoperability",
            request,
            pb.InoperabilityEvent,
            self.handler.register_inoperability,
        )

    async def CloseInoperability(
        self, request: pb.CloseInoperabilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.InoperabilityEvent:  # noqa: N802, E501
        return await self._command(
            "CloseInoperability", request, pb.InoperabilityEvent, self.handler.close_inoperability
        )

    async def RecordCriticalTransaction(
        self, request: pb.RecordCriticalTransactionRequest, context: grpc.aio.ServicerContext
    ) -> pb.InoperabilityEvent:  # noqa: N802, E501
        return await self._command(
            "RecordCriticalTransaction",
            request,
            pb.InoperabilityEvent,
            self.handler.record_critical_transaction,
        )

    async def SubmitInoperabilityReport(
        self, request: pb.SubmitInoperabilityReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.InoperabilityReport:  # noqa: N802, E501
        return await self._command(
            "SubmitInoperabilityReport",
            request,
            pb.InoperabilityReport,
            self.handler.submit_report,
        )

    async def GetInoperability(
        self, request: pb.GetInoperabilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.InoperabilityEvent:  # noqa: N802, E501
        return await self.handler.get_inoperability(current_caller(), request)
