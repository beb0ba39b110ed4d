"""Builds and wires the clearinghouse: storage, core, flows, gRPC and HTTP servers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from npc.api.commands import IdempotentCommandRunner
from npc.api.compliance import ComplianceServicer
from npc.api.events import EventServicer
from npc.api.identity import TokenAuthenticator
from npc.api.limits import RateLimiter
from npc.api.server import GrpcServer
from npc.api.session import SessionServicer
from npc.api.tls import TlsFiles
from npc.config import Settings
from npc.core import compliance
from npc.core.anchor import load_key
from npc.core.calendar import CALENDARS
from npc.core.clock import Clock, SystemClock
from npc.core.flow import FlowContext, GrpcService
from npc.core.holidays import calendar_flow
from npc.core.runtime import (
    BACKGROUND_CONNECTIONS,
    LOG_READ_CONNECTIONS,
    SEQUENCING_CONNECTIONS,
    Core,
)
from npc.flows.enabled import FLOWS
from npc.flows.portability.flow import PortabilityFlow
from npc.notifications.dispatcher import NotificationDispatcher
from npc.store import operators
from npc.store.database import Database, migrate_as_owner, role_can_bypass_audit
from npc.telemetry import initialise_rpc_series, initialise_series
from npc.v1 import compliance_pb2_grpc, events_pb2_grpc, session_pb2_grpc
from npc.web.http import bounded_runner, build_app, metrics_app

log = logging.getLogger(__name__)


class Clearinghouse:
    """One server process: the core with every flow, served over gRPC and HTTP."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.core: Core | None = None
        self.grpc: GrpcServer | None = None
        self.http_runner: web.AppRunner | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.metrics_runner: web.AppRunner | None = None
        self.metrics_port = 0
        self.portability: PortabilityFlow | None = None
        self.authenticator: TokenAuthenticator | None = None
        self.notifications: NotificationDispatcher | None = None
        # Set when a background loop ended for good: `npc serve` then stops with a non-zero
        # status, so that --workers or the service manager starts the process again.
        self.failed = asyncio.Event()

    async def start(
        self, *, background: bool = True, serve_http: bool = True, listen: bool = True
    ) -> None:
        """Connect, migrate, start the background loops and listen.

        With `listen` False the core and every flow start but no gRPC, HTTP or metrics port
        opens: the flows' handlers are called directly (tools and the handler tests).
        """
        settings = self.settings
        if not settings.database_url or not settings.redis_url:
            raise ValueError("database_url and redis_url are required")
        db = await Database.connect(
            settings.database_url,
            max_size=settings.db_pool_size,
            background=BACKGROUND_CONNECTIONS,
            sequencing=SEQUENCING_CONNECTIONS,
            log_reads=LOG_READ_CONNECTIONS,
        )
        await self._audit_setup(db)
        redis = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
        )
        core = Core(
            db,
            redis,
            self.clock,
            redis_prefix=settings.redis_prefix,
            anchor_key=load_key(Path(settings.anchor_key)) if settings.anchor_key else None,
            anchor_interval=settings.anchor_interval,
        )
        self.core = core
        core.supervisor.on_death(lambda _: self.failed.set())
        commands = IdempotentCommandRunner(db, self.clock, group_size=settings.command_group_size)
        context = FlowContext(settings, commands)
        flows = [flow_class(context) for flow_class in FLOWS]
        core.add_flows(flows)
        # Kept at hand for the tests and tools that read the portability timeline.
        self.portability = next(f for f in flows if isinstance(f, PortabilityFlow))
        await core.start(background=background)
        await self._initialise_series(db)
        self.notifications = NotificationDispatcher.from_settings(
            db, self.clock, settings.notifications
        )
        if background:
            self.notifications.start(core.supervisor)
        if not listen:
            return
        await self._serve_grpc(core)
        if serve_http:
            await self._serve_http(core)
        if settings.metrics_port is not None:
            await self._serve_metrics(settings.metrics_port + settings.worker)
        log.info(
            "clearinghouse listening: gRPC %s:%s, HTTP %s:%s",
            settings.grpc_host,
            self.grpc_port,
            settings.http_host,
            self.http_port,
        )

    async def _serve_grpc(self, core: Core) -> None:
        """Every flow's services, the event stream and the session stream, on the gRPC port."""
        settings = self.settings
        authenticator = TokenAuthenticator(core.db)
        self.authenticator = authenticator
        await authenticator.load()
        events = EventServicer(core.hub)
        services = [
            GrpcService(
                "npc.v1.EventService", events, events_pb2_grpc.add_EventServiceServicer_to_server
            )
        ]
        ledger = ComplianceServicer(core.db)
        for flow in core.flows.values():
            exposed = flow.grpc_services()
            services.extend(exposed)
            events.add_flow(flow.name, {s.country for s in exposed if s.country})
            ledger.add_flow(flow.name, {s.country for s in exposed if s.country}, flow.rules)
        services.append(
            GrpcService(
                "npc.v1.ComplianceService",
                ledger,
                compliance_pb2_grpc.add_ComplianceServiceServicer_to_server,
            )
        )
        for country in CALENDARS:
            events.add_flow(calendar_flow(country), {country})
        # Every flow's commands on one stream: beside the event stream, over the same servicers.
        session = SessionServicer(services, events, heartbeat=settings.session_heartbeat)
        services.append(
            GrpcService(
                "npc.v1.SessionService",
                session,
                session_pb2_grpc.add_SessionServiceServicer_to_server,
            )
        )
        tls = (
            TlsFiles(Path(settings.tls_cert), Path(settings.tls_key), Path(settings.tls_client_ca))
            if settings.tls_cert and settings.tls_key and settings.tls_client_ca
            else None
        )
        self.grpc = GrpcServer(
            services,
            authenticator,
            tls=tls,
            limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
            call_timeout=settings.call_timeout,
            connections=settings.connections,
        )
        session.attach(self.grpc.interceptor)
        async with core.db.pool.acquire() as conn:
            callers = [(i.id, i.country) for i in await operators.registered(conn)]
        initialise_rpc_series(services, callers)
        self.grpc_port = await self.grpc.start(settings.grpc_host, settings.grpc_port)
        core.health.on_change(self.grpc.set_serving)

    async def _serve_http(self, core: Core) -> None:
        """The public site and the regulator's reports."""
        settings = self.settings
        self.http_runner = bounded_runner(
            build_app(core, settings.web, jurisdiction=settings.portability.jurisdiction),
            settings.connections,
        )
        await self.http_runner.setup()
        site = web.TCPSite(
            self.http_runner, settings.http_host, settings.http_port, reuse_port=True
        )
        await site.start()
        sockets = self.http_runner.addresses
        self.http_port = sockets[0][1] if sockets else settings.http_port

    async def _serve_metrics(self, port: int) -> None:
        """Prometheus' scrape endpoint of this worker."""
        self.metrics_port = port
        self.metrics_runner = bounded_runner(metrics_app(), self.settings.connections)
        await self.metrics_runner.setup()
        await web.TCPSite(self.metrics_runner, self.settings.http_host, port).start()

    async def _initialise_series(self, db: Database) -> None:
        """Series whose label values are known at start exist at zero from the first scrape."""
        async with db.pool.acquire() as conn:
            identities = await operators.registered(conn)
        jurisdiction = self.settings.portability.jurisdiction
        initialise_series(
            [i.id for i in identities],
            [i.id for i in identities if i.role == "operator" and i.country == jurisdiction],
        )
        assert self.core is not None
        # Every catalogued rule of a flow, for every operator of the flow's countries.
        catalogue = []
        for flow in self.core.flows.values():
            countries = flow.countries()
            concerned = [
                i.id for i in identities if i.role == "operator" and i.country in countries
            ]
            catalogue.append((flow.name, flow.rules, concerned))
        compliance.initialise_series(catalogue)

    async def _audit_setup(self, db: Database) -> None:
        """Migrate as the tables' owner when one is configured, and say what leaves the audit
        trail open: a role that may disable its triggers, or no anchor key."""
        settings = self.settings
        async with db.pool.acquire() as conn:
            role: str = await conn.fetchval("SELECT current_user")
        if settings.migration_database_url:
            await migrate_as_owner(settings.migration_database_url, role)
        async with db.pool.acquire() as conn:
            migrated = await conn.fetchval("SELECT to_regclass('events')") is not None
            if migrated and await role_can_bypass_audit(conn):
                log.warning(
                    "database role %s owns the event log or is a superuser: it can disable the"
                    " audit trail's triggers (README, Audit trail: NPC_MIGRATION_DATABASE_URL)",
                    role,
                )
        if not settings.anchor_key:
            log.warning("NPC_ANCHOR_KEY unset: the event log is not anchored")

    async def stop(self, *, lame_duck: float = 0.0) -> None:
        """Health NOT_SERVING, `lame_duck` seconds more serving, drain, stop loops, close
        connections (`GrpcServer.stop`)."""
        if self.core is not None:
            self.core.health.clear_listeners()  # NOT_SERVING from here on, whatever it probes
        if self.grpc is not None:
            await self.grpc.stop(self.settings.drain_grace, lame_duck=lame_duck)
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        if self.notifications is not None:
            await self.notifications.stop()
        if self.core is not None:
            await self.core.stop()
            await self.core.redis.aclose()
            await self.core.db.close()
