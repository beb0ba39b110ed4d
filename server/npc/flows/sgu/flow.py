"""The user management system's manifest."""

from __future__ import annotations

from datetime import timedelta

from npc.api.commands import CommandRunner
from npc.core.flow import GrpcService
from npc.core.runtime import Core
from npc.flows.sgu.api import SguServicer
from npc.flows.sgu.handler import DEFAULT_CLAIM_CODE_GRACE, FLOW, SguHandler
from npc.v1 import sgu_pb2_grpc


class SguFlow:
    """User management system, SGU (Res. 00170-2020-CD/OSIPTEL): problems, answers, claims."""

    name = FLOW

    def __init__(
        self,
        jurisdiction: str,
        commands: CommandRunner,
        *,
        claim_code_grace: timedelta = DEFAULT_CLAIM_CODE_GRACE,
    ) -> None:
        self.jurisdiction = jurisdiction
        self.commands = commands
        self.claim_code_grace = claim_code_grace
        self.handler: SguHandler | None = None

    def setup(self, core: Core) -> None:
        """Create the handler and register its deadlines."""
        self.handler = SguHandler(core, self.jurisdiction, claim_code_grace=self.claim_code_grace)
        self.handler.register_deadlines()

    def grpc_services(self) -> list[GrpcService]:
        """SguService."""
        assert self.handler is not None
        return [
            GrpcService(
                "npc.v1.SguService",
                SguServicer(self.handler, self.commands),
                sgu_pb2_grpc.add_SguServiceServicer_to_server,
            )
        ]
