"""gRPC servicer of the user management system: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.sgu.handler import SguHandler as H
from npc.flows.sgu.handler import message, subcategory_message
from npc.v1 import sgu_pb2 as pb
from npc.v1 import sgu_pb2_grpc as pb_grpc


class SguServicer(CommandServicer, pb_grpc.SguServiceServicer):
    """SguService over the handler."""

    RegisterProblem = Command(H.register_problem, pb.Problem)
    ConfirmEmail = Command(H.confirm_email, pb.Problem)
    AnswerProblem = Command(H.answer_problem, pb.Problem)
    RateAnswer = Command(H.rate_answer, pb.Problem)
    EscalateToClaim = Command(H.escalate_to_claim, pb.Problem)
    AssignClaimCode = Command(H.assign_claim_code, pb.Problem)
    GetProblem = Query(H.get_problem)
    UpsertSubcategory = Command(H.upsert_subcategory, pb.Subcategory)
    RecordOutage = Command(H.record_outage, pb.Outage)
    GetReport = Query(H.get_report)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def ListTray(  # noqa: N802
        self, request: pb.ListTrayRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTrayResponse:
        rows = await self.handler.list_tray(current_caller())
        return pb.ListTrayResponse(problems=[message(row) for row in rows])

    async def WatchTray(  # noqa: N802
        self, request: pb.WatchTrayRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TrayItem]:
        async for item in self.handler.watch_tray(current_caller(), request.from_position):
            yield item

    async def ListCatalogue(  # noqa: N802
        self, request: pb.ListCatalogueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCatalogueResponse:
        rows = await self.handler.catalogue(include_inactive=request.include_inactive)
        return pb.ListCatalogueResponse(subcategories=[subcategory_message(r) for r in rows])
