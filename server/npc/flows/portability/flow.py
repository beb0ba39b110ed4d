"""The portability flow's manifest: what it plugs into the core."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService, WebRoute
from npc.core.runtime import Core
from npc.flows.portability.api import PortabilityServicer
from npc.flows.portability.handler import FLOW, PortabilityHandler
from npc.flows.portability.rules import RULES, DeadlineKind
from npc.flows.portability.web import portability_web
from npc.v1 import portability_pb2_grpc
from npc.web.site import WebRoutes


class PortabilityFlow(Flow):
    """Prior consultation, port request, scheduling and execution (Peru's ABDCP process)."""

    name = FLOW
    label = "Portabilidad numérica"
    deadline_kinds = DeadlineKind
    rules = tuple(RULES.values())
    web = (
        WebRoute.page("/portabilidad/consulta"),
        WebRoute.report("portabilidad-solicitudes", operators_see_own=True),
        WebRoute.report("portabilidad-respuestas-cedente", operators_see_own=True),
        WebRoute.report("portabilidad-ejecuciones-diarias", operators_see_own=True),
    )

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.settings = context.settings.portability
        self.public_base_url = context.public_base_url
        self.handler: PortabilityHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = PortabilityHandler(core, self.settings, self.public_base_url)
        self.handler.register_deadlines()

    async def start(self, *, background: bool) -> None:
        """Read the operators' names the subscriber notices use."""
        assert self.handler is not None
        await self.handler.load_operator_names()

    def grpc_services(self) -> list[GrpcService]:
        """PortabilityService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.PortabilityService",
                PortabilityServicer(self.handler, self.commands),
                portability_pb2_grpc.add_PortabilityServiceServicer_to_server,
                country="PE",
            )
        ]

    def web_routes(self) -> WebRoutes:
        """The subscriber's status page and the regulator's count of requests."""
        assert self.handler is not None
        return portability_web(self.handler)
