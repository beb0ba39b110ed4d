"""The cancellations and plan migrations tracking flow's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService, WebRoute
from npc.core.runtime import Core
from npc.flows.cancellations.api import CancellationsServicer
from npc.flows.cancellations.handler import FLOW, CancellationsHandler
from npc.flows.cancellations.rules import DAILY_REPORT, SCHEDULED, DeadlineKind
from npc.flows.cancellations.web import cancellations_web
from npc.v1 import cancellations_pb2_grpc
from npc.web.site import WebRoutes


class CancellationsFlow(Flow):
    """Daily reports of cancellations (bajas) and plan migrations, and their status page."""

    name = FLOW
    label = "Bajas y migraciones de plan"
    deadline_kinds = DeadlineKind
    rules = (DAILY_REPORT, SCHEDULED)
    web = (
        WebRoute.page("/bajas-migraciones/consulta"),
        WebRoute.report("bajas-reporte-diario", operators_see_own=True),
    )

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.settings = context.settings.cancellations
        self.handler: CancellationsHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = CancellationsHandler(core, self.settings)
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """CancellationsService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.CancellationsService",
                CancellationsServicer(self.handler, self.commands),
                cancellations_pb2_grpc.add_CancellationsServiceServicer_to_server,
                country="PE",
            )
        ]

    def web_routes(self) -> WebRoutes:
        """The subscriber's request status page and the daily-report compliance report."""
        assert self.handler is not None
        return cancellations_web(self.handler)
