"""Real delivery sinks on loopback: an SMTP server (aiosmtpd) and an HTTP SMS gateway (aiohttp)."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from npc.config import NotificationSettings, Settings


@dataclass
class SmtpSink:
    """An SMTP server that keeps what it accepts; `refuse` answers the next DATA commands."""

    port: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.attempts += 1
        if self.refuse:
            return self.refuse.pop(0)
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        self.arrived.set()
        return "250 OK"


@dataclass
class SmsSink:
    """An HTTP SMS gateway that keeps what it accepts; `refuse` answers the next posts."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    refuse: list[int] = field(default_factory=list)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.refuse:
            return web.Response(status=self.refuse.pop(0), text="busy")
        self.received.append(await request.json())
        self.arrived.set()
        return web.json_response({"accepted": True}, status=202)


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """An SMTP server on a free loopback port."""
    sink = SmtpSink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()


@pytest.fixture
async def sms_sink() -> AsyncIterator[SmsSink]:
    """An HTTP SMS gateway on a free loopback port."""
    sink = SmsSink()
    application = web.Application()
    application.router.add_post("/sms", sink.post)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.port = runner.addresses[0][1]
    try:
        yield sink
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink, sms_sink: SmsSink) -> Settings:
    """The test settings with both channels pointed at the sinks."""
    return replace(
        settings,
        notifications=NotificationSettings(
            smtp_host="127.0.0.1",
            smtp_port=smtp_sink.port,
            smtp_from="notificaciones@npc.test",
            sms_webhook_url=f"http://127.0.0.1:{sms_sink.port}/sms",
            sms_webhook_token="sms-secret",
            max_attempts=3,
            send_timeout=5.0,
        ),
    )
