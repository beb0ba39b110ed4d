"""The grpc.aio server: operator services, health (grpc.health.v1) and reflection."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from npc.api.drain import Drain
from npc.api.identity import TokenAuthenticator
from npc.api.interceptors import ServerInterceptor
from npc.api.limits import RateLimiter
from npc.api.tls import TlsFiles, server_credentials
from npc.config import ConnectionSettings
from npc.core.flow import GrpcService

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class GrpcServer:
    """Owns the grpc.aio server and its health status."""

    def __init__(
        self,
        services: list[GrpcService],
        authenticator: TokenAuthenticator,
        *,
        tls: TlsFiles | None = None,
        limiter: RateLimiter | None = None,
        call_timeout: float = 30.0,
        connections: ConnectionSettings | None = None,
    ) -> None:
        self.tls = tls
        bounds = connections or ConnectionSettings()
        self.drain = Drain()
        self.interceptor = interceptor = ServerInterceptor(
            authenticator,
            certificates=tls is not None,
            limiter=limiter,
            call_timeout=call_timeout,
            countries={s.full_name: s.country for s in services if s.country},
            max_streams=bounds.max_streams,
            max_uploads=bounds.max_uploads,
            drain=self.drain,
        )
        self.server = grpc.aio.server(
            interceptors=[interceptor],
            options=[
                # The largest upload chunk; each method's own limit is in npc.api.bounds.
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 1),
                # A connection that never completes TLS and the HTTP/2 preface is closed.
                ("grpc.server_handshake_timeout_ms", int(bounds.handshake_timeout * 1000)),
                # One without any call (a subscription is a call) is closed, with a GOAWAY.
                ("grpc.max_connection_idle_ms", int(bounds.idle_timeout * 1000)),
                ("grpc.max_allowed_incoming_connections", bounds.max_connections),
                # Calls at once on one connection.
                ("grpc.max_concurrent_streams", 128),
                # Sessions and subscriptions stay open for hours: a peer gone without a FIN (NAT,
                # crashed host) is found by a ping unanswered within 20 s of 60 s of silence.
                # Clients may ping every 30 s, calls or none (the SDK pings every 60 s); one
                # pinging more often is sent away (GOAWAY). Pings do not count as calls for
                # NPC_IDLE_TIMEOUT.
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        self.service_names = [s.full_name for s in services]
        for service in services:
            service.add_to_server(service.servicer, self.server)
            names.append(service.full_name)
        reflection.enable_server_reflection(names, self.server)
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (port 0 picks one) and mark every service SERVING."""
        if self.tls is not None:
            self.port = self.server.add_secure_port(f"{host}:{port}", server_credentials(self.tls))
        else:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        await self.server.start()
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        """SERVING or NOT_SERVING on every service: what the process's health monitor judges
        (PostgreSQL reachable, no background loop dead)."""
        await self._set_all(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def _set_all(self, status: int) -> None:
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace: float = 5.0, *, lame_duck: float = 0.0) -> None:
        """NOT_SERVING at once; serve on for `lame_duck` seconds (balancers watching health move
        away); then refuse new calls with UNAVAILABLE, end streams with their resume position,
        let the calls in flight finish (up to `grace` seconds) and stop."""
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        if lame_duck > 0:
            await asyncio.sleep(lame_duck)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self.drain.start(grace)
        # Whatever is still running (refusals being sent, a call past the grace) gets what is
        # left of the grace; a moment at least for the refusals.
        await self.server.stop(max(deadline - loop.time(), 0.5))
