"""The user management system's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService, WebRoute
from npc.core.runtime import Core
from npc.flows.sgu.api import SguServicer
from npc.flows.sgu.handler import DEFAULT_CLAIM_CODE_GRACE, FLOW, SguHandler
from npc.flows.sgu.rules import ANSWER, CLAIM_CODE, DeadlineKind
from npc.flows.sgu.web import sgu_web
from npc.v1 import sgu_pb2_grpc
from npc.web.site import WebRoutes


class SguFlow(Flow):
    """User management system, SGU (Res. 00170-2020-CD/OSIPTEL): problems, answers, claims."""

    name = FLOW
    label = "Gestión de usuarios (SGU)"
    deadline_kinds = DeadlineKind
    rules = (ANSWER, CLAIM_CODE)
    web = (
        WebRoute.page("/sgu/consulta"),
        # The link in the confirmation e-mail opens it; its form confirms.
        WebRoute.page("/sgu/confirmar"),
        # Statistics are the regulator's, as over gRPC (GetReport).
        WebRoute.report("sgu-problemas-frecuentes"),
        WebRoute.report("sgu-tiempos-respuesta"),
        WebRoute.report("sgu-operadores"),
        WebRoute.report("sgu-satisfaccion"),
    )
    # The regulation is Peru's whatever the portability jurisdiction is configured to.
    jurisdiction = "PE"

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.claim_code_grace = DEFAULT_CLAIM_CODE_GRACE
        self.public_base_url = context.public_base_url
        self.handler: SguHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = SguHandler(
            core,
            self.jurisdiction,
            claim_code_grace=self.claim_code_grace,
            public_base_url=self.public_base_url,
        )
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """SguService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.SguService",
                SguServicer(self.handler, self.commands),
                sgu_pb2_grpc.add_SguServiceServicer_to_server,
                country="PE",
            )
        ]

    def web_routes(self) -> WebRoutes:
        """The subscriber's status page, the e-mail confirmation page and the statistics."""
        assert self.handler is not None
        return sgu_web(self.handler)
