"""The flow contract.

A flow is one regulated process (portability, returns, SGU, PQR...). It plugs into the core by
registering its deadline handlers and exposing its gRPC services; its state lives in its own
tables, its messages in the shared event log, its breaches in the shared compliance ledger.

Every flow derives from :class:`Flow`, is built from one :class:`FlowContext`, and declares its
manifest once on its class: its name, its deadline kinds (a ``StrEnum``), its gRPC services and
its web routes. The core checks at start that the declared kinds and the registered deadline
handlers match (``npc.core.deadlines.DeadlineScheduler.check_kinds``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from npc.api.commands import CommandRunner
    from npc.config import Settings
    from npc.core.runtime import Core
    from npc.web.site import WebRoutes


@dataclass(frozen=True)
class GrpcService:
    """A gRPC servicer a flow exposes, with the generated function that registers it."""

    full_name: str  # e.g. "npc.v1.PortabilityService"
    servicer: Any
    add_to_server: Callable[[Any, Any], None]
    # The country whose regulation the service implements ("PE", "CO"); callers of another
    # country are refused. None: a service of every country (the event stream).
    country: str | None = None


@dataclass(frozen=True)
class FlowContext:
    """What every flow is built from: the process's settings and its idempotent command runner.

    One constructor signature for every flow, so the process plugs flows in from one list
    (``npc.flows.enabled.FLOWS``) without knowing what each needs.
    """

    settings: Settings
    commands: CommandRunner

    @property
    def jurisdiction(self) -> str:
        """The portability jurisdiction ("PE"), shared by the flows that follow its calendar."""
        return self.settings.portability.jurisdiction

    @property
    def public_base_url(self) -> str:
        """Where the public site is reached, for links sent to subscribers."""
        return self.settings.web.public_base_url


class Flow:
    """What a flow provides to the core.

    ``setup`` and ``grpc_services`` are the flow's own; ``start``, ``stop`` and ``web_routes``
    default to nothing, so the core and the web application call them on every flow. The core
    calls ``start`` after its own start (migrations applied, hub positioned) and ``stop`` before
    its own stop; ``npc.web.http.build_app`` calls ``web_routes`` after ``setup``.
    """

    name: ClassVar[str]
    # Every kind of deadline the flow sets; each needs a handler registered in `setup`, and no
    # handler may be registered for a kind not declared here (checked when the core starts).
    deadline_kinds: ClassVar[type[StrEnum] | None] = None

    def __init__(self, context: FlowContext) -> None:
        self.context = context
        self.commands = context.commands

    def setup(self, core: Core) -> None:
        """Register deadline handlers and anything else the flow needs from the core."""

    def grpc_services(self) -> list[GrpcService]:
        """The gRPC services of this flow."""
        return []

    def web_routes(self) -> WebRoutes | None:
        """The flow's public pages and regulator reports; None when it has none."""
        return None

    async def start(self, *, background: bool) -> None:
        """Start the flow's own work (a cache, a delivery loop); nothing by default."""

    async def stop(self) -> None:
        """Stop what `start` started; nothing by default."""
