"""gRPC servicer of PQRs: translation only."""

from __future__ import annotations

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.api.messages import CommandServicer
from npc.flows.pqr.handler import PqrHandler
from npc.v1 import pqr_pb2 as pb
from npc.v1 import pqr_pb2_grpc as pb_grpc


class PqrServicer(CommandServicer, pb_grpc.PqrServiceServicer):
    """PqrService over the handler."""

    def __init__(self, handler: PqrHandler, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands

    async def AssignCunRange(  # noqa: N802
        self, request: pb.AssignCunRangeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CunRange:
        return await self._command(
            "AssignCunRange", request, pb.CunRange, self.handler.assign_cun_range
        )

    async def FilePqr(  # noqa: N802
        self, request: pb.FilePqrRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command("FilePqr", request, pb.Pqr, self.handler.file_pqr)

    async def ExtendPqrForEvidence(  # noqa: N802
        self, request: pb.ExtendPqrForEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command(
            "ExtendPqrForEvidence", request, pb.Pqr, self.handler.extend_for_evidence
        )

    async def AnswerPqr(  # noqa: N802
        self, request: pb.AnswerPqrRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command("AnswerPqr", request, pb.Pqr, self.handler.answer)

    async def ConfirmSilenceEffects(  # noqa: N802
        self, request: pb.ConfirmSilenceEffectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command(
            "ConfirmSilenceEffects", request, pb.Pqr, self.handler.confirm_silence_effects
        )

    async def FileReconsideration(  # noqa: N802
        self, request: pb.FileReconsiderationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command(
            "FileReconsideration", request, pb.Pqr, self.handler.file_reconsideration
        )

    async def RecordTransferToSic(  # noqa: N802
        self, request: pb.RecordTransferToSicRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command(
            "RecordTransferToSic", request, pb.Pqr, self.handler.record_transfer
        )

    async def DecideAppeal(  # noqa: N802
        self, request: pb.DecideAppealRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self._command("DecideAppeal", request, pb.Pqr, self.handler.decide_appeal)

    async def GetPqr(  # noqa: N802
        self, request: pb.GetPqrRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pqr:
        return await self.handler.get_pqr(current_caller(), request)

    async def ReceiveQuejaSms(  # noqa: N802
        self, request: pb.ReceiveQuejaSmsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SmsRequest:
        return await self._command(
            "ReceiveQuejaSms", request, pb.SmsRequest, self.handler.receive_queja_sms
        )

    async def AcknowledgeQuejaSms(  # noqa: N802
        self, request: pb.AcknowledgeQuejaSmsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SmsRequest:
        return await self._command(
            "AcknowledgeQuejaSms", request, pb.SmsRequest, self.handler.acknowledge_queja_sms
        )

    async def RecordCallAttempt(  # noqa: N802
        self, request: pb.RecordCallAttemptRequest, context: grpc.aio.ServicerContext
    ) -> pb.SmsRequest:
        return await self._command(
            "RecordCallAttempt", request, pb.SmsRequest, self.handler.record_call_attempt
        )

    async def GetSmsRequest(  # noqa: N802
        self, request: pb.GetSmsRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.SmsRequest:
        return await self.handler.get_sms_request(current_caller(), request)

    async def GetMonthlyIndicators(  # noqa: N802
        self, request: pb.GetMonthlyIndicatorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMonthlyIndicatorsResponse:
        return await self.handler.monthly_indicators(current_caller(), request)
