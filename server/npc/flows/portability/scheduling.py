"""Scheduling: an admissible request (SPR) starts the recipient's scheduling limit; the recipient
schedules the port inside a change window (PP, PEP to all) before the execution limit (FLEP
otherwise), or the request is cancelled (CNPF)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from asyncpg import Record

from npc.core.deadlines import Deadline
from npc.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, OutOfRange
from npc.core.identity import Caller
from npc.core.instants import check_instant
from npc.core.validation import Violations, check_case_id
from npc.flows.portability import rules as R
from npc.flows.portability import store
from npc.flows.portability.base import FLOW, PortabilityBase
from npc.flows.portability.model import SchedulePort
from npc.store.database import Txn

SCHEDULE = R.DeadlineKind.SCHEDULE
EXECUTE = R.DeadlineKind.EXECUTE
State = R.State


class Scheduling(PortabilityBase):
    """SPR, PP / PEP, FLEP and CNPF."""

    async def _declare_admissible(
        self,
        txn: Txn,
        row: Record,
        *,
        donor_silent: bool = False,
        answered_at: datetime | None = None,
    ) -> Record:
        """SPR: the request may proceed; the recipient's scheduling limit starts."""
        changes: dict[str, Any] = {"state": State.ADMISSIBLE, "admissible_at": txn.now}
        if donor_silent:
            changes["donor_silent"] = True
        if answered_at is not None:
            changes["answered_at"] = answered_at
        changes.update(self._scheduling_terms(row, txn.now, row["installation_date"]))
        row = await store.REQUESTS.update(txn, row["id"], changes)
        self._set_schedule_deadline(txn, row)
        self._emit(txn, "admissible", "SPR", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "admissible")
        return row

    def _scheduling_terms(
        self, row: Record, admissible_at: datetime, installation_date: date | None
    ) -> dict[str, datetime]:
        """The columns of the two limits an admissible request gets (`Timeline.scheduling_terms`);
        none for a fixed line not yet installed."""
        terms = self.timeline.scheduling_terms(
            R.Service(row["service"]),
            admissible_at,
            installation_date,
            row["execution_limit"],
            row["number_count"],
        )
        if terms is None:
            return {}
        return {
            "schedule_deadline": terms.schedule_deadline,
            "execution_limit": terms.execution_limit,
        }

    def _set_schedule_deadline(self, txn: Txn, row: Record) -> None:
        if row["schedule_deadline"] is None:
            return
        rule = (
            "mobile: schedule by 22:00 of the day the request is admissible (art. 23, infraction 24)"
            if row["service"] == R.Service.MOBILE
            else "fixed: schedule by 22:00 of the day after installation (art. 23, infraction 25)"
        )
        txn.set_deadline(FLOW, SCHEDULE, row["id"], row["schedule_deadline"], rule)

    async def schedule_port(self, txn: Txn, caller: Caller, request: SchedulePort) -> Record:
        """PP: the recipient sets the instant of the port inside a change window (PEP to all), or
        the clearinghouse refuses a schedule beyond the execution limit (FLEP)."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        scheduled_at = check_instant(v, "scheduled_at", request.scheduled_at)
        v.raise_if_any()
        assert scheduled_at is not None
        # What the instant alone decides is checked before the case is locked: a late schedule
        # is refused without a round trip to the database.
        self._check_schedule_instant(scheduled_at, txn.now)
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        await self._check_schedulable(txn, row)
        if scheduled_at > row["execution_limit"]:
            self._emit(
                txn,
                "schedule_refused",
                "FLEP",
                row,
                to=(row["recipient"],),
                extra={"requested_at": scheduled_at.isoformat()},
            )
            raise OutOfRange(
                "scheduled_at",
                f"beyond the execution limit {row['execution_limit'].isoformat()} (FLEP)",
                keep_effects=True,
            )
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {"state": State.SCHEDULED, "scheduled_at": scheduled_at},
        )
        txn.cancel_deadlines(FLOW, row["id"], SCHEDULE)
        txn.set_deadline(
            FLOW, EXECUTE, row["id"], scheduled_at, "port executes at the scheduled instant"
        )
        self._emit(txn, "scheduled", "PP", row, sender=caller.operator)
        self._emit(txn, "scheduled_for_execution", "PEP", row, broadcast=True)
        return row

    async def _check_schedulable(self, txn: Txn, row: Record) -> None:
        """The request awaits its schedule and its scheduling limit has not passed (when it has,
        the request is cancelled, and the cancellation kept)."""
        if row["state"] != State.ADMISSIBLE:
            raise FailedPrecondition(
                f"{row['id']} cannot be scheduled ({row['state']})", subject=row["id"]
            )
        if row["schedule_deadline"] is None:
            raise FailedPrecondition(
                f"report the installation of {row['id']} before scheduling it",
                violation_type="INSTALLATION_PENDING",
                subject=row["id"],
            )
        if txn.now >= row["schedule_deadline"]:
            await self._cancel_not_scheduled(txn, row)
            raise FailedPrecondition(
                f"the scheduling limit of {row['id']} passed at {row['schedule_deadline'].isoformat()};"
                " the request is cancelled (CNPF)",
                violation_type="DEADLINE_PASSED",
                subject=row["id"],
                keep_effects=True,
            )

    def _check_schedule_instant(self, scheduled_at: datetime, now: datetime) -> None:
        if scheduled_at <= now:
            raise InvalidArgument(FieldViolation("scheduled_at", "must be in the future"))
        if self.timeline.window_containing(scheduled_at) is None:
            s = self.settings
            raise InvalidArgument(
                FieldViolation(
                    "scheduled_at",
                    f"must fall inside a change window ({s.change_window_start:%H:%M}-{s.change_window_end:%H:%M} "
                    f"{self.timeline.calendar.timezone})",
                )
            )

    async def _cancel_not_scheduled(self, txn: Txn, row: Record) -> Record:
        rule = R.MOBILE_SCHEDULE if row["service"] == R.Service.MOBILE else R.FIXED_SCHEDULE
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": State.CANCELLED,
                "closed_at": txn.now,
                "rejection_reason": "not scheduled by the scheduling limit (CNPF)",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        txn.cancel_deadlines(FLOW, row["id"], SCHEDULE)
        await self._breach(
            txn,
            rule,
            row["recipient"],
            row["id"],
            row["schedule_deadline"],
            {
                "admissible_at": row["admissible_at"].isoformat(),
                "deadline": row["schedule_deadline"].isoformat(),
            },
        )
        self._emit(txn, "cancelled", "CNPF", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "cancelled")
        return row

    async def _not_scheduled(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.ADMISSIBLE:
            await self._cancel_not_scheduled(txn, row)
