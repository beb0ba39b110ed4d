"""Delivery of the notification outbox, with retries.

Several server processes may run a dispatcher on the same database. A pass claims due rows with
`FOR UPDATE SKIP LOCKED` and, in the same statement, pushes their `next_attempt_at` one lease into
the future: the claim is then a short transaction, the send happens outside any transaction, and a
process that dies mid-send leaves its rows to be claimed again once the lease ends. Delivery is
therefore at least once; the notification id travels with every attempt (Message-ID, webhook `id`)
so receivers can drop a duplicate.

A failed attempt stores the error and backs off exponentially; after `max_attempts` (or at once,
when the server refused the message itself) the row is marked abandoned, logged and counted. The
case that queued it is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge

from npc.config import NotificationSettings
from npc.core.clock import Clock
from npc.core.supervision import Supervisor, passed
from npc.notifications import outbox
from npc.notifications.senders import (
    DeliveryError,
    EmailSender,
    Outgoing,
    SmsGateway,
    WebhookSmsGateway,
)
from npc.store.database import Database

log = logging.getLogger(__name__)

SENT = Counter("npc_notifications_sent_total", "Notifications delivered.", ["channel"])
FAILED = Counter(
    "npc_notifications_failed_total", "Failed notification delivery attempts.", ["channel"]
)
ABANDONED = Counter(
    "npc_notifications_abandoned_total", "Notifications given up after failing.", ["channel"]
)
PENDING = Gauge(
    "npc_notifications_pending", "Notifications queued, neither sent nor abandoned.", ["channel"]
)

CHANNELS = ("email", "sms")


class NotificationDispatcher:
    """Claims due notifications, sends them, and records the outcome."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: NotificationSettings,
        *,
        email: EmailSender | None = None,
        sms: SmsGateway | None = None,
        batch_size: int = 50,
        concurrency: int = 8,
        gauge_period: float = 15.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.email = email
        self.sms = sms
        self.batch_size = batch_size
        self.concurrency = concurrency
        # Wall seconds between counts of the backlog when nothing is delivered (the sampler's
        # period: what a scrape sees).
        self.gauge_period = gauge_period
        self._counted_at = -math.inf
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    @classmethod
    def from_settings(
        cls, db: Database, clock: Clock, settings: NotificationSettings
    ) -> NotificationDispatcher:
        """A dispatcher with the channels whose servers `settings` configure."""
        email = EmailSender(settings) if settings.smtp_host else None
        sms = WebhookSmsGateway(settings) if settings.sms_webhook_url else None
        return cls(db, clock, settings, email=email, sms=sms)

    @property
    def channels(self) -> list[str]:
        """The channels this dispatcher can deliver."""
        return [
            channel
            for channel, sender in (("email", self.email), ("sms", self.sms))
            if sender is not None
        ]

    def wake(self) -> None:
        """Look for due notifications now (a transaction queued some)."""
        # Without a server for any channel a pass sends nothing: the poll keeps the gauge fresh,
        # and commits that queue notices (every port's) do not each cost a count of the backlog.
        if self.channels:
            self._wake.set()

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Start the background loop under `supervisor` (the process's; one of its own if None)."""
        for channel, setting in (("email", "NPC_SMTP_HOST"), ("sms", "NPC_SMS_WEBHOOK_URL")):
            if channel not in self.channels:
                log.warning(
                    "no %s server configured (%s): %s notifications stay queued until one is",
                    channel,
                    setting,
                    channel,
                )
        self._unsubscribe = outbox.on_queued(self.wake)
        self._task = (supervisor or Supervisor()).start("notifications", self.run)

    async def stop(self) -> None:
        """Stop the loop and close the senders' connections."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.sms is not None:
            await self.sms.close()

    async def run(self) -> None:
        """Deliver what is due, then sleep until the next due row, a wake-up or the poll interval.

        A failed pass raises: the supervisor logs it, backs off and runs the loop again.
        """
        while True:
            self._wake.clear()
            await self.deliver_due()
            due = await self._next_due()
            passed()
            cap = self.clock.now() + timedelta(seconds=self.settings.poll_seconds)
            target = cap if due is None or due > cap else due
            await self.clock.sleep_until(target, self._wake)

    async def deliver_due(self) -> int:
        """Send every notification due at the clock's instant; return how many were delivered."""
        delivered = 0
        async with self._lock:
            claimed_any = False
            while self.channels:
                claimed = await self._claim()
                if not claimed:
                    break
                claimed_any = True
                semaphore = asyncio.Semaphore(self.concurrency)
                results = await asyncio.gather(*(self._deliver(row, semaphore) for row in claimed))
                delivered += sum(results)
            # The count reads the whole backlog: after a pass that sent or failed something, and
            # otherwise once per gauge period (with no server for a channel the backlog only
            # grows, and a pass runs on every poll and every commit that queues a notice).
            if claimed_any or time.monotonic() >= self._counted_at + self.gauge_period:
                await self._count_pending()
        return delivered

    async def _claim(self) -> list[Any]:
        now = self.clock.now()
        async with self.db.pool.acquire() as conn:
            rows: list[Any] = await conn.fetch(
                """WITH due AS (
                       SELECT id FROM notifications
                       WHERE sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= $1
                         AND channel = ANY($2::text[])
                       ORDER BY next_attempt_at, id LIMIT $3
                       FOR UPDATE SKIP LOCKED)
                   UPDATE notifications n SET next_attempt_at = $4
                   FROM due WHERE n.id = due.id
                   RETURNING n.id, n.channel, n.recipient, n.subject, n.body, n.attempts""",
                now,
                self.channels,
                self.batch_size,
                now + self.settings.claim_lease,
            )
        return rows

    async def _deliver(self, row: Any, semaphore: asyncio.Semaphore) -> int:
        item = Outgoing(row["id"], row["channel"], row["recipient"], row["subject"], row["body"])
        async with semaphore:
            try:
                if item.channel == "email":
                    assert self.email is not None
                    await self.email.send(item, self.clock.now())
                else:
                    assert self.sms is not None
                    await self.sms.send(item)
            except DeliveryError as error:
                await self._failed(item, row["attempts"] + 1, error)
                return 0
            except Exception as error:  # a sender bug must not stop the other deliveries
                log.exception("notification %s: unexpected failure", item.id)
                await self._failed(item, row["attempts"] + 1, DeliveryError(repr(error)))
                return 0
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                """UPDATE notifications SET sent_at = $2, attempts = attempts + 1,
                          last_error = NULL
                   WHERE id = $1 AND sent_at IS NULL""",
                item.id,
                self.clock.now(),
            )
        SENT.labels(item.channel).inc()
        return 1

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: doubling from `backoff_first`."""
        first = self.settings.backoff_first
        wait: timedelta = first * (2 ** min(attempts - 1, 30))
        return min(wait, self.settings.backoff_max)

    async def _failed(self, item: Outgoing, attempts: int, error: DeliveryError) -> None:
        now = self.clock.now()
        FAILED.labels(item.channel).inc()
        give_up = error.permanent or attempts >= self.settings.max_attempts
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                """UPDATE notifications SET attempts = $2, last_error = $3,
                          next_attempt_at = $4, abandoned_at = $5
                   WHERE id = $1 AND sent_at IS NULL""",
                item.id,
                attempts,
                str(error)[:1000],
                now + self.backoff(attempts),
                now if give_up else None,
            )
        if give_up:
            ABANDONED.labels(item.channel).inc()
            log.error(
                "notification %s (%s to %s) abandoned after %d attempt(s): %s",
                item.id,
                item.channel,
                item.recipient,
                attempts,
                error,
            )
        else:
            log.warning(
                "notification %s (%s) attempt %d failed, retrying in %s: %s",
                item.id,
                item.channel,
                attempts,
                self.backoff(attempts),
                error,
            )

    async def _next_due(self) -> datetime | None:
        if not self.channels:
            return None  # nothing to deliver: the index holds no row this could stop at
        async with self.db.pool.acquire() as conn:
            due: datetime | None = await conn.fetchval(
                """SELECT min(next_attempt_at) FROM notifications
                   WHERE sent_at IS NULL AND abandoned_at IS NULL AND channel = ANY($1::text[])""",
                self.channels,
            )
        return due

    async def _count_pending(self) -> None:
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT channel, count(*) AS pending FROM notifications
                   WHERE sent_at IS NULL AND abandoned_at IS NULL GROUP BY channel"""
            )
        self._counted_at = time.monotonic()
        counts = {r["channel"]: r["pending"] for r in rows}
        for channel in CHANNELS:
            PENDING.labels(channel).set(counts.get(channel, 0))
