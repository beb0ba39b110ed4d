"""Closing and escalation: the subscriber rates the answer (satisfied: closed); a claimable
problem answered late, unanswered or unsatisfying may become a formal claim, whose code the
operator assigns at once."""

from __future__ import annotations

import asyncpg
from asyncpg import Record

from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.validation import Violations, check_case_id, check_document
from npc.flows.sgu import emails, store
from npc.flows.sgu.base import SguBase
from npc.flows.sgu.events import emit_problem
from npc.flows.sgu.model import AssignClaimCode, EscalateToClaim, RateAnswer
from npc.flows.sgu.rules import (
    CLAIM_CODE,
    CLAIM_CODE_FORMAT,
    FLOW,
    MAX_SCORE,
    MIN_SCORE,
    PROBLEM_PREFIX,
    DeadlineKind,
    State,
    unanswered_in_time,
)
from npc.flows.sgu.store import CASES
from npc.notifications.outbox import queue_email
from npc.store.database import Txn


class Escalation(SguBase):
    """Ratings, claims and claim codes."""

    async def rate_answer(self, txn: Txn, caller: Caller, command: RateAnswer) -> Record:
        """The subscriber rates the operator's answer."""
        self._check_caller_is_regulator(caller, "records ratings for subscribers")
        v = Violations()
        check_case_id(v, "problem_id", command.problem_id, PROBLEM_PREFIX)
        check_document(v, "document", command.document)
        if not MIN_SCORE <= command.score <= MAX_SCORE:
            v.add("score", f"required: {MIN_SCORE} (worst) to {MAX_SCORE} (best)")
        v.raise_if_any()
        row = await self._lock_for_subscriber(txn, command.problem_id, command.document)
        if row["state"] != State.ANSWERED:
            raise FailedPrecondition(
                f"{row['id']} has no answer to rate ({row['state']})", subject=row["id"]
            )
        escalable = not command.satisfied and row["claimable"]
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.ESCALATION_OPEN if escalable else State.CLOSED,
                "rated_at": txn.now,
                "satisfied": command.satisfied,
                "score": command.score,
            },
        )
        emit_problem(txn, "sgu.problem.rated", row, CLEARINGHOUSE)
        return row

    async def escalate_to_claim(self, txn: Txn, caller: Caller, command: EscalateToClaim) -> Record:
        """Turn a claimable problem, unsatisfied or unanswered in time, into a formal claim."""
        self._check_caller_is_regulator(caller, "escalates problems for subscribers")
        v = Violations()
        check_case_id(v, "problem_id", command.problem_id, PROBLEM_PREFIX)
        check_document(v, "document", command.document)
        v.raise_if_any()
        row = await self._lock_for_subscriber(txn, command.problem_id, command.document)
        if not row["claimable"]:
            raise FailedPrecondition(
                f"subcategory {row['subcategory']} cannot become a claim",
                violation_type="NOT_CLAIMABLE",
                subject=row["id"],
            )
        if row["state"] != State.ESCALATION_OPEN and not unanswered_in_time(
            row["state"], row["answered_late"]
        ):
            raise FailedPrecondition(
                f"{row['id']} may become a claim only when the answer was late, missing or "
                f"unsatisfying ({row['state']})",
                subject=row["id"],
            )
        base = txn.now + self.claim_code_grace
        due = await self._due(txn, row["operator"], txn.now, base)
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.CLAIM_REQUESTED,
                "escalated_at": txn.now,
                "claim_code_base_deadline": base,
                "claim_code_deadline": due,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        txn.set_deadline(
            FLOW,
            DeadlineKind.CLAIM_CODE,
            row["id"],
            due,
            "assign the claim code at once (SGU, reclamo)",
        )
        emit_problem(txn, "sgu.claim.requested", row, CLEARINGHOUSE)
        return row

    async def assign_claim_code(self, txn: Txn, caller: Caller, command: AssignClaimCode) -> Record:
        """The operator's claim code; the subscriber is e-mailed the code, form and deadline."""
        v = Violations()
        check_case_id(v, "problem_id", command.problem_id, PROBLEM_PREFIX)
        if not CLAIM_CODE_FORMAT.fullmatch(command.claim_code):
            v.add("claim_code", "required: up to 40 letters, digits or . / _ -")
        v.raise_if_any()
        row = await CASES.lock_for(txn, command.problem_id, caller, "operator")
        if row["state"] != State.CLAIM_REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting a claim code ({row['state']})", subject=row["id"]
            )
        if txn.now >= row["claim_code_deadline"]:
            await self._breach(txn, CLAIM_CODE, row, row["claim_code_deadline"])
        claim_deadline = self.calendar.end_of_business_days(txn.now, row["claim_business_days"])
        try:
            # A savepoint: a code already in use must not abort the command's transaction.
            async with txn.conn.transaction():
                row = await CASES.update(
                    txn,
                    row["id"],
                    {
                        "state": State.CLAIMED,
                        "claim_code": command.claim_code,
                        "claim_code_assigned_at": txn.now,
                        "claim_deadline": claim_deadline,
                    },
                )
        except asyncpg.UniqueViolationError:
            holder = await store.problem_with_claim_code(
                txn.conn, caller.operator, command.claim_code
            )
            raise AlreadyExists(
                "problem",
                holder,
                f"claim code {command.claim_code} is already in use by problem {holder}",
                collided=command.claim_code,
            ) from None
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.CLAIM_CODE)
        emit_problem(txn, "sgu.claim.code_assigned", row, caller.operator)
        if row["email"]:
            email = emails.claim_registered(row, self.calendar)
            await queue_email(
                txn,
                to=row["email"],
                subject=email.subject,
                body=email.body,
                flow=FLOW,
                case_id=row["id"],
            )
        return row

    async def _no_claim_code(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.CLAIM_REQUESTED:
            await self._breach(txn, CLAIM_CODE, row, row["claim_code_deadline"])
