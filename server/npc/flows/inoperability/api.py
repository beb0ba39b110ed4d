"""gRPC servicer of the inoperability registry: translation only."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.inoperability import convert
from npc.flows.inoperability.handler import InoperabilityHandler as H
from npc.v1 import inoperability_pb2 as pb
from npc.v1 import inoperability_pb2_grpc as pb_grpc


class InoperabilityServicer(CommandServicer, pb_grpc.InoperabilityServiceServicer):
    """InoperabilityService over the handler."""

    RegisterAttentionPoint = Command(
        H.register_attention_point,
        pb.AttentionPoint,
        parse=convert.attention_point_registration,
        render=convert.point_message,
    )
    RegisterInoperability = Command(
        H.register_inoperability,
        pb.InoperabilityEvent,
        parse=convert.inoperability_registration,
        render=convert.event_message,
    )
    CloseInoperability = Command(
        H.close_inoperability,
        pb.InoperabilityEvent,
        parse=convert.inoperability_closing,
        render=convert.event_message,
    )
    RecordCriticalTransaction = Command(
        H.record_critical_transaction,
        pb.InoperabilityEvent,
        parse=convert.critical_transaction,
        render=convert.event_message,
    )
    SubmitInoperabilityReport = Command(
        H.submit_report,
        pb.InoperabilityReport,
        parse=convert.report_submission,
        render=convert.report_message,
    )
    GetInoperability = Query(
        H.get_inoperability, parse=convert.event_lookup, render=convert.event_message
    )

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
