"""HTML rendering (Jinja2, autoescaped), security headers and small request helpers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# No script runs on these pages and nothing is loaded from elsewhere; forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class Masthead:
    """What the header and footer of a jurisdiction's pages say the site is."""

    brand: str
    footer: str


# Colombia's pages are the PQR service (CRC regime, seed 004, section 2.1.5): nothing there
# offers portability, so they neither name it nor promise it is free.
MASTHEADS = {
    "": Masthead(
        "Portabilidad numérica",
        "Administrador de la base de datos centralizada de portabilidad numérica. "
        "La portabilidad es gratuita.",
    ),
    "CO": Masthead(
        "Consulta de PQR",
        "Servicio de consulta de peticiones, quejas y recursos (PQR) del administrador de la "
        "base de datos, según el régimen de protección de los usuarios de servicios de "
        "comunicaciones de la CRC (sección 2.1.5).",
    ),
}


@dataclass(frozen=True)
class NavItem:
    """An entry of the site's navigation."""

    path: str
    label: str
    # The jurisdiction whose pages show it; None: every page (the reports).
    jurisdiction: str | None = None


class Renderer:
    """The site's template environment: autoescaping on for every template, undefined names fail."""

    def __init__(self, extra_folders: Iterable[Path] = ()) -> None:
        folders = [str(TEMPLATES), *(str(f) for f in extra_folders)]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.nav: list[NavItem] = []
        self.jurisdiction = ""

    def html(self, template: str, **context: Any) -> str:
        """Render `template` with the navigation of its jurisdiction: the context's
        `jurisdiction`, else its lookup `page`'s, else the site's."""
        page = context.get("page")
        country = (
            context.get("jurisdiction") or getattr(page, "jurisdiction", None) or self.jurisdiction
        )
        nav = [item for item in self.nav if item.jurisdiction in (None, country)]
        # The brand links to the jurisdiction's own home page (/co for Colombia's pages).
        home = "/" if country == self.jurisdiction else f"/{country.lower()}"
        masthead = MASTHEADS.get(country, MASTHEADS[""])
        return self.env.get_template(template).render(
            nav=nav, home=home, masthead=masthead, **context
        )


RENDERER = web.AppKey("npc_renderer", Renderer)


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> web.Response:
    """An HTML response of `template` rendered with `context` (escaped)."""
    body = request.app[RENDERER].html(template, **context)
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


async def add_security_headers(_: web.Request, response: web.StreamResponse) -> None:
    """Every response, errors included, carries the security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The address a rate limit counts for `request` (see `resolve_client`)."""
    return resolve_client(
        request.remote, request.headers.getall("X-Forwarded-For", []), trusted_proxies
    )


def resolve_client(
    peer: str | None, forwarded_for: list[str], trusted_proxies: frozenset[str]
) -> str:
    """The client's address: the peer, or, when the peer is a trusted reverse proxy, the nearest
    address in X-Forwarded-For that is not one of ours (the rest of the header is client-made)."""
    remote = peer or "unknown"
    if remote not in trusted_proxies:
        return remote
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return remote


def cross_site(request: web.Request) -> bool:
    """True when a browser says this request comes from another site's page.

    Lookups change nothing, but a foreign page must not spend a visitor's lookups or use their
    address to probe codes.
    """
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc != request.host
