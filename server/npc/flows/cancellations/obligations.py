"""Reporting operators: who must send the daily report, from and until which date, and the chain
of daily-report deadlines that judges each date (registered with `npc admin`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from npc.config import CancellationsSettings
from npc.core.calendar import calendar_for
from npc.core.compliance import record_breach
from npc.core.deadlines import Deadline
from npc.flows.cancellations import store
from npc.flows.cancellations.base import (
    CancellationsBase,
    arm_report_deadline,
    report_due_at,
)
from npc.flows.cancellations.rules import DAILY_REPORT, FLOW
from npc.store.database import Database, Txn


class ReportObligations(CancellationsBase):
    """The daily-report deadline: a missing report is a compliance record."""

    async def _report_due(self, txn: Txn, deadline: Deadline) -> None:
        operator = deadline.payload["operator"]
        report_date = date.fromisoformat(deadline.payload["report_date"])
        obligation = await store.reporting_operator(txn.conn, operator)
        if obligation is None or not obligation.covers(report_date):
            return  # no longer bound to report: the chain ends here
        received = await store.first_received_at(txn.conn, operator, report_date)
        # A first version at or after the due instant is late, as the compliance query counts it,
        # even when it was stored before this deadline fired (a busy or restarted scheduler).
        if received is None or received >= deadline.due_at:
            evidence = {
                "report_date": report_date.isoformat(),
                "due_at": deadline.due_at.isoformat(),
            }
            if received is not None:
                evidence["received_at"] = received.isoformat()
            await record_breach(
                txn,
                flow=FLOW,
                rule=DAILY_REPORT,
                operator=operator,
                case_id=deadline.case_id,
                due_at=deadline.due_at,
                observed_at=txn.now,
                evidence=evidence,
            )
        following = report_date + timedelta(days=1)
        if obligation.covers(following):
            self.arm_report_deadline(txn, operator, following)


async def register_reporting_operator(
    db: Database,
    handler_settings: CancellationsSettings,
    *,
    operator: str,
    since: date,
    subscribers: int | None,
    now: datetime,
) -> None:
    """Bind `operator` to the daily report from report date `since` on, and arm that deadline.

    Re-registering an operator moves its start and clears an earlier end (the declared number
    of subscribers is kept when not given).
    """
    calendar = calendar_for(handler_settings.jurisdiction)
    async with db.transaction("cancellations.register", now) as txn:
        await txn.lock_case(FLOW, f"reports:{operator}")
        await store.upsert_reporting_operator(txn.conn, operator, since, subscribers, now)
        # The chain of daily deadlines re-arms itself; start it only when it is not running, at
        # the first date not yet judged.
        latest, pending = await store.report_chain(txn.conn, operator)
        if pending:
            return
        first = since
        if latest is not None and latest >= since:
            first = latest + timedelta(days=1)
        due = report_due_at(calendar, handler_settings, first)
        arm_report_deadline(txn, operator, first, due)


async def end_reporting_operator(
    db: Database, *, operator: str, until: date, now: datetime
) -> bool:
    """Make `until` the last report date `operator` must report; False if it was not reporting."""
    async with db.transaction("cancellations.unregister", now) as txn:
        await txn.lock_case(FLOW, f"reports:{operator}")
        return await store.end_reporting_operator(txn.conn, operator, until, now)
