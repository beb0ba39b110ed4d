"""Attention: the problem waits in the operator's tray until it answers within its
subcategory's deadline; a missed deadline is a breach, and the subscriber may then claim."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from asyncpg import Record

from npc.core.deadlines import Deadline
from npc.core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    OutOfRange,
    PermissionDenied,
)
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.validation import Violations, check_case_id, printable
from npc.flows.sgu import emails, store
from npc.flows.sgu.base import SguBase
from npc.flows.sgu.events import emit_problem
from npc.flows.sgu.model import AnswerProblem
from npc.flows.sgu.rules import (
    ANSWER,
    ANSWER_LIMIT,
    FLOW,
    PROBLEM_PREFIX,
    TRAY_EVENTS,
    TRAY_STATES,
    DeadlineKind,
    State,
)
from npc.flows.sgu.store import CASES
from npc.notifications.outbox import queue_email
from npc.store.database import Txn


@dataclass(frozen=True)
class TrayEntry:
    """A problem arriving in the operator's tray, at its position on the event log."""

    position: int
    kind: str  # "transferred" or "claim_requested"
    problem: Record


class Attention(SguBase):
    """The operator's tray and answers."""

    async def answer_problem(self, txn: Txn, caller: Caller, command: AnswerProblem) -> Record:
        """The operator's answer or solution."""
        v = Violations()
        check_case_id(v, "problem_id", command.problem_id, PROBLEM_PREFIX)
        if not printable(command.answer, limit=ANSWER_LIMIT):
            v.add("answer", f"required: up to {ANSWER_LIMIT} printable characters")
        v.raise_if_any()
        row = await CASES.lock_for(txn, command.problem_id, caller, "operator")
        if row["state"] not in (State.IN_TRAY, State.OVERDUE):
            raise FailedPrecondition(
                f"{row['id']} is not awaiting an answer ({row['state']})", subject=row["id"]
            )
        late = txn.now >= row["answer_deadline"]
        if late:
            await self._breach(txn, ANSWER, row, row["answer_deadline"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.ANSWERED,
                "answered_at": txn.now,
                "answer": command.answer,
                "solved": command.solved,
                "answered_late": late,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        emit_problem(txn, "sgu.problem.answered", row, caller.operator)
        if row["email"]:
            email = emails.answered(row)
            await queue_email(
                txn,
                to=row["email"],
                subject=email.subject,
                body=email.body,
                flow=FLOW,
                case_id=row["id"],
            )
        return row

    async def _not_answered(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is None or row["state"] != State.IN_TRAY:
            return
        row = await CASES.update(txn, row["id"], {"state": State.OVERDUE})
        await self._breach(txn, ANSWER, row, row["answer_deadline"])
        emit_problem(txn, "sgu.problem.overdue", row, CLEARINGHOUSE)
        if row["email"] and row["claimable"]:
            email = emails.not_answered(row)
            await queue_email(
                txn,
                to=row["email"],
                subject=email.subject,
                body=email.body,
                flow=FLOW,
                case_id=row["id"],
            )

    async def list_tray(self, caller: Caller) -> list[Record]:
        """The operator's problems awaiting it, oldest first."""
        if caller.is_regulator:
            raise PermissionDenied("the tray is an operator's")
        async with self.core.db.pool.acquire() as conn:
            return await store.tray(conn, caller.operator, TRAY_STATES)

    async def watch_tray(self, caller: Caller, from_position: int) -> AsyncIterator[TrayEntry]:
        """The operator's tray on the shared event log, from `from_position`, then live."""
        if caller.is_regulator:
            raise PermissionDenied("the tray is an operator's")
        hub = self.core.hub
        if from_position < 0:
            raise InvalidArgument(
                FieldViolation("from_position", "must be 0 or a position already received")
            )
        if from_position > hub.head:
            await hub.refresh()
            if from_position > hub.head:
                raise OutOfRange("from_position", f"beyond the head of the log ({hub.head})")
        async for event in hub.subscribe(caller.operator, from_position, [FLOW]):
            kind = TRAY_EVENTS.get(event.type)
            if kind is None or event.case_id is None:
                continue
            async with self.core.db.pool.acquire() as conn:
                row = await store.problem(conn, event.case_id)
            if row is not None:
                yield TrayEntry(event.position, kind, row)
