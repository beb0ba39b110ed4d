"""Tracking of cancellations (bajas) and plan migrations: the operators' daily reports.

Operators with more than 500,000 subscribers (the `reporting_operators` table, managed with
`npc admin`) report every day, 7 days a week, every cancellation and plan migration request of
fixed and mobile telephony, internet and pay TV, from every channel. A report covers one local
report date D; resending it replaces it. Each request's current state is the one of the latest
report date that mentions it (`tracked_requests`), which subscribers look up on the regulator's
page.

Deadlines (both recorded in the compliance ledger):
- `daily_report`, one per reporting operator and report date: the report of D is due at
  `report_due_time` (default 23:59) local time on D+1. Missing then: a record against the
  operator. Firing arms the next date's deadline, so the chain runs every day of the week.
- `scheduled`, one per request with a scheduled date: at the end of that local day the request
  must be executed (or rejected/withdrawn). Still pending, or reported executed afterwards: a
  record against the operator.
"""

from __future__ import annotations

from npc.core.compliance import record_breach
from npc.core.deadlines import Deadline
from npc.flows.cancellations import store
from npc.flows.cancellations.obligations import (
    ReportObligations,
    end_reporting_operator,
    register_reporting_operator,
)
from npc.flows.cancellations.queries import TrackingQueries
from npc.flows.cancellations.reporting import DailyReports
from npc.flows.cancellations.rules import FLOW, SCHEDULED, DeadlineKind, needs_deadline
from npc.store.database import Txn

__all__ = [
    "FLOW",
    "CancellationsHandler",
    "end_reporting_operator",
    "register_reporting_operator",
]


class CancellationsHandler(DailyReports, ReportObligations, TrackingQueries):
    """Daily reports, tracked requests, their deadlines and the queries of the public pages.

    Each sub-process is its own module: `reporting` (checking and storing a report),
    `obligations` (who reports, and the daily-report deadline), `queries` (the reads).
    """

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.DAILY_REPORT, self._report_due)
        self.core.deadlines.register(FLOW, DeadlineKind.SCHEDULED, self._scheduled_passed)

    async def _scheduled_passed(self, txn: Txn, deadline: Deadline) -> None:
        # A plain read: the request's row lock may be held by a report being ingested, which
        # itself waits for this deadline's row; reading the committed state avoids the deadlock.
        row = await store.tracked_request(txn.conn, deadline.case_id)
        if row is None or not needs_deadline(row["state"], row["executed_at"], deadline.due_at):
            return
        await record_breach(
            txn,
            flow=FLOW,
            rule=SCHEDULED,
            operator=row["operator_id"],
            case_id=row["id"],
            due_at=deadline.due_at,
            observed_at=txn.now,
            evidence={
                "request_code": row["request_code"],
                "kind": row["kind"],
                "scheduled_date": row["scheduled_date"].isoformat()
                if row["scheduled_date"]
                else None,
                "state": row["state"],
                "executed_at": row["executed_at"].isoformat() if row["executed_at"] else None,
            },
        )
