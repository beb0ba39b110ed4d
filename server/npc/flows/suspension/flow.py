"""The suspension flow's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService
from npc.core.runtime import Core
from npc.flows.suspension.api import SuspensionServicer
from npc.flows.suspension.handler import FLOW, SuspensionHandler
from npc.flows.suspension.rules import (
    ASK_REACTIVATION,
    REACTIVATE,
    SUSPEND,
    DeadlineKind,
)
from npc.v1 import suspension_pb2_grpc


class SuspensionFlow(Flow):
    """Suspension of ported numbers for debt, and their reactivation (article 13)."""

    name = FLOW
    label = "Suspensión por deuda"
    deadline_kinds = DeadlineKind
    rules = (SUSPEND, ASK_REACTIVATION, REACTIVATE)

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.jurisdiction = context.jurisdiction
        self.handler: SuspensionHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = SuspensionHandler(core, self.jurisdiction)
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """SuspensionService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.SuspensionService",
                SuspensionServicer(self.handler, self.commands),
                suspension_pb2_grpc.add_SuspensionServiceServicer_to_server,
                country="PE",
            )
        ]
