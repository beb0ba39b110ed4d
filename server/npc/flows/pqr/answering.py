"""The provider's answer: the evidence extension, the decision, and positive administrative
silence when the term runs out unanswered, with its effects due within 72 hours (art. 2.1.5.2).

The same term and the same silence apply to the petition or complaint and to its
reconsideration; a `Stage` names the columns of each.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from asyncpg import Record

from npc.core.errors import FailedPrecondition
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import check_instant
from npc.core.validation import Violations
from npc.flows.pqr import events, texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.base import PqrBase
from npc.flows.pqr.model import (
    AnswerPqr,
    ConfirmSilenceEffects,
    ExtendPqrForEvidence,
    PqrCase,
)
from npc.flows.pqr.rules import (
    EXTENSION_DAYS,
    FLOW,
    INITIAL,
    RECONSIDERATION_DAYS,
    SILENCE_EFFECTS,
    SILENCE_EFFECTS_WITHIN,
    STAGE_OF_STATE,
    TRANSFER_DAYS,
    DeadlineKind,
    Outcome,
    Stage,
    State,
)
from npc.flows.pqr.store import CASES
from npc.store.database import Txn

OUTCOME_REQUIRED = "required: FAVORABLE, PARTIALLY_FAVORABLE or UNFAVORABLE"
_EFFECTS_HOURS = SILENCE_EFFECTS_WITHIN // timedelta(hours=1)


class Answering(PqrBase):
    """Evidence extensions, answers and positive silence."""

    def _stage(self, row: Record) -> Stage:
        stage = STAGE_OF_STATE.get(row["state"])
        if stage is None:
            raise FailedPrecondition(
                f"{row['id']} awaits no answer from the provider ({row['state']})",
                subject=row["id"],
            )
        return stage

    async def _late_answer(self, txn: Txn, row: Record, stage: Stage) -> None:
        """The term ran out before the deadline fired: positive silence applies now, and stays."""
        if txn.now >= row[stage.due]:
            await self._apply_silence(txn, row, stage, row[stage.due])
            raise FailedPrecondition(
                f"the term of {row['id']} ended on {row[stage.due].isoformat()}: positive"
                " administrative silence applies",
                violation_type="SILENCE_APPLIED",
                subject=row["id"],
                keep_effects=True,
            )

    async def extend_for_evidence(
        self, txn: Txn, caller: Caller, request: ExtendPqrForEvidence
    ) -> PqrCase:
        """Evidence is needed: 15 more business days, with the motivation told to the user."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "reason", request.reason, "the motivation told to the user", 2000)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller, "provider")
        stage = self._stage(row)
        if row["state"] == stage.evidence:
            raise FailedPrecondition(
                f"{row['id']} was already extended for evidence", subject=row["id"]
            )
        await self._late_answer(txn, row, stage)
        due = self.calendar.end_of_business_days(
            row[stage.due] - timedelta(microseconds=1), EXTENSION_DAYS
        )
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": stage.evidence,
                stage.extended: txn.now,
                stage.reason: request.reason,
                stage.due: due,
            },
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            row["id"],
            due,
            f"answer within {EXTENSION_DAYS} more business days for evidence; else positive"
            " silence (art. 2.1.5.2)",
        )
        events.emit_pqr(txn, "extended", row, caller.operator, answer_due=due.isoformat())
        await self._notify_user(
            txn,
            row,
            f"Ampliación del término de su PQR - CUN {row['id']}",
            f"Para la práctica de pruebas, el término para responder su PQR radicada bajo el CUN "
            f"{row['id']} se amplía hasta el día {texts.last_day(self.calendar, due)}. Motivo: "
            f"{request.reason}",
        )
        return self.case(row)

    async def answer(self, txn: Txn, caller: Caller, request: AnswerPqr) -> PqrCase:
        """The provider's decision on the petition, complaint or reconsideration."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        if request.outcome is None:
            v.add("outcome", OUTCOME_REQUIRED)
        check.check_text(v, "summary", request.summary, "a summary of the decision")
        notified = check_instant(v, "notified_at", request.notified_at, required=False)
        if notified is not None and notified > txn.now:
            v.add("notified_at", "not in the future")
        v.raise_if_any()
        assert request.outcome is not None
        row = await CASES.lock_for(txn, request.cun, caller, "provider")
        stage = self._stage(row)
        notified = notified or txn.now
        if notified < row[stage.filed]:
            raise FailedPrecondition(
                "the notification cannot precede the filing",
                violation_type="NOTIFIED_BEFORE_FILING",
                subject=row["id"],
            )
        await self._late_answer(txn, row, stage)
        changes: dict[str, Any] = {
            stage.answered: txn.now,
            stage.outcome: request.outcome,
            stage.summary: request.summary,
            stage.notified: notified,
        }
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        changes |= self._after_answer(txn, row, stage, request.outcome, notified)
        row = await CASES.update(txn, row["id"], changes)
        events.emit_pqr(
            txn, "answered", row, caller.operator, stage=stage.name, outcome=request.outcome.value
        )
        return self.case(row)

    def _after_answer(
        self, txn: Txn, row: Record, stage: Stage, outcome: Outcome, notified: datetime
    ) -> dict[str, Any]:
        """Where the answer leaves the PQR: open to reconsideration after the first answer; due
        at the SIC after an unfavorable reconsideration with appeal in subsidy; else closed."""
        if stage is INITIAL:
            until = self.calendar.end_of_business_days(notified, RECONSIDERATION_DAYS)
            txn.set_deadline(
                FLOW,
                DeadlineKind.RECONSIDERATION_WINDOW,
                row["id"],
                until,
                f"reconsideration within {RECONSIDERATION_DAYS} business days of the notification"
                " (art. 2.1.5.9.1)",
            )
            return {"state": State.ANSWERED, "reconsideration_until": until}
        if row["appeal_in_subsidy"] and outcome != Outcome.FAVORABLE:
            due = self.calendar.end_of_business_days(notified, TRANSFER_DAYS)
            txn.set_deadline(
                FLOW,
                DeadlineKind.SEND_TO_SIC,
                row["id"],
                due,
                f"send the file to the SIC within {TRANSFER_DAYS} business days of the"
                " notification of the reconsideration decision (art. 2.1.5.9.3 c)",
            )
            return {"state": State.TRANSFER_DUE, "transfer_due": due}
        return {"state": State.CLOSED, "closed_at": txn.now}

    async def _apply_silence(self, txn: Txn, row: Record, stage: Stage, due: datetime) -> Record:
        """The term ended unanswered: the PQR counts as decided for the user (art. 2.1.5.2)."""
        effects_due = due + SILENCE_EFFECTS_WITHIN
        await self._breach(txn, stage.rule, row, due, stage=stage.name)
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.SILENCE_APPLIED,
                "silence_at": due,
                "silence_stage": stage.name,
                "silence_effects_due": effects_due,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        txn.set_deadline(
            FLOW,
            DeadlineKind.SILENCE_EFFECTS,
            row["id"],
            effects_due,
            f"carry out the effects of positive silence within {_EFFECTS_HOURS} hours"
            " (art. 2.1.5.2)",
        )
        events.emit_pqr(
            txn,
            "silence_applied",
            row,
            CLEARINGHOUSE,
            stage=stage.name,
            effects_due=effects_due.isoformat(),
        )
        await self._notify_user(
            txn,
            row,
            f"Silencio administrativo positivo - CUN {row['id']}",
            f"Vencido el término sin respuesta, su PQR radicada bajo el CUN {row['id']} se "
            "entiende resuelta a su favor por silencio administrativo positivo. El proveedor "
            "debe materializar sus efectos antes del "
            f"{texts.moment(self.calendar, effects_due)}; usted puede exigirlos de inmediato.",
        )
        return row

    async def confirm_silence_effects(
        self, txn: Txn, caller: Caller, request: ConfirmSilenceEffects
    ) -> PqrCase:
        """The provider carried out the effects of the positive silence."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "description", request.description, "what was done", 2000)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller, "provider")
        if row["state"] != State.SILENCE_APPLIED:
            raise FailedPrecondition(
                f"no positive silence awaits its effects on {row['id']} ({row['state']})",
                subject=row["id"],
            )
        # The 72nd hour is late, as its deadline judges it (art. 2.1.5.2: "dentro de ... 72 horas").
        if txn.now >= row["silence_effects_due"]:
            await self._breach(txn, SILENCE_EFFECTS, row, row["silence_effects_due"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.CLOSED,
                "silence_effects_at": txn.now,
                "silence_effects_note": request.description,
                "closed_at": txn.now,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"])
        events.emit_pqr(txn, "silence_effects_done", row, caller.operator)
        return self.case(row)
