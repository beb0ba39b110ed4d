"""Execution in the change window and its confirmations: the numbers move to the recipient at the
scheduled instant; the donor confirms it disabled them, the recipient that it enabled them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncpg import Record

from npc.core import numbers as registry
from npc.core.compliance import Rule
from npc.core.deadlines import Deadline
from npc.core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from npc.core.identity import Caller
from npc.core.validation import Violations
from npc.flows.portability import metrics, store
from npc.flows.portability import rules as R
from npc.flows.portability.base import FLOW, PortabilityBase
from npc.flows.portability.model import ConfirmPortExecution
from npc.flows.portability.validation import check_confirmation
from npc.store import operators
from npc.store.database import Txn

EXECUTE = R.DeadlineKind.EXECUTE
DONOR_DISABLE = R.DeadlineKind.DONOR_DISABLE
RECIPIENT_ENABLE = R.DeadlineKind.RECIPIENT_ENABLE
State = R.State


@dataclass(frozen=True)
class Step:
    """One party's confirmation of an executed port: who gives it, where it is written, the
    deadline it meets and the rule it breaks when late, and the event that reports it."""

    role: str
    column: str
    other_column: str
    kind: R.DeadlineKind
    rule: Rule
    event: str


STEPS = {
    R.ExecutionStep.DONOR_DISABLED: Step(
        "donor",
        "donor_disabled_at",
        "recipient_enabled_at",
        DONOR_DISABLE,
        R.DONOR_DISABLE,
        "donor_disabled",
    ),
    R.ExecutionStep.RECIPIENT_ENABLED: Step(
        "recipient",
        "recipient_enabled_at",
        "donor_disabled_at",
        RECIPIENT_ENABLE,
        R.RECIPIENT_ENABLE,
        "recipient_enabled",
    ),
}


class Execution(PortabilityBase):
    """The port's execution and the parties' confirmations."""

    async def _execute_now(self, txn: Txn, row: Record) -> Record:
        """Move the numbers to the recipient in the central registry and tell every operator."""
        moved, code = await registry.move_numbers_from(
            txn,
            store.executed_numbers(row["id"]),
            row["recipient"],
            reason="port",
            case_id=row["id"],
        )
        row = await store.REQUESTS.update(
            txn, row["id"], {"state": State.EXECUTED, "executed_at": txn.now}
        )
        txn.cancel_deadlines(FLOW, row["id"], EXECUTE)
        scheduled_at = row["scheduled_at"]
        txn.set_deadline(
            FLOW,
            DONOR_DISABLE,
            row["id"],
            self.timeline.donor_disable_deadline(scheduled_at),
            "donor disables the numbers at the scheduled instant (art. 23, infraction 27)",
        )
        txn.set_deadline(
            FLOW,
            RECIPIENT_ENABLE,
            row["id"],
            self.timeline.recipient_enable_deadline(scheduled_at),
            "recipient enables the numbers within 3 hours, inside the change window"
            " (art. 23, infraction 28)",
        )
        if code is None:  # no number changed hands: nothing above read the code
            code = await operators.routing_code(txn.conn, row["recipient"])
        self._emit(txn, "executed", None, row, broadcast=True, extra={"routing_code": str(code)})
        service = row["service"]
        txn.after_commit(lambda: metrics.PORTS_EXECUTED.labels(service).inc())
        txn.after_commit(lambda: metrics.NUMBERS_PORTED.labels(service).inc(moved))
        return row

    async def _execute(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.SCHEDULED:
            await self._execute_now(txn, row)

    def _step_deadline(self, step: Step, scheduled_at: datetime) -> datetime:
        if step.kind == DONOR_DISABLE:
            return self.timeline.donor_disable_deadline(scheduled_at)
        return self.timeline.recipient_enable_deadline(scheduled_at)

    async def confirm_port_execution(
        self, txn: Txn, caller: Caller, request: ConfirmPortExecution
    ) -> Record:
        """The donor confirms it disabled the numbers; the recipient that it enabled them."""
        done_at = check_confirmation(Violations(), request, txn.now)
        assert request.step is not None
        step = STEPS[request.step]
        row = await self._load_request(txn, request.port_request_id, caller, step.role)
        if row["state"] == State.SCHEDULED and txn.now >= row["scheduled_at"]:
            row = await self._execute_now(txn, row)  # the confirmation overtook the execution timer
        if row["state"] != State.EXECUTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting confirmations ({row['state']})", subject=row["id"]
            )
        if row[step.column] is not None:
            raise FailedPrecondition(
                f"{row['id']}: this step was already confirmed", subject=row["id"]
            )
        if done_at < row["scheduled_at"]:
            raise InvalidArgument(
                FieldViolation("done_at", "must not be before the scheduled instant of the port")
            )
        deadline = self._step_deadline(step, row["scheduled_at"])
        changes: dict[str, Any] = {step.column: done_at}
        if row[step.other_column] is not None:
            changes.update(state=State.COMPLETED, closed_at=txn.now)
        row = await store.REQUESTS.update(txn, row["id"], changes)
        txn.cancel_deadlines(FLOW, row["id"], step.kind)
        if done_at >= deadline or txn.now >= deadline:
            # A confirmation received after the deadline cannot prove the step was done in time,
            # whatever instant it claims. At the deadline's instant the step is late, as when its
            # timer fires then: the outcome must not depend on which comes first.
            await self._breach(
                txn,
                step.rule,
                caller.operator,
                row["id"],
                deadline,
                {
                    "scheduled_at": row["scheduled_at"].isoformat(),
                    "deadline": deadline.isoformat(),
                    "done_at": done_at.isoformat(),
                    "confirmed_at": txn.now.isoformat(),
                },
            )
        counterpart = row["recipient"] if step.role == "donor" else row["donor"]
        # Named here, not read from the step, so the event types stay visible where they are
        # emitted (tests/api/test_event_bodies.py reads them from the source).
        done = "donor_disabled" if step.role == "donor" else "recipient_enabled"
        self._emit(txn, done, None, row, sender=caller.operator, to=(counterpart,))
        if row["state"] == State.COMPLETED:
            self._emit(txn, "completed", None, row, to=(row["recipient"], row["donor"]))
            self._count_outcome(txn, "completed")
        return row

    async def _confirmation_missed(self, txn: Txn, deadline: Deadline) -> None:
        step = next((s for s in STEPS.values() if s.kind == deadline.kind), None)
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is None or step is None:
            return
        if row[step.column] is None:
            await self._breach(
                txn,
                step.rule,
                row[step.role],
                row["id"],
                deadline.due_at,
                {
                    "scheduled_at": row["scheduled_at"].isoformat(),
                    "deadline": deadline.due_at.isoformat(),
                    "confirmed_at": None,
                },
            )
