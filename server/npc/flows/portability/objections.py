"""Improper objections (003 art. 22, infraction 23, muy grave): what the clearinghouse can hold
against a donor's objection from the facts it has, recorded in the compliance ledger with them.

The objection itself still takes its course (a debt awaits its proof of payment, any other reason
rejects the request): the ledger record is the regulator's to judge. Each finding is a pure
predicate of `rules`; this module reads the facts and records the breach.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from asyncpg import Record

from npc.core import numbers as registry
from npc.flows.portability import rules as R
from npc.flows.portability import store
from npc.flows.portability.base import PortabilityBase
from npc.flows.portability.model import Objection
from npc.store.database import Txn

Finding = R.ObjectionFinding


class ObjectionReview(PortabilityBase):
    """Flags improper objections when the donor objects and when the debt's payment is proven."""

    async def _review_objection(self, txn: Txn, row: Record, objection: Objection) -> None:
        """OCC: record infraction 23 when the objection's own data, the request's form or the
        registry contradict it."""
        reason = objection.reason
        findings: list[str] = []
        facts: dict[str, Any] = {
            "objection_reason": str(reason),
            "received_at": row["received_at"].isoformat(),
            "objected_at": txn.now.isoformat(),
        }
        if reason == R.ObjectionReason.DEBT:
            due = objection.debt.due_date
            # The checks refused a debt objection without a readable due date.
            assert isinstance(due, date)
            exigible_from = self.timeline.debt_exigible_from(due)
            facts.update(due_date=due.isoformat(), exigible_from=exigible_from.isoformat())
            if R.debt_not_exigible(exigible_from, row["received_at"]):
                findings.append(Finding.DEBT_NOT_EXIGIBLE)
            modalities = await store.request_modalities(txn.conn, row["id"])
            if R.debt_on_prepaid_line(modalities):
                findings.append(Finding.DEBT_ON_PREPAID_LINE)
                facts["modality"] = R.Modality.PREPAID.value
        elif reason in (R.ObjectionReason.NUMBER_NOT_OWNED, R.ObjectionReason.WRONG_SERVICE_TYPE):
            numbers = await store.request_numbers(txn.conn, row["id"])
            served = await registry.who_serves(txn.conn, numbers)
            if reason == R.ObjectionReason.NUMBER_NOT_OWNED:
                if R.ownership_contradicted(row["donor"], [s.serving for s in served]):
                    findings.append(Finding.NUMBER_SERVED_BY_DONOR)
            elif R.service_contradicted(row["service"], [s.service for s in served]):
                findings.append(Finding.SERVICE_TYPE_MATCHES)
            facts["request_service"] = row["service"]
            facts["number_count"] = len(served)
            facts["registry"] = [
                {"number": s.number, "serving": s.serving, "service": s.service}
                for s in served[: R.EVIDENCE_NUMBERS]
            ]
        if findings:
            await self._improper(txn, row, {"findings": [str(f) for f in findings], **facts})

    async def _review_payment(
        self, txn: Txn, row: Record, paid_at: datetime, receipt_number: str
    ) -> None:
        """APD: record infraction 23 when the proven payment predates the request's presentation
        (once per case: an objection already flagged keeps its first record)."""
        if not R.paid_before_presentation(paid_at, row["received_at"]):
            return
        answered = row["answered_at"]
        await self._improper(
            txn,
            row,
            {
                "findings": [str(Finding.PAID_BEFORE_PRESENTATION)],
                "objection_reason": str(R.ObjectionReason.DEBT),
                "received_at": row["received_at"].isoformat(),
                "objected_at": answered.isoformat() if answered else None,
                "paid_at": paid_at.isoformat(),
                "receipt_number": receipt_number,
            },
        )

    async def _improper(self, txn: Txn, row: Record, evidence: dict[str, Any]) -> None:
        await self._breach(txn, R.IMPROPER_OBJECTION, row["donor"], row["id"], None, evidence)
