"""gRPC servicer of the user management system: translation only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.sgu.handler import SguHandler, message, subcategory_message
from npc.v1 import sgu_pb2 as pb
from npc.v1 import sgu_pb2_grpc as pb_grpc


class SguServicer(CommandServicer, pb_grpc.SguServiceServicer):
    """SguService over the handler."""

    def __init__(self, handler: SguHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def RegisterProblem(  # noqa: N802
        self, request: pb.RegisterProblemRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command(
            "RegisterProblem", request, pb.Problem, self.handler.register_problem
        )

    async def ConfirmEmail(  # noqa: N802
        self, request: pb.ConfirmEmailRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command("ConfirmEmail", request, pb.Problem, self.handler.confirm_email)

    async def AnswerProblem(  # noqa: N802
        self, request: pb.AnswerProblemRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command(
            "AnswerProblem", request, pb.Problem, self.handler.answer_problem
        )

    async def RateAnswer(  # noqa: N802
        self, request: pb.RateAnswerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command("RateAnswer", request, pb.Problem, self.handler.rate_answer)

    async def EscalateToClaim(  # noqa: N802
        self, request: pb.EscalateToClaimRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command(
            "EscalateToClaim", request, pb.Problem, self.handler.escalate_to_claim
        )

    async def AssignClaimCode(  # noqa: N802
        self, request: pb.AssignClaimCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self._command(
            "AssignClaimCode", request, pb.Problem, self.handler.assign_claim_code
        )

    async def GetProblem(  # noqa: N802
        self, request: pb.GetProblemRequest, context: grpc.aio.ServicerContext
    ) -> pb.Problem:
        return await self.handler.get_problem(current_caller(), request)

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

    async def UpsertSubcategory(  # noqa: N802
        self, request: pb.UpsertSubcategoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.Subcategory:
        return await self._command(
            "UpsertSubcategory", request, pb.Subcategory, self.handler.upsert_subcategory
        )

    async def ListCatalogue(  # noqa: N802
        self, request: pb.ListCatalogueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCatalogueResponse:
        rows = await self.handler.catalogue(include_inactive=request.include_inactive)
        return pb.ListCatalogueResponse(subcategories=[subcategory_message(r) for r in rows])

    async def RecordOutage(  # noqa: N802
        self, request: pb.RecordOutageRequest, context: grpc.aio.ServicerContext
    ) -> pb.Outage:
        return await self._command("RecordOutage", request, pb.Outage, self.handler.record_outage)

    async def GetReport(  # noqa: N802
        self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.SguReport:
        return await self.handler.get_report(current_caller(), request)
