"""The flow contract.

A flow is one regulated process (portability, returns, SGU, PQR...). It plugs into the core by
registering its deadline handlers and exposing its gRPC services; its state lives in its own
tables, its messages in the shared event log, its breaches in the shared compliance ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from npc.core.runtime import Core


@dataclass(frozen=True)
class GrpcService:
    """A gRPC servicer a flow exposes, with the generated function that registers it."""

    full_name: str  # e.g. "npc.v1.PortabilityService"
    servicer: Any
    add_to_server: Callable[[Any, Any], None]
    # The country whose regulation the service implements ("PE", "CO"); callers of another
    # country are refused. None: a service of every country (the event stream).
    country: str | None = None


class Flow(Protocol):
    """What a flow provides to the core.

    A flow with work of its own to start or stop (a cache, a delivery loop) may also define
    ``async def start(self, *, background: bool) -> None`` and ``async def stop(self) -> None``;
    the core calls them after its own start (migrations applied, hub positioned) and before its
    own stop.

    Optionally a flow also defines ``web_routes(self) -> npc.web.site.WebRoutes``: its public
    lookup pages and regulator reports. It is looked up with ``getattr`` when the HTTP application
    is built (``npc.web.http.build_app``), after ``setup``; flows without it add no pages.
    """

    name: str

    def setup(self, core: Core) -> None:
        """Register deadline handlers and anything else the flow needs from the core."""
        ...

    def grpc_services(self) -> list[GrpcService]:
        """The gRPC services of this flow."""
        ...
