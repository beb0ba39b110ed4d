"""The HTTP side: Prometheus metrics, health, the public pages and the regulator's reports.

Flows declare their pages and reports on their manifest and build them with ``web_routes()`` (see
``npc.web.site``); this module collects them from ``core.flows``, refuses to start when they differ
from the declarations, and serves them with the shared layout, escaping, security headers and the
lookup rate limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from npc.api.bounds import PeerLog
from npc.api.identity import TokenAuthenticator
from npc.config import ConnectionSettings, WebSettings
from npc.core.runtime import Core
from npc.web.compliance import compliance_reports
from npc.web.lookup import add_lookup_page
from npc.web.oversight import oversight_reports
from npc.web.ratelimit import RateLimiter
from npc.web.render import RENDERER, STATIC, NavItem, Renderer, add_security_headers, render
from npc.web.reports import ReportSite
from npc.web.site import ServesWeb, WebRoutes, check_web_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Each jurisdiction's home page: its heading and first paragraph.
HOMES = {
    "": (
        "Portabilidad numérica",
        "Conserve su número al cambiar de operador. Aquí puede consultar en qué estado está su "
        "trámite.",
    ),
    "CO": (
        "Peticiones, quejas y recursos",
        "Consulte en qué estado está la petición, queja o recurso (PQR) que presentó ante su "
        "proveedor de servicios de comunicaciones.",
    ),
}
HOMES["PE"] = HOMES[""]
COUNTRY_NAMES = {"PE": "Perú", "CO": "Colombia"}


def flow_web_routes(core: Core) -> list[WebRoutes]:
    """What each registered flow adds to the site (flows without ``web_routes`` add nothing),
    checked against what each declares (``npc.web.site.check_web_routes`` raises on a
    difference)."""
    found: list[WebRoutes] = []
    manifests = {}
    for flow in core.flows.values():
        routes = flow.web_routes() if isinstance(flow, ServesWeb) else None
        if routes is not None:
            found.append(routes)
        manifests[flow.name] = (flow.web, routes.served() if routes is not None else ())
    check_web_routes(manifests)
    return found


def _flows_of(core: Core, jurisdiction: str) -> dict[str, str]:
    """The flows the regulator of `jurisdiction` oversees, by name, with the Spanish label of
    their process: those with a gRPC service for its operators (or for every country), and
    those without services."""
    found = {}
    for flow in core.flows.values():
        countries = {service.country for service in flow.grpc_services()}
        if not countries or countries & {None, jurisdiction}:
            found[flow.name] = flow.label or flow.name
    return found


@web.middleware
async def spanish_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown pages and wrong methods answer with the site's layout, in Spanish."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return render(
            request,
            "error.html",
            status=404,
            title="Página no encontrada",
            message="La dirección no existe. Vuelva a la página de inicio.",
        )
    except web.HTTPMethodNotAllowed as exc:
        response = render(
            request,
            "error.html",
            status=405,
            title="Operación no permitida",
            message="Esta página no admite esa operación.",
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response


async def metrics(_: web.Request) -> web.Response:
    """This process's metrics in the Prometheus text format."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_app() -> web.Application:
    """An application serving only /metrics: a worker's own scrape port."""
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


# The longest request line (method, path, query) and header field the site reads: its pages
# have short addresses and forms; a longer one is refused with 400 before it is parsed further.
MAX_LINE = 4096
MAX_FIELD = 8190


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, where a malformed request (an over-long line, a bad header) is one
    warning line per client address and interval, not a traceback: it is the client's mistake,
    answered with 400. Failures of the server's own handlers keep their traceback."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.peers = PeerLog()

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            peer = str(args[0]) if args else "?"
            self.peers.warning(f"{peer}:", "malformed HTTP request from %s: %s", peer, exc_info)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


