"""gRPC servicer of the portability flow: translation only; the rules are in the handler."""

from __future__ import annotations

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.portability.handler import PortabilityHandler
from npc.v1 import portability_pb2 as pb
from npc.v1 import portability_pb2_grpc as pb_grpc


class PortabilityServicer(CommandServicer, pb_grpc.PortabilityServiceServicer):
    """PortabilityService over the handler."""

    def __init__(self, handler: PortabilityHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def SubmitPriorConsultation(
        self, request: pb.SubmitPriorConsultationRequest, context: grpc.aio.ServicerContext
    ) -> pb.PriorConsultation:  # noqa: N802, E501
        return await self._command(
            "SubmitPriorConsultation",
            request,
            pb.PriorConsultation,
            self.handler.submit_prior_consultation,
        )

    async def AnswerPriorConsultation(
        self, request: pb.AnswerPriorConsultationRequest, context: grpc.aio.ServicerContext
    ) -> pb.PriorConsultation:  # noqa: N802, E501
        return await self._command(
            "AnswerPriorConsultation",
            request,
            pb.PriorConsultation,
            self.handler.answer_prior_consultation,
        )

    async def GetPriorConsultation(
        self, request: pb.GetPriorConsultationRequest, context: grpc.aio.ServicerContext
    ) -> pb.PriorConsultation:  # noqa: N802, E501
        return await self.handler.get_prior_consultation(current_caller(), request)

    async def SubmitPortRequest(
        self, request: pb.SubmitPortRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "SubmitPortRequest", request, pb.PortRequest, self.handler.submit_port_request
        )

    async def AnswerPortRequest(
        self, request: pb.AnswerPortRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "AnswerPortRequest", request, pb.PortRequest, self.handler.answer_port_request
        )

    async def SubmitDebtPaymentProof(
        self, request: pb.SubmitDebtPaymentProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "SubmitDebtPaymentProof",
            request,
            pb.PortRequest,
            self.handler.submit_debt_payment_proof,
        )

    async def ReportInstallation(
        self, request: pb.ReportInstallationRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "ReportInstallation", request, pb.PortRequest, self.handler.report_installation
        )

    async def SchedulePort(
        self, request: pb.SchedulePortRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "SchedulePort", request, pb.PortRequest, self.handler.schedule_port
        )

    async def ConfirmPortExecution(
        self, request: pb.ConfirmPortExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self._command(
            "ConfirmPortExecution", request, pb.PortRequest, self.handler.confirm_port_execution
        )

    async def GetPortRequest(
        self, request: pb.GetPortRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortRequest:  # noqa: N802, E501
        return await self.handler.get_port_request(current_caller(), request)

    async def ListPortRequests(
        self, request: pb.ListPortRequestsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPortRequestsResponse:  # noqa: N802, E501
        return await self.handler.list_port_requests(current_caller(), request)
