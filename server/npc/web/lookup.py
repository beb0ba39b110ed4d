"""Public lookup pages: a form, a rate-limited lookup, one answer for every miss."""

from __future__ import annotations

from aiohttp import web

from npc.web.ratelimit import RateLimiter
from npc.web.render import client_address, cross_site, render
from npc.web.site import LookupPage

NO_STORE = {"Cache-Control": "no-store"}
TOO_MANY = (
    "Ha realizado demasiadas consultas desde su conexión en poco tiempo. Por su seguridad, espere "
    "{seconds} segundos y vuelva a intentarlo."
)
FOREIGN_FORM = "Este formulario solo puede enviarse desde esta misma página."


def add_lookup_page(
    app: web.Application,
    page: LookupPage,
    limiter: RateLimiter,
    trusted_proxies: frozenset[str],
) -> None:
    """Serve `page` at its path: GET shows the form, POST looks the case up."""

    async def choices() -> dict[str, list[tuple[str, str]]]:
        return {f.name: list(await f.choices()) for f in page.fields if f.choices is not None}

    async def form(
        request: web.Request,
        *,
        status: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return render(
            request,
            "lookup.html",
            status=status,
            headers={**NO_STORE, **(headers or {})},
            page=page,
            values=values or {},
            errors=errors or {},
            message=message,
            options=await choices(),
        )

    async def show(request: web.Request) -> web.Response:
        return await form(request)

    async def submit(request: web.Request) -> web.Response:
        if cross_site(request):
            return render(
                request, "error.html", status=403, title="Solicitud rechazada", message=FOREIGN_FORM
            )
        # Every POST counts, valid or not: the limit is on attempts, not on hits.
        verdict = await limiter.hit("lookup", client_address(request, trusted_proxies))
        if not verdict.allowed:
            return render(
                request,
                "error.html",
                status=429,
                headers={**NO_STORE, "Retry-After": str(verdict.retry_after)},
                title="Demasiadas consultas",
                message=TOO_MANY.format(seconds=verdict.retry_after),
            )
        posted = await request.post()
        values = {f.name: f.normalise(str(posted.get(f.name, ""))) for f in page.fields}
        errors = {
            f.name: error for f in page.fields if (error := f.check(values[f.name])) is not None
        }
        for name, allowed in (await choices()).items():
            if name not in errors and values[name] not in {value for value, _ in allowed}:
                errors[name] = next(f.error for f in page.fields if f.name == name)
        if errors:
            return await form(request, status=400, values=values, errors=errors)
        view = await page.lookup(values)
        if view is None:
            return await form(request, values=values, message=page.not_found)
        return render(request, "status.html", headers=NO_STORE, page=page, view=view)

    app.router.add_get(page.path, show)
    app.router.add_post(page.path, submit)
