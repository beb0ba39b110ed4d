"""The inoperability registry's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService, WebRoute
from npc.core.runtime import Core
from npc.flows.inoperability.api import InoperabilityServicer
from npc.flows.inoperability.handler import FLOW, InoperabilityHandler
from npc.flows.inoperability.rules import REPORT, DeadlineKind
from npc.flows.inoperability.web import inoperability_web
from npc.v1 import inoperability_pb2_grpc
from npc.web.site import WebRoutes


class InoperabilityFlow(Flow):
    """Registry of inoperability of the sales and after-sales applications (seed 002, Peru)."""

    name = FLOW
    label = "Inoperatividad de aplicativos"
    deadline_kinds = DeadlineKind
    rules = (REPORT,)
    web = (
        WebRoute.report("inoperatividad-eventos", operators_see_own=True),
        WebRoute.report("inoperatividad-resumen", operators_see_own=True),
    )
    # The regulation is Peru's whatever the portability jurisdiction is configured to.
    jurisdiction = "PE"

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.handler: InoperabilityHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = InoperabilityHandler(core, self.jurisdiction)
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """InoperabilityService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.InoperabilityService",
                InoperabilityServicer(self.handler, self.commands),
                inoperability_pb2_grpc.add_InoperabilityServiceServicer_to_server,
                country="PE",
            )
        ]

    def web_routes(self) -> WebRoutes:
        """The regulator's events report and summary (operators read their own)."""
        assert self.handler is not None
        return inoperability_web(self.handler)
