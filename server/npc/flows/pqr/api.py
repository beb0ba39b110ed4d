"""gRPC servicer of PQRs: translation only."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.pqr import convert as c
from npc.flows.pqr.handler import PqrHandler as H
from npc.v1 import pqr_pb2 as pb
from npc.v1 import pqr_pb2_grpc as pb_grpc


class PqrServicer(CommandServicer, pb_grpc.PqrServiceServicer):
    """PqrService over the handler."""

    AssignCunRange = Command(
        H.assign_cun_range, pb.CunRange, parse=c.assign_cun_range, render=c.cun_range_message
    )
    FilePqr = Command(H.file_pqr, pb.Pqr, parse=c.file_pqr, render=c.pqr_message)
    ExtendPqrForEvidence = Command(
        H.extend_for_evidence, pb.Pqr, parse=c.extend_for_evidence, render=c.pqr_message
    )
    AnswerPqr = Command(H.answer, pb.Pqr, parse=c.answer, render=c.pqr_message)
    ConfirmSilenceEffects = Command(
        H.confirm_silence_effects, pb.Pqr, parse=c.confirm_silence_effects, render=c.pqr_message
    )
    FileReconsideration = Command(
        H.file_reconsideration, pb.Pqr, parse=c.file_reconsideration, render=c.pqr_message
    )
    RecordTransferToSic = Command(
        H.record_transfer, pb.Pqr, parse=c.record_transfer, render=c.pqr_message
    )
    DecideAppeal = Command(H.decide_appeal, pb.Pqr, parse=c.decide_appeal, render=c.pqr_message)
    GetPqr = Query(H.get_pqr, parse=c.get_pqr, render=c.pqr_message)
    ReceiveQuejaSms = Command(
        H.receive_queja_sms, pb.SmsRequest, parse=c.receive_queja_sms, render=c.sms_message
    )
    AcknowledgeQuejaSms = Command(
        H.acknowledge_queja_sms,
        pb.SmsRequest,
        parse=c.acknowledge_queja_sms,
        render=c.sms_message,
    )
    RecordCallAttempt = Command(
        H.record_call_attempt, pb.SmsRequest, parse=c.record_call_attempt, render=c.sms_message
    )
    GetSmsRequest = Query(H.get_sms_request, parse=c.get_sms_request, render=c.sms_message)
    GetMonthlyIndicators = Query(
        H.monthly_indicators, parse=c.monthly_indicators, render=c.indicators_message
    )

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