class _BoundedRunner(web.AppRunner):
    """An AppRunner whose server holds at most `max_connections` connections: past it, a new
    connection is closed as soon as it is accepted."""

    def __init__(self, app: web.Application, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        accept = server.connection_made

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            accept(handler, transport)
            if len(server.connections) > self.max_connections:
                transport.abort()

        server.connection_made = connection_made  # type: ignore[method-assign]
        return server


def bounded_runner(app: web.Application, bounds: ConnectionSettings) -> web.AppRunner:
    """The runner of an HTTP listener: a client has `header_timeout` seconds to send a request
    head (and as long between requests on a kept-alive connection), lines and header fields are
    bounded, and at most `max_connections` connections are held."""
    return _BoundedRunner(
        app,
        bounds.max_connections,
        access_log=None,
        keepalive_timeout=bounds.header_timeout,
        max_line_size=MAX_LINE,
        max_field_size=MAX_FIELD,
        logger=_ProtocolLog(),
    )


def build_app(
    core: Core, settings: WebSettings | None = None, *, jurisdiction: str = "PE"
) -> web.Application:
    """The aiohttp application: /metrics, /healthz, the home page, every flow's pages and the
    regulator's reports (the compliance ledger's and every flow's)."""
    settings = settings or WebSettings()
    contributions = flow_web_routes(core)
    # Forms here are a few short fields; anything larger is not from them.
    app = web.Application(middlewares=[spanish_errors], client_max_size=16 * 1024)
    renderer = Renderer(c.templates for c in contributions if c.templates is not None)
    app[RENDERER] = renderer
    app.on_response_prepare.append(add_security_headers)

    async def healthz(_: web.Request) -> web.Response:
        # The health monitor's verdict (the one gRPC health reports), with the facts behind it:
        # PostgreSQL reachable (503 when not, or when a background loop is dead), Redis (only
        # degraded without it), each loop's liveness and the oldest overdue deadline.
        await core.health.fresh()
        report = core.health.report()
        report["head"] = core.hub.head
        report["pid"] = os.getpid()
        return web.json_response(report, status=200 if report["serving"] else 503)

    pages = [page for c in contributions for page in c.pages]
    renderer.jurisdiction = jurisdiction
    # One home page per jurisdiction with pages: the site's own at /, another's at /<country>
    # (Colombia's PQR page is not a Peruvian subscriber's business, nor in Peru's navigation).
    countries = sorted({page.jurisdiction or jurisdiction for page in pages} | {jurisdiction})
    homes = {c: "/" if c == jurisdiction else f"/{c.lower()}" for c in countries}

    def home_of(country: str) -> Handler:
        async def home(request: web.Request) -> web.Response:
            heading, lead = HOMES.get(country, HOMES[""])
            return render(
                request,
                "index.html",
                title=heading,
                heading=heading,
                lead=lead,
                jurisdiction=country,
                pages=[p for p in pages if (p.jurisdiction or jurisdiction) == country],
                elsewhere=[
                    (COUNTRY_NAMES.get(c, c), path) for c, path in homes.items() if c != country
                ],
            )

        return home

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    for country, path in homes.items():
        app.router.add_get(path, home_of(country))
    app.router.add_static("/static", STATIC)

    limiter = RateLimiter(
        core.redis,
        core.notifier.prefix,
        core.clock,
        limit=settings.lookups_per_window,
        window=settings.lookup_window,
    )
    for page in pages:
        add_lookup_page(app, page, limiter, settings.trusted_proxies)
        renderer.nav.append(
            NavItem(page.path, page.nav_label or page.title, page.jurisdiction or jurisdiction)
        )
    renderer.nav.append(NavItem("/reportes", "Reportes"))

    reports = ReportSite(
        core,
        TokenAuthenticator(core.db),
        [
            *compliance_reports(core.db),
            *oversight_reports(core.db, jurisdiction, _flows_of(core, jurisdiction)),
            *(r for c in contributions for r in c.reports),
        ],
        jurisdiction,
    )
    reports.add_routes(app)
    for contribution in contributions:
        app.router.add_routes(contribution.routes)
    return app
