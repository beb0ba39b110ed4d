"""What every part of the PQR handler shares: the Bogotá calendar, the breach ledger, the
user's notifications and the answers with the texts the user reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from asyncpg import Record

from npc.core.compliance import Rule, record_breach
from npc.core.runtime import Core
from npc.flows.pqr import texts
from npc.flows.pqr.model import PqrCase, SmsCase
from npc.flows.pqr.rules import FLOW, JURISDICTION
from npc.notifications.outbox import MAX_SMS_TEXT, queue_email, queue_sms
from npc.store.database import Txn
from npc.store.operators import name_of


class PqrBase:
    """The core, the Colombian business calendar and the helpers of every sub-process."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.calendar = core.calendar(JURISDICTION)

    def case(self, row: Record) -> PqrCase:
        """A pqrs row with its status sentence and transfer notice."""
        return PqrCase(
            row,
            texts.status_sentence(self.calendar, row),
            texts.transfer_notice(self.calendar, row),
        )

    async def sms_case(self, conn: asyncpg.Connection, row: Record) -> SmsCase:
        """A pqr_sms_requests row with its provider's name."""
        return SmsCase(row, str(await name_of(conn, row["provider"])))

    async def _breach(
        self, txn: Txn, rule: Rule, row: Record, due: datetime, **evidence: Any
    ) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=row["provider"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={"due_at": due.isoformat(), **evidence},
        )

    async def _notify_user(self, txn: Txn, row: Record, subject: str, body: str) -> None:
        """Tell the user by e-mail when there is one, else by SMS to the line given."""
        if row["email"]:
            await queue_email(
                txn, to=row["email"], subject=subject, body=body, flow=FLOW, case_id=row["id"]
            )
        elif row["phone"]:
            # The SMS carries what fits the outbox's longest message, not a shorter cut of its own.
            text = body[:MAX_SMS_TEXT]
            await queue_sms(txn, to=row["phone"], text=text, flow=FLOW, case_id=row["id"])
