"""gRPC servicer of the portability flow: translation only; the rules are in the handler."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.portability.handler import PortabilityHandler as H
from npc.v1 import portability_pb2 as pb
from npc.v1 import portability_pb2_grpc as pb_grpc


class PortabilityServicer(CommandServicer, pb_grpc.PortabilityServiceServicer):
    """PortabilityService over the handler."""

    SubmitPriorConsultation = Command(H.submit_prior_consultation, pb.PriorConsultation)
    AnswerPriorConsultation = Command(H.answer_prior_consultation, pb.PriorConsultation)
    GetPriorConsultation = Query(H.get_prior_consultation)
    SubmitPortRequest = Command(H.submit_port_request, pb.PortRequest)
    AnswerPortRequest = Command(H.answer_port_request, pb.PortRequest)
    SubmitDebtPaymentProof = Command(H.submit_debt_payment_proof, pb.PortRequest)
    ReportInstallation = Command(H.report_installation, pb.PortRequest)
    SchedulePort = Command(H.schedule_port, pb.PortRequest)
    ConfirmPortExecution = Command(H.confirm_port_execution, pb.PortRequest)
    GetPortRequest = Query(H.get_port_request)
    ListPortRequests = Query(H.list_port_requests)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
