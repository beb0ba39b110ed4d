"""Delivery of the notification outbox to real SMTP and HTTP sinks, retries on the fake clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from prometheus_client import REGISTRY

from npc.app import Clearinghouse
from npc.config import NotificationSettings
from npc.notifications.dispatcher import NotificationDispatcher
from npc.notifications.outbox import queue_email, queue_sms

SUBJECT = "Su solicitud de baja N.º 123 fue atendida"
BODY = (
    "Estimada señora Quispe: la baja de su línea se ejecutó el 24 de noviembre. Atención: ¿dudas?"
)
SMS_TEXT = "OSIPTEL: su migración de plan está en trámite. Consúltela en la página web. Año 2026."


async def _queue_email(app: Clearinghouse, to: str = "rosa.quispe@example.pe") -> int:
    assert app.core is not None
    async with app.core.db.transaction("test", app.clock.now()) as txn:
        return await queue_email(
            txn, to=to, subject=SUBJECT, body=BODY, flow="cancellations", case_id="BM1"
        )


async def _queue_sms(app: Clearinghouse, to: str = "51940000001") -> int:
    assert app.core is not None
    async with app.core.db.transaction("test", app.clock.now()) as txn:
        return await queue_sms(txn, to=to, text=SMS_TEXT, flow="cancellations", case_id="BM1")


async def _row(app: Clearinghouse, notification_id: int):
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM notifications WHERE id = $1", notification_id)


async def _deliver(app: Clearinghouse) -> None:
    assert app.notifications is not None
    await app.notifications.deliver_due()


def _sample(name: str, channel: str) -> float:
    return REGISTRY.get_sample_value(name, {"channel": channel}) or 0.0


async def test_an_email_arrives_with_recipient_subject_and_spanish_body(app, clock, smtp_sink):
    sent_before = _sample("npc_notifications_sent_total", "email")
    notification = await _queue_email(app)
    await _deliver(app)
    assert len(smtp_sink.received) == 1
    recipients, message = smtp_sink.received[0]
    assert recipients == ["rosa.quispe@example.pe"]
    assert message["To"] == "rosa.quispe@example.pe"
    assert message["From"] == "notificaciones@npc.test"
    assert message["Subject"] == SUBJECT
    assert message.get_content().strip() == BODY
    assert f"npc-notification-{notification}" in message["Message-ID"]
    row = await _row(app, notification)
    assert row["sent_at"] == clock.now()
    assert row["attempts"] == 1
    assert _sample("npc_notifications_sent_total", "email") == sent_before + 1
    assert _sample("npc_notifications_pending", "email") == 0


async def test_a_committed_notification_wakes_the_dispatcher(app, smtp_sink):
    # No explicit delivery pass: the commit itself wakes the background loop.
    await _queue_email(app)
    await asyncio.wait_for(smtp_sink.arrived.wait(), 10)
    assert smtp_sink.received[0][1]["Subject"] == SUBJECT


async def test_an_sms_is_posted_as_json_with_the_bearer_token(app, clock, sms_sink):
    notification = await _queue_sms(app)
    await _deliver(app)
    assert sms_sink.received == [{"to": "51940000001", "text": SMS_TEXT, "id": str(notification)}]
    assert sms_sink.authorizations == ["Bearer sms-secret"]
    assert (await _row(app, notification))["sent_at"] == clock.now()


async def test_smtp_451_is_retried_after_the_backoff(app, clock, smtp_sink):
    failed_before = _sample("npc_notifications_failed_total", "email")
    smtp_sink.refuse.append("451 4.3.0 Try again later")
    notification = await _queue_email(app)
    await _deliver(app)
    assert smtp_sink.received == []
    row = await _row(app, notification)
    assert (row["attempts"], row["sent_at"], row["abandoned_at"]) == (1, None, None)
    assert "451" in row["last_error"]
    assert row["next_attempt_at"] == clock.now() + timedelta(minutes=1)
    assert _sample("npc_notifications_failed_total", "email") == failed_before + 1
    clock.advance(timedelta(seconds=59))
    await _deliver(app)
    assert smtp_sink.attempts == 1
    clock.advance(timedelta(seconds=1))
    await _deliver(app)
    assert len(smtp_sink.received) == 1
    row = await _row(app, notification)
    assert (row["attempts"], row["sent_at"], row["last_error"]) == (2, clock.now(), None)


async def test_http_503_is_retried_with_doubling_backoff(app, clock, sms_sink):
    sms_sink.refuse.extend([503, 503])
    notification = await _queue_sms(app)
    await _deliver(app)
    clock.advance(timedelta(minutes=1))
    await _deliver(app)
    assert sms_sink.attempts == 2
    # Second failure: the wait doubles to two minutes.
    clock.advance(timedelta(minutes=2) - timedelta(seconds=1))
    await _deliver(app)
    assert sms_sink.attempts == 2
    clock.advance(timedelta(seconds=1))
    await _deliver(app)
    assert [m["id"] for m in sms_sink.received] == [str(notification)]
    assert (await _row(app, notification))["attempts"] == 3


async def test_abandoned_after_the_configured_attempts(app, clock, sms_sink):
    abandoned_before = _sample("npc_notifications_abandoned_total", "sms")
    sms_sink.refuse.extend([503] * 5)
    notification = await _queue_sms(app)
    for _ in range(5):
        await _deliver(app)
        clock.advance(timedelta(hours=3))
    assert sms_sink.attempts == 3  # max_attempts
    row = await _row(app, notification)
    assert row["abandoned_at"] is not None and row["sent_at"] is None
    assert row["attempts"] == 3
    assert _sample("npc_notifications_abandoned_total", "sms") == abandoned_before + 1


async def test_a_message_the_gateway_refuses_is_abandoned_at_once(app, clock, sms_sink):
    sms_sink.refuse.append(400)
    notification = await _queue_sms(app)
    await _deliver(app)
    clock.advance(timedelta(hours=3))
    await _deliver(app)
    assert sms_sink.attempts == 1
    row = await _row(app, notification)
    assert row["abandoned_at"] is not None and "400" in row["last_error"]


async def test_failures_on_one_channel_do_not_hold_the_other(app, clock, smtp_sink, sms_sink):
    sms_sink.refuse.append(503)
    await _queue_sms(app)
    await _queue_email(app)
    await _deliver(app)
    assert len(smtp_sink.received) == 1 and sms_sink.received == []


async def test_without_smtp_mail_stays_queued_and_goes_out_once_configured(
    settings, clock, smtp_sink
):
    unconfigured = replace(settings, notifications=NotificationSettings())
    first = Clearinghouse(unconfigured, clock)
    await first.start(serve_http=False)
    try:
        notification = await _queue_email(first)
        await _deliver(first)
        clock.advance(timedelta(days=1))
        await _deliver(first)
        row = await _row(first, notification)
        assert (row["attempts"], row["sent_at"], row["abandoned_at"]) == (0, None, None)
    finally:
        await first.stop()
    second = Clearinghouse(settings, clock)
    await second.start(serve_http=False)
    try:
        await _deliver(second)
        assert len(smtp_sink.received) == 1
    finally:
        await second.stop()


async def test_a_pending_retry_survives_a_restart(settings, clock, smtp_sink):
    first = Clearinghouse(settings, clock)
    await first.start(serve_http=False)
    try:
        smtp_sink.refuse.append("421 4.7.0 Service not available")
        notification = await _queue_email(first)
        await _deliver(first)
    finally:
        await first.stop()
    second = Clearinghouse(settings, clock)
    await second.start(serve_http=False)
    try:
        clock.advance(timedelta(minutes=1))
        await _deliver(second)
        assert [r for r, _ in smtp_sink.received] == [["rosa.quispe@example.pe"]]
        assert (await _row(second, notification))["attempts"] == 2
    finally:
        await second.stop()


async def test_a_send_cut_by_a_crash_is_claimed_again_after_the_lease(settings, clock, smtp_sink):
    first = Clearinghouse(settings, clock)
    await first.start(serve_http=False, background=False)
    stalled = asyncio.Event()
    release = asyncio.Event()
    original = smtp_sink.handle_DATA

    async def stall_once(server, session, envelope):
        if not stalled.is_set():
            stalled.set()
            await release.wait()
            return "451 gone"
        return await original(server, session, envelope)

    smtp_sink.handle_DATA = stall_once  # type: ignore[method-assign]
    try:
        notification = await _queue_email(first)
        assert first.notifications is not None
        crashed = asyncio.ensure_future(first.notifications.deliver_due())
        await asyncio.wait_for(stalled.wait(), 10)
        crashed.cancel()  # the process dies with the message claimed, unsent
    finally:
        release.set()
        await first.stop()
    second = Clearinghouse(settings, clock)
    await second.start(serve_http=False, background=False)
    try:
        await _deliver(second)
        assert smtp_sink.received == []  # still leased to the dead process
        clock.advance(settings.notifications.claim_lease)
        await _deliver(second)
        assert len(smtp_sink.received) == 1
        assert (await _row(second, notification))["sent_at"] == clock.now()
    finally:
        await second.stop()


async def test_two_dispatchers_deliver_each_message_once(app, settings, clock, smtp_sink):
    # A second server process on the same database: rows claimed by one are skipped by the other.
    assert app.core is not None
    other = NotificationDispatcher.from_settings(app.core.db, clock, settings.notifications)
    ids = [await _queue_email(app, to=f"abonado{n}@example.pe") for n in range(30)]
    assert app.notifications is not None
    await asyncio.gather(app.notifications.deliver_due(), other.deliver_due())
    await _deliver(app)
    delivered = sorted(recipients[0] for recipients, _ in smtp_sink.received)
    assert delivered == sorted(f"abonado{n}@example.pe" for n in range(30))
    assert [(await _row(app, i))["attempts"] for i in ids] == [1] * len(ids)
