"""The registry flow's manifest."""

from __future__ import annotations

from npc.config import Settings
from npc.core.flow import Flow, FlowContext, GrpcService
from npc.core.instants import ChangeWindow
from npc.core.runtime import Core
from npc.flows.registry.api import RegistryServicer, ReturnsServicer
from npc.flows.registry.cache import RegistryCache
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.returns import ConsentReturns, ReturnsHandler
from npc.flows.registry.rules import (
    RETURN_ANSWER,
    RETURN_DISABLE,
    RETURN_ENABLE,
    DeadlineKind,
)
from npc.flows.registry.store import FLOW
from npc.v1 import registry_pb2_grpc


class RegistryFlow(Flow):
    """The central number registry: lookups, snapshots and returns of numbers to range holders."""

    name = FLOW
    label = "Registro de numeración y retornos"
    deadline_kinds = DeadlineKind
    rules = (RETURN_ANSWER, RETURN_DISABLE, RETURN_ENABLE)

    def __init__(self, context: FlowContext[Settings]) -> None:
        super().__init__(context)
        self.settings = context.settings.portability
        self.handler: RegistryHandler | None = None
        self.returns: ReturnsHandler | None = None
        self.consent: ConsentReturns | None = None
        self.cache: RegistryCache | None = None

    async def start(self, *, background: bool) -> None:
        """Load the numbering plan and bring the lookup cache up to date."""
        assert self.cache is not None
        await self.cache.start(background=background)

    async def stop(self) -> None:
        """Stop the cache's repair work."""
        if self.cache is not None:
            await self.cache.stop()

    def setup(self, core: Core) -> None:
        """Create the handlers and register the returns' deadlines."""
        self.cache = RegistryCache(core, core.redis_prefix)
        self.handler = RegistryHandler(core, self.cache)
        self.returns = ReturnsHandler(self.handler)
        timeline = ChangeWindow(core.calendar(self.settings.jurisdiction), self.settings)
        self.consent = ConsentReturns(core, timeline)
        self.consent.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """RegistryService and ReturnsService."""
        assert self.handler is not None and self.returns is not None
        assert self.consent is not None
        return [
            GrpcService(
                "npc.v1.RegistryService",
                RegistryServicer(self.handler),
                registry_pb2_grpc.add_RegistryServiceServicer_to_server,
                country="PE",
            ),
            GrpcService(
                "npc.v1.ReturnsService",
                ReturnsServicer(self.returns, self.consent, self.commands),
                registry_pb2_grpc.add_ReturnsServiceServicer_to_server,
                country="PE",
            ),
        ]
