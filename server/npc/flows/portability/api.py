"""gRPC servicer of the portability flow: translation only; the rules are in the handler."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.portability import convert as C
from npc.flows.portability.handler import PortabilityHandler as H
from npc.v1 import portability_pb2 as pb
from npc.v1 import portability_pb2_grpc as pb_grpc


class PortabilityServicer(CommandServicer, pb_grpc.PortabilityServiceServicer):
    """PortabilityService over the handler."""

    SubmitPriorConsultation = Command(
        H.submit_prior_consultation,
        pb.PriorConsultation,
        parse=C.prior_consultation_submission,
        render=C.consultation_message,
    )
    AnswerPriorConsultation = Command(
        H.answer_prior_consultation,
        pb.PriorConsultation,
        parse=C.prior_consultation_answer,
        render=C.consultation_message,
    )
    GetPriorConsultation = Query(
        H.get_prior_consultation,
        parse=C.prior_consultation_read,
        render=C.consultation_message,
    )
    SubmitPortRequest = Command(
        H.submit_port_request,
        pb.PortRequest,
        parse=C.port_request_submission,
        render=C.request_message,
    )
    AnswerPortRequest = Command(
        H.answer_port_request,
        pb.PortRequest,
        parse=C.port_request_answer,
        render=C.request_message,
    )
    SubmitDebtPaymentProof = Command(
        H.submit_debt_payment_proof,
        pb.PortRequest,
        parse=C.debt_payment_proof,
        render=C.request_message,
    )
    ReportInstallation = Command(
        H.report_installation,
        pb.PortRequest,
        parse=C.installation_report,
        render=C.request_message,
    )
    SchedulePort = Command(
        H.schedule_port, pb.PortRequest, parse=C.port_schedule, render=C.request_message
    )
    ConfirmPortExecution = Command(
        H.confirm_port_execution,
        pb.PortRequest,
        parse=C.execution_confirmation,
        render=C.request_message,
    )
    GetPortRequest = Query(H.get_port_request, parse=C.port_request_read, render=C.request_message)
    ListPortRequests = Query(
        H.list_port_requests, parse=C.port_request_listing, render=C.request_page
    )

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
