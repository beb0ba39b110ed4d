"""The PQR flow's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService, WebRoute
from npc.core.runtime import Core
from npc.flows.pqr.api import PqrServicer
from npc.flows.pqr.handler import PqrHandler
from npc.flows.pqr.rules import (
    ANSWER,
    ANSWER_RECONSIDERATION,
    FLOW,
    SILENCE_EFFECTS,
    SMS_ACKNOWLEDGE,
    SMS_CALL,
    TRANSFER,
    DeadlineKind,
)
from npc.flows.pqr.web import pqr_web
from npc.v1 import pqr_pb2_grpc
from npc.web.site import WebRoutes


class PqrFlow(Flow):
    """Petitions, complaints and appeals with CUN, Colombia (CRC regime, section 2.1.5)."""

    name = FLOW
    label = "PQR"
    deadline_kinds = DeadlineKind
    rules = (
        ANSWER,
        ANSWER_RECONSIDERATION,
        SILENCE_EFFECTS,
        TRANSFER,
        SMS_ACKNOWLEDGE,
        SMS_CALL,
    )
    web = (
        WebRoute.page("/pqr/consulta"),
        WebRoute.report("pqr-indicadores", operators_see_own=True),
    )

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.handler: PqrHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = PqrHandler(core)
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """PqrService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.PqrService",
                PqrServicer(self.handler, self.commands),
                pqr_pb2_grpc.add_PqrServiceServicer_to_server,
                country="CO",
            )
        ]

    def web_routes(self) -> WebRoutes:
        """The status page by CUN and the monthly indicators report."""
        assert self.handler is not None
        return pqr_web(self.handler)
