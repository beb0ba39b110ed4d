"""gRPC servicer of the registry: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.returns import ConsentReturns, ReturnsHandler
from npc.v1 import registry_pb2 as pb
from npc.v1 import registry_pb2_grpc as pb_grpc


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    """RegistryService over the handler. Every identified caller may look numbers up."""

    LookupNumber = Query(RegistryHandler.lookup_one, caller=False)
    LookupNumbers = Query(RegistryHandler.lookup_many, caller=False)

    def __init__(self, handler: RegistryHandler) -> None:
        self.handler = handler

    async def StreamSnapshot(
        self, request: pb.StreamSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SnapshotChunk]:  # noqa: N802, E501
        async for chunk in self.handler.snapshot(request):
            yield chunk


class ReturnsServicer(CommandServicer, pb_grpc.ReturnsServiceServicer):
    """ReturnsService over its handler; mutating calls go through the idempotent command runner."""

    ReportDisconnection = Command(
        ReturnsHandler.report_disconnection, pb.ReportDisconnectionResponse
    )
    RequestReturn = Command(ConsentReturns.request_return, pb.NumberReturn, on="consent")
    AnswerReturn = Command(ConsentReturns.answer_return, pb.NumberReturn, on="consent")
    ConfirmReturnExecution = Command(
        ConsentReturns.confirm_return_execution, pb.NumberReturn, on="consent"
    )
    GetReturn = Query(ConsentReturns.get_return, on="consent")

    def __init__(
        self, handler: ReturnsHandler, consent: ConsentReturns, commands: CommandRunner
    ) -> None:
        self.handler = handler
        self.consent = consent
        self.commands = commands
