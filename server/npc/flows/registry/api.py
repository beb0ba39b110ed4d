"""gRPC servicers of the registry: method tables over the handlers, translated by `convert`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.registry import convert
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.returns import ConsentReturns, ReturnsHandler
from npc.v1 import registry_pb2 as pb
from npc.v1 import registry_pb2_grpc as pb_grpc


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    """RegistryService over the handler. Every identified caller may look numbers up."""

    LookupNumber = Query(
        RegistryHandler.lookup_one,
        caller=False,
        parse=convert.lookup_number,
        render=convert.routing_message,
    )
    LookupNumbers = Query(
        RegistryHandler.lookup_many,
        caller=False,
        parse=convert.lookup_numbers,
        render=convert.lookup_response,
    )

    def __init__(self, handler: RegistryHandler) -> None:
        self.handler = handler

    async def StreamSnapshot(  # noqa: N802
        self, request: pb.StreamSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SnapshotChunk]:
        """The registry at one log position, chunk by chunk."""
        async for chunk in self.handler.snapshot(convert.stream_snapshot(request)):
            yield convert.snapshot_chunk(chunk)


class ReturnsServicer(CommandServicer, pb_grpc.ReturnsServiceServicer):
    """ReturnsService over its handler; mutating calls go through the idempotent command runner."""

    ReportDisconnection = Command(
        ReturnsHandler.report_disconnection,
        pb.ReportDisconnectionResponse,
        parse=convert.report_disconnection,
        render=convert.disconnection_response,
    )
    RequestReturn = Command(
        ConsentReturns.request_return,
        pb.NumberReturn,
        parse=convert.request_return,
        render=convert.return_message,
        on="consent",
    )
    AnswerReturn = Command(
        ConsentReturns.answer_return,
        pb.NumberReturn,
        parse=convert.answer_return,
        render=convert.return_message,
        on="consent",
    )
    ConfirmReturnExecution = Command(
        ConsentReturns.confirm_return_execution,
        pb.NumberReturn,
        parse=convert.confirm_return_execution,
        render=convert.return_message,
        on="consent",
    )
    GetReturn = Query(
        ConsentReturns.get_return,
        parse=convert.get_return,
        render=convert.return_message,
        on="consent",
    )

    def __init__(
        self, handler: ReturnsHandler, consent: ConsentReturns, commands: CommandRunner
    ) -> None:
        self.handler = handler
        self.consent = consent
        self.commands = commands
