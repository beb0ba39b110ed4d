"""Queueing notifications in the case's own transaction.

Flows call `queue_email` / `queue_sms` inside `Database.transaction`; the row commits with the case
change it announces. Delivery (and retries) happen later, outside any case transaction.
`defer_email` / `defer_sms` do the same without a round trip of their own: the row rides in the
transaction's flush, so a hot path (a port's commands) tells the subscriber for free.
"""

from __future__ import annotations

from collections.abc import Callable

from npc.store.database import NotificationDraft, Txn

MAX_EMAIL_BODY = 100_000
MAX_SMS_TEXT = 918  # six concatenated GSM-7 segments

_listeners: list[Callable[[], None]] = []


def on_queued(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` after each commit that queued notifications; returns the unsubscriber."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _queued() -> None:
    for listener in list(_listeners):
        listener()


async def queue_email(
    txn: Txn, *, to: str, subject: str, body: str, flow: str, case_id: str | None
) -> int:
    """Queue an e-mail to a subscriber; returns the notification id."""
    if not to or "@" not in to:
        raise ValueError(f"not an e-mail address: {to!r}")
    if len(body) > MAX_EMAIL_BODY:
        raise ValueError("e-mail body too long")
    return await _queue(txn, "email", to, subject, body, flow, case_id)


async def queue_sms(txn: Txn, *, to: str, text: str, flow: str, case_id: str | None) -> int:
    """Queue an SMS to a subscriber's line; returns the notification id."""
    if not to:
        raise ValueError("SMS recipient is empty")
    if len(text) > MAX_SMS_TEXT:
        raise ValueError("SMS text too long")
    return await _queue(txn, "sms", to, None, text, flow, case_id)


def defer_email(
    txn: Txn, *, to: str, subject: str, body: str, flow: str, case_id: str | None
) -> None:
    """Queue an e-mail to a subscriber with the transaction's flush (no id: none exists yet)."""
    if not to or "@" not in to:
        raise ValueError(f"not an e-mail address: {to!r}")
    if len(body) > MAX_EMAIL_BODY:
        raise ValueError("e-mail body too long")
    txn.notifications.append(NotificationDraft("email", to, subject, body, flow, case_id))
    txn.after_commit(_queued)


def defer_sms(txn: Txn, *, to: str, text: str, flow: str, case_id: str | None) -> None:
    """Queue an SMS to a subscriber's line with the transaction's flush."""
    if not to:
        raise ValueError("SMS recipient is empty")
    if len(text) > MAX_SMS_TEXT:
        raise ValueError("SMS text too long")
    txn.notifications.append(NotificationDraft("sms", to, None, text, flow, case_id))
    txn.after_commit(_queued)


async def _queue(
    txn: Txn,
    channel: str,
    recipient: str,
    subject: str | None,
    body: str,
    flow: str,
    case_id: str | None,
) -> int:
    notification_id: int = await txn.conn.fetchval(
        """INSERT INTO notifications (channel, recipient, subject, body, flow, case_id,
                                      created_at, next_attempt_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id""",
        channel,
        recipient,
        subject,
        body,
        flow,
        case_id,
        txn.now,
    )
    # Other processes find the row by polling; this one delivers it as soon as it commits.
    txn.after_commit(_queued)
    return notification_id
