"""The HTTP side: Prometheus metrics and health. Public pages plug in here later."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from npc.core.runtime import Core


def build_app(core: Core) -> web.Application:
    """The aiohttp application with /metrics and /healthz."""
    app = web.Application()

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                async with core.db.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:  # report, never raise: this is the health page
            checks["postgres"] = f"error: {type(exc).__name__}"
        try:
            async with asyncio.timeout(2):
                await core.redis.ping()
            checks["redis"] = "ok"
        except (RedisError, OSError, TimeoutError) as exc:
            checks["redis"] = f"degraded: {type(exc).__name__}"
        healthy = checks["postgres"] == "ok"
        return web.json_response(
            {"status": "ok" if healthy else "unavailable", "checks": checks, "head": core.hub.head},
            status=200 if healthy else 503,
        )

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
