"""The registry flow's manifest."""

from __future__ import annotations

from npc.core.flow import GrpcService
from npc.core.runtime import Core
from npc.flows.registry.api import RegistryServicer
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.store import FLOW
from npc.v1 import registry_pb2_grpc


class RegistryFlow:
    """The central number registry: lookups and snapshots (changes come from the other flows)."""

    name = FLOW

    def __init__(self) -> None:
        self.handler: RegistryHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler."""
        self.handler = RegistryHandler(core)

    def grpc_services(self) -> list[GrpcService]:
        """RegistryService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.RegistryService",
                RegistryServicer(self.handler),
                registry_pb2_grpc.add_RegistryServiceServicer_to_server,
            )
        ]
