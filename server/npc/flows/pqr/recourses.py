"""The user's recourses: reconsideration within 10 business days of the answer (art. 2.1.5.9.1),
with appeal in subsidy to the SIC for the appealable subjects (art. 2.1.5.9): the provider sends
the file within 5 business days (art. 2.1.5.9.3 c) and the SIC decides under the same CUN."""

from __future__ import annotations

from asyncpg import Record

from npc.core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from npc.core.identity import Caller
from npc.core.validation import Violations
from npc.flows.pqr import events, texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.answering import OUTCOME_REQUIRED
from npc.flows.pqr.base import PqrBase
from npc.flows.pqr.model import DecideAppeal, FileReconsideration, PqrCase, RecordTransferToSic
from npc.flows.pqr.rules import (
    ANSWER_DAYS,
    APPEALABLE,
    FLOW,
    RECONSIDERATION_DAYS,
    SIC_DAYS,
    TRANSFER,
    DeadlineKind,
    State,
)
from npc.flows.pqr.store import CASES
from npc.store.database import Txn


def _open_to_reconsideration(row: Record) -> bool:
    """Answered, or closed only because its window ran out while a reconsideration presented in
    time had not been filed here yet (the presentation decides, checked by the caller)."""
    if row["state"] == State.ANSWERED:
        return True
    return (
        row["state"] == State.CLOSED
        and row["reconsideration_until"] is not None
        and row["rec_filed_at"] is None
        and row["closed_at"] >= row["reconsideration_until"]
    )


class Recourses(PqrBase):
    """Reconsideration, the transfer of the file to the SIC and its decision on the appeal."""

    async def file_reconsideration(
        self, txn: Txn, caller: Caller, request: FileReconsideration
    ) -> PqrCase:
        """The user disagrees with the answer: reconsideration, maybe with appeal in subsidy."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "facts", request.facts, "the user's disagreement")
        presented = check.check_presented(v, "presented_at", request.presented_at, txn.now)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller, "provider")
        if not _open_to_reconsideration(row):
            raise FailedPrecondition(
                f"{row['id']} has no answer open to reconsideration ({row['state']})",
                subject=row["id"],
            )
        if presented < row["notified_at"]:
            raise InvalidArgument(
                FieldViolation("presented_at", "before the decision was notified to the user")
            )
        # The user's presentation counts, not its registration here (art. 2.1.5.9.1).
        if presented >= row["reconsideration_until"]:
            raise FailedPrecondition(
                f"the {RECONSIDERATION_DAYS} business days to file reconsideration ended on "
                f"{row['reconsideration_until'].isoformat()}",
                violation_type="TOO_LATE",
                subject=row["id"],
            )
        if request.appeal_in_subsidy and row["subject"] not in APPEALABLE:
            raise FailedPrecondition(
                "appeal to the SIC applies to billing, suspension, termination, cut and refusal"
                " to contract (art. 2.1.5.9)",
                violation_type="NOT_APPEALABLE",
                subject=row["id"],
            )
        due = self.calendar.end_of_business_days(presented, ANSWER_DAYS)
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.RECONSIDERATION,
                "closed_at": None,
                "rec_filed_at": presented,
                "appeal_in_subsidy": request.appeal_in_subsidy,
                "rec_facts": request.facts,
                "rec_answer_due": due,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.RECONSIDERATION_WINDOW)
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            row["id"],
            due,
            f"answer the reconsideration within {ANSWER_DAYS} business days from the day after"
            " filing; else positive silence (art. 2.1.5.2)",
        )
        events.emit_pqr(
            txn,
            "reconsideration_filed",
            row,
            caller.operator,
            appeal_in_subsidy=request.appeal_in_subsidy,
            answer_due=due.isoformat(),
        )
        return self.case(row)

    async def record_transfer(
        self, txn: Txn, caller: Caller, request: RecordTransferToSic
    ) -> PqrCase:
        """The provider sent the complete file to the SIC for the appeal."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller, "provider")
        if row["state"] != State.TRANSFER_DUE:
            raise FailedPrecondition(
                f"{row['id']} has no appeal awaiting transfer ({row['state']})", subject=row["id"]
            )
        # The end of the 5th business day is late, as its deadline judges it.
        if txn.now >= row["transfer_due"]:
            await self._breach(txn, TRANSFER, row, row["transfer_due"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.APPEAL,
                "transferred_at": txn.now,
                "appeal_due": self.calendar.end_of_business_days(txn.now, SIC_DAYS),
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SEND_TO_SIC)
        events.emit_pqr(txn, "sent_to_sic", row, caller.operator)
        await self._notify_user(
            txn,
            row,
            f"Envío de su expediente a la SIC - CUN {row['id']}",
            texts.transfer_notice(self.calendar, row),
        )
        return self.case(row)

    async def decide_appeal(self, txn: Txn, caller: Caller, request: DecideAppeal) -> PqrCase:
        """The SIC decided the appeal: the PQR closes under the same CUN."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        if request.outcome is None:
            v.add("outcome", OUTCOME_REQUIRED)
        check.check_text(v, "summary", request.summary, "a summary of the decision")
        v.raise_if_any()
        assert request.outcome is not None
        if not caller.is_regulator:
            raise PermissionDenied("the SIC decides appeals")
        row = await CASES.lock(txn, request.cun)
        if row is None:
            raise NotFound("pqr", request.cun)
        if row["state"] != State.APPEAL:
            raise FailedPrecondition(
                f"{row['id']} is not at the SIC ({row['state']})", subject=row["id"]
            )
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.CLOSED,
                "appeal_decided_at": txn.now,
                "appeal_outcome": request.outcome,
                "appeal_summary": request.summary,
                "closed_at": txn.now,
            },
        )
        events.emit_pqr(txn, "appeal_decided", row, caller.operator, outcome=request.outcome.value)
        return self.case(row)
