"""The two delivery channels of subscriber notifications: e-mail over SMTP and SMS over a webhook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import aiohttp
import aiosmtplib

from npc.config import NotificationSettings


@dataclass(frozen=True)
class Outgoing:
    """One queued notification being delivered."""

    id: int
    channel: str
    recipient: str
    subject: str | None
    body: str


class DeliveryError(Exception):
    """A send failed. `permanent` failures (the server refused the message itself) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailSender:
    """Sends e-mails through one SMTP server (aiosmtplib), one connection per message."""

    def __init__(self, settings: NotificationSettings) -> None:
        if not settings.smtp_host:
            raise ValueError("EmailSender needs an SMTP host")
        self.settings = settings

    def build(self, item: Outgoing, sent_at: datetime) -> EmailMessage:
        """The MIME message for a queued e-mail (UTF-8 plain text)."""
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = item.recipient
        message["Subject"] = item.subject or ""
        message["Date"] = format_datetime(sent_at)
        # The notification id makes the Message-ID stable across retries, so a receiving server
        # can recognise a message it already accepted when our acknowledgement was lost.
        domain = self.settings.smtp_from.rpartition("@")[2] or "npc.invalid"
        message["Message-ID"] = make_msgid(idstring=f"npc-notification-{item.id}", domain=domain)
        message.set_content(item.body, charset="utf-8")
        return message

    async def send(self, item: Outgoing, sent_at: datetime) -> None:
        """Hand the e-mail to the SMTP server; raise DeliveryError if it is not accepted."""
        settings = self.settings
        try:
            await aiosmtplib.send(
                self.build(item, sent_at),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_user,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls,
                timeout=settings.send_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [r.code for r in refused.recipients]
            raise DeliveryError(
                f"SMTP refused the recipient: {'; '.join(str(r) for r in refused.recipients)}",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"SMTP {error.code} {error.message}",
                # Authentication failures are the configuration's fault: retry once it is fixed.
                permanent=error.code >= 500
                and not isinstance(error, aiosmtplib.SMTPAuthenticationError),
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryError(f"SMTP server unreachable: {error!r}") from None


class SmsGateway(Protocol):
    """Something that accepts an SMS for delivery to a subscriber's line."""

    async def send(self, item: Outgoing) -> None:
        """Hand over the SMS; raise DeliveryError if it is not accepted."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class WebhookSmsGateway:
    """Posts each SMS as JSON ``{"to", "text", "id"}`` to an HTTP endpoint; any 2xx accepts it.

    The `id` is the notification id, the same on every retry, so the gateway can drop duplicates.
    """

    def __init__(self, settings: NotificationSettings) -> None:
        if not settings.sms_webhook_url:
            raise ValueError("WebhookSmsGateway needs a webhook URL")
        self.url = settings.sms_webhook_url
        self.headers = {"Content-Type": "application/json; charset=utf-8"}
        if settings.sms_webhook_token:
            self.headers["Authorization"] = f"Bearer {settings.sms_webhook_token}"
        self.timeout = aiohttp.ClientTimeout(total=settings.send_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, item: Outgoing) -> None:
        """POST the SMS to the webhook."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.post(
                self.url,
                json={"to": item.recipient, "text": item.body, "id": str(item.id)},
                headers=self.headers,
            ) as response:
                if 200 <= response.status < 300:
                    return
                detail = (await response.text())[:200]
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise DeliveryError(f"SMS gateway unreachable: {error!r}") from None
        # 4xx means this message is refused as it is (bad number, bad text); 408, 429 and 5xx are
        # the gateway's passing trouble.
        permanent = 400 <= status < 500 and status not in (408, 425, 429)
        raise DeliveryError(f"SMS gateway answered {status}: {detail}", permanent=permanent)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
