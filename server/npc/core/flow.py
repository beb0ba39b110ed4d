"""The flow contract.

A flow is one regulated process (portability, returns, SGU, PQR...). It plugs into the core by
registering its deadline handlers and exposing its gRPC services; its state lives in its own
tables, its messages in the shared event log, its breaches in the shared compliance ledger.

Every flow derives from :class:`Flow`, is built from one :class:`FlowContext`, and declares its
manifest once on its class: its name, its deadline kinds (a ``StrEnum``), its gRPC services and
its web routes (:class:`WebRoute`, plain data). The core checks at start that the declared kinds
and the registered deadline handlers match (``npc.core.deadlines.DeadlineScheduler.check_kinds``);
the web application checks that the routes a flow serves are the ones it declares
(``npc.web.http.build_app``).

The core names neither the transports nor the process's settings: what it needs of them it
states here as protocols (:class:`CommandRunner`, :class:`FlowSettings`), which the process's
own types satisfy (``npc.api.commands``, ``npc.config``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from npc.core.compliance import Rule
from npc.core.identity import Caller
from npc.store.database import Txn

if TYPE_CHECKING:
    from npc.core.runtime import Core


class CommandRunner(Protocol):
    """Runs a command in one transaction, exactly once per (caller, request id); a retry gets the
    first answer (``npc.api.commands.IdempotentCommandRunner``). Requests and answers are the
    transport's messages, which the core does not name."""

    async def run(
        self,
        caller: Caller,
        method: str,
        request: Any,
        response_type: Any,
        command: Callable[[Txn], Awaitable[Any]],
    ) -> Any:
        """Run `command` for `request` unless the caller already sent this request id."""
        ...


class _Jurisdiction(Protocol):
    @property
    def jurisdiction(self) -> str: ...


class _PublicSite(Protocol):
    @property
    def public_base_url(self) -> str: ...


class FlowSettings(Protocol):
    """What the core reads of the process's settings (``npc.config.Settings``) for every flow."""

    @property
    def portability(self) -> _Jurisdiction: ...

    @property
    def web(self) -> _PublicSite: ...


# The process's settings type; a flow's manifest names the concrete one it reads
# (``FlowContext[Settings]``), the core only what `FlowSettings` promises.
SettingsT = TypeVar("SettingsT", bound=FlowSettings, covariant=True)


class Audience(StrEnum):
    """Who may open a web route."""

    # Anyone: a subscriber's public page.
    PUBLIC = "public"
    # The regulator's token only.
    REGULATOR = "regulator"
    # The regulator's token, and an operator's for its own rows.
    OPERATORS = "operators"


# Where the site serves the regulator's reports: ``/reportes/<slug>``.
REPORTS_PATH = "/reportes"


@dataclass(frozen=True)
class WebRoute:
    """A web route a flow declares on its manifest: where, with which methods, for whom."""

    path: str
    methods: frozenset[str]
    audience: Audience

    @classmethod
    def page(cls, path: str) -> WebRoute:
        """A public page: a lookup form (GET shows it, POST answers it), or any page with a form."""
        return cls(path, frozenset({"GET", "POST"}), Audience.PUBLIC)

    @classmethod
    def report(cls, slug: str, *, operators_see_own: bool = False) -> WebRoute:
        """A report at ``/reportes/<slug>``, the regulator's (and each operator's own rows when
        `operators_see_own`)."""
        audience = Audience.OPERATORS if operators_see_own else Audience.REGULATOR
        return cls(f"{REPORTS_PATH}/{slug}", frozenset({"GET"}), audience)

    def __str__(self) -> str:
        return f"{' '.join(sorted(self.methods))} {self.path} ({self.audience})"


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
class FlowContext(Generic[SettingsT]):
    """What every flow is built from: the process's settings and its idempotent command runner.

    One constructor signature for every flow, so the process plugs flows in from one list
    (``npc.flows.enabled.FLOWS``) without knowing what each needs. A manifest reading its own
    section of the settings takes ``FlowContext[Settings]``.
    """

    settings: SettingsT
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

    ``setup`` and ``grpc_services`` are the flow's own; ``start`` and ``stop`` default to
    nothing, so the core calls them on every flow: ``start`` after its own start (migrations
    applied, hub positioned) and ``stop`` before its own stop. A flow with pages or reports
    declares them in `web` and builds them in a ``web_routes()`` method
    (``npc.web.site.ServesWeb``), which ``npc.web.http.build_app`` calls after ``setup`` and
    checks against `web`.
    """

    name: ClassVar[str]
    # The process's name as the regulator's pages say it (Spanish); keys, CSV and JSON keep
    # `name`. Empty: the pages show `name`.
    label: ClassVar[str] = ""
    # Every kind of deadline the flow sets; each needs a handler registered in `setup`, and no
    # handler may be registered for a kind not declared here (checked when the core starts).
    deadline_kinds: ClassVar[type[StrEnum] | None] = None
    # Every web route the flow serves; the web application refuses to start when what the flow
    # serves differs, or when two flows claim one path.
    web: ClassVar[tuple[WebRoute, ...]] = ()
    # Every rule whose breach the flow records in the compliance ledger: the regulator's
    # catalogue, and the series of `npc_compliance_records_total` created at zero at start.
    rules: ClassVar[tuple[Rule, ...]] = ()

    def __init__(self, context: FlowContext[FlowSettings]) -> None:
        self.context = context
        self.commands = context.commands

    def setup(self, core: Core) -> None:
        """Register deadline handlers and anything else the flow needs from the core."""

    def grpc_services(self) -> list[GrpcService]:
        """The gRPC services of this flow."""
        return []

    def countries(self) -> set[str]:
        """The countries whose callers the flow's services serve (none: every country)."""
        return {service.country for service in self.grpc_services() if service.country}

    async def start(self, *, background: bool) -> None:
        """Start the flow's own work (a cache, a delivery loop); nothing by default."""

    async def stop(self) -> None:
        """Stop what `start` started; nothing by default."""
