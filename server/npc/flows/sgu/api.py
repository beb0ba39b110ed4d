"""gRPC servicer of the user management system: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.sgu import convert
from npc.flows.sgu.handler import SguHandler as H
from npc.v1 import sgu_pb2 as pb
from npc.v1 import sgu_pb2_grpc as pb_grpc


class SguServicer(CommandServicer, pb_grpc.SguServiceServicer):
    """SguService over the handler."""

    RegisterProblem = Command(
        H.register_problem, pb.Problem, parse=convert.register_problem, render=convert.problem
    )
    ConfirmEmail = Command(
        H.confirm_email, pb.Problem, parse=convert.confirm_email, render=convert.problem
    )
    AnswerProblem = Command(
        H.answer_problem, pb.Problem, parse=convert.answer_problem, render=convert.problem
    )
    RateAnswer = Command(
        H.rate_answer, pb.Problem, parse=convert.rate_answer, render=convert.problem
    )
    EscalateToClaim = Command(
        H.escalate_to_claim, pb.Problem, parse=convert.escalate_to_claim, render=convert.problem
    )
    AssignClaimCode = Command(
        H.assign_claim_code, pb.Problem, parse=convert.assign_claim_code, render=convert.problem
    )
    GetProblem = Query(H.get_problem, parse=convert.get_problem, render=convert.problem)
    UpsertSubcategory = Command(
        H.upsert_subcategory,
        pb.Subcategory,
        parse=convert.upsert_subcategory,
        render=convert.subcategory_message,
    )
    RecordOutage = Command(
        H.record_outage, pb.Outage, parse=convert.record_outage, render=convert.outage
    )
    GetReport = Query(H.get_report, parse=convert.get_report, render=convert.report)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def ListTray(  # noqa: N802
        self, request: pb.ListTrayRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTrayResponse:
        return convert.problems(await self.handler.list_tray(current_caller()))

    async def WatchTray(  # noqa: N802
        self, request: pb.WatchTrayRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TrayItem]:
        async for entry in self.handler.watch_tray(current_caller(), request.from_position):
            yield convert.tray_item(entry)

    async def ListCatalogue(  # noqa: N802
        self, request: pb.ListCatalogueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCatalogueResponse:
        rows = await self.handler.catalogue(include_inactive=request.include_inactive)
        return convert.catalogue(rows)
