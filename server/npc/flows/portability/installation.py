"""A fixed request's installation limit: "la portación ... de telefonía fija está sujeta a la
instalación previa del nuevo servicio" (003, form), and a line never installed must not hold its
numbers forever. The limit is the clearinghouse's own (`rules.FIXED_INSTALLATION_BUSINESS_DAYS`).

Its cancellation records no infraction: infraction 5 (processing a request without the technical
facilities) needs facts the clearinghouse cannot see (a missed installation may be the
subscriber's doing), so the case stays on the request and on both operators' streams.
"""

from __future__ import annotations

from datetime import datetime

from asyncpg import Record

from npc.core.deadlines import Deadline
from npc.flows.portability import rules as R
from npc.flows.portability import store
from npc.flows.portability.base import FLOW, PortabilityBase
from npc.store.database import Txn

INSTALLATION = R.DeadlineKind.INSTALLATION
State = R.State

# The states in which a request still waits for its line's installation before it may be scheduled.
_WAITING = frozenset({State.AWAITING_DONOR, State.OBJECTED_DEBT, State.ADMISSIBLE})


class InstallationLimit(PortabilityBase):
    """The installation limit of fixed requests, set at registration and kept until reported."""

    def _set_installation_limit(self, txn: Txn, row: Record) -> None:
        """A fixed request registered without its installation date waits for it until the
        limit counted from its presentation."""
        if row["service"] != R.Service.FIXED or row["installation_date"] is not None:
            return
        days = self.settings.fixed_installation_business_days
        txn.set_deadline(
            FLOW,
            INSTALLATION,
            row["id"],
            self.timeline.installation_limit(row["received_at"]),
            f"fixed: the line is installed within {days} business days of the request's"
            " presentation, or the request is cancelled (the clearinghouse's limit)",
        )

    async def _not_installed(self, txn: Txn, deadline: Deadline) -> None:
        """The limit passed without an installation: the request is cancelled, its numbers freed
        and both operators told."""
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is None or row["state"] not in _WAITING or row["installation_date"] is not None:
            return
        await self._cancel_not_installed(txn, row, deadline.due_at)

    def _installation_limit_passed(self, txn: Txn, row: Record) -> datetime | None:
        """The limit of a request that waited for its installation, when it has passed: a report
        arriving at the limit's instant, before its deadline fired, is as late as one after."""
        if row["service"] != R.Service.FIXED or row["installation_date"] is not None:
            return None
        limit = self.timeline.installation_limit(row["received_at"])
        return limit if txn.now >= limit else None

    async def _cancel_not_installed(self, txn: Txn, row: Record, limit: datetime) -> None:
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": State.CANCELLED,
                "closed_at": txn.now,
                "rejection_reason": "fixed line not installed by the installation limit"
                f" {limit.isoformat()}",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        txn.cancel_deadlines(FLOW, row["id"])
        self._emit(
            txn,
            "cancelled",
            None,
            row,
            to=(row["recipient"], row["donor"]),
            extra={"installation_limit": limit.isoformat()},
        )
        self._count_outcome(txn, "cancelled")
