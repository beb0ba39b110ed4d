"""gRPC servicer of suspensions: translation only."""

from __future__ import annotations

from npc.api.commands import CommandRunner
from npc.api.messages import Command, CommandServicer, Query
from npc.flows.suspension import convert
from npc.flows.suspension.handler import SuspensionHandler as H
from npc.v1 import suspension_pb2 as pb
from npc.v1 import suspension_pb2_grpc as pb_grpc

_render = convert.suspension_message


class SuspensionServicer(CommandServicer, pb_grpc.SuspensionServiceServicer):
    """SuspensionService over the handler."""

    RequestSuspension = Command(
        H.request_suspension, pb.Suspension, parse=convert.suspension_request, render=_render
    )
    ConfirmSuspension = Command(
        H.confirm_suspension, pb.Suspension, parse=convert.suspension_ref, render=_render
    )
    RequestReactivation = Command(
        H.request_reactivation, pb.Suspension, parse=convert.reactivation_request, render=_render
    )
    ConfirmReactivation = Command(
        H.confirm_reactivation, pb.Suspension, parse=convert.suspension_ref, render=_render
    )
    GetSuspension = Query(H.get_suspension, parse=convert.suspension_ref, render=_render)

    def __init__(self, handler: H, commands: CommandRunner) -> None:
        self.handler = handler
        self.commands = commands
