"""gRPC servicer of PQRs: translation only."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.pqr.handler import PqrHandler as H
from npc.v1 import pqr_pb2 as pb
from npc.v1 import pqr_pb2_grpc as pb_grpc


class PqrServicer(CommandServicer, pb_grpc.PqrServiceServicer):
    """PqrService over the handler."""

    AssignCunRange = Command(H.assign_cun_range, pb.CunRange)
    FilePqr = Command(H.file_pqr, pb.Pqr)
    ExtendPqrForEvidence = Command(H.extend_for_evidence, pb.Pqr)
    AnswerPqr = Command(H.answer, pb.Pqr)
    ConfirmSilenceEffects = Command(H.confirm_silence_effects, pb.Pqr)
    FileReconsideration = Command(H.file_reconsideration, pb.Pqr)
    RecordTransferToSic = Command(H.record_transfer, pb.Pqr)
    DecideAppeal = Command(H.decide_appeal, pb.Pqr)
    GetPqr = Query(H.get_pqr)
    ReceiveQuejaSms = Command(H.receive_queja_sms, pb.SmsRequest)
    AcknowledgeQuejaSms = Command(H.acknowledge_queja_sms, pb.SmsRequest)
    RecordCallAttempt = Command(H.record_call_attempt, pb.SmsRequest)
    GetSmsRequest = Query(H.get_sms_request)
    GetMonthlyIndicators = Query(H.monthly_indicators)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
