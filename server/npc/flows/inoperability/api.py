"""gRPC servicer of the inoperability registry: translation only."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.inoperability.handler import InoperabilityHandler as H
from npc.v1 import inoperability_pb2 as pb
from npc.v1 import inoperability_pb2_grpc as pb_grpc


class InoperabilityServicer(CommandServicer, pb_grpc.InoperabilityServiceServicer):
    """InoperabilityService over the handler."""

    RegisterAttentionPoint = Command(H.register_attention_point, pb.AttentionPoint)
    RegisterInoperability = Command(H.register_inoperability, pb.InoperabilityEvent)
    CloseInoperability = Command(H.close_inoperability, pb.InoperabilityEvent)
    RecordCriticalTransaction = Command(H.record_critical_transaction, pb.InoperabilityEvent)
    SubmitInoperabilityReport = Command(H.submit_report, pb.InoperabilityReport)
    GetInoperability = Query(H.get_inoperability)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
