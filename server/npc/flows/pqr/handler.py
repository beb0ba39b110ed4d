"""Petitions, complaints and appeals (PQR) with CUN, Colombia (CRC regime, section 2.1.5).

    analysis --extend--> evidence --answer--> answered --10 business days--> closed
        \\                  /                    \\--reconsideration--> reconsideration (--extend-->
         \\--15 business days, no answer: positive silence--> silence_applied --effects--> closed
    reconsideration --answer, unfavorable with appeal in subsidy--> transfer_due --sent--> appeal
                    --answer otherwise--> closed                          appeal --SIC decides--> closed

Every PQR keeps the CUN allocated at filing for its whole life, reconsideration and appeal included
(art. 2.1.5.3, parágrafo 1); the CUN is the case id. Deadlines, in Colombian business days
(America/Bogota):
- answer within 15 business days from the day after filing, +15 for evidence with notice
  (art. 2.1.5.2); the same term applies to the reconsideration. When it passes unanswered, positive
  administrative silence applies by itself, and its effects are due within 72 hours;
- reconsideration within 10 business days of the notification of the answer (art. 2.1.5.9.1);
- the file goes to the SIC within 5 business days of notifying the reconsideration decision
  (art. 2.1.5.9.3 c);
- SMS QUEJA to 85432: acknowledgement SMS within 5 minutes, a call by the end of the next calendar
  day, 3 unanswered attempts at least 30 minutes apart close the request (art. 2.1.5.1, par. 1).
"""

from __future__ import annotations

from npc.core.deadlines import Deadline
from npc.core.events import CLEARINGHOUSE
from npc.flows.pqr import events
from npc.flows.pqr.answering import Answering
from npc.flows.pqr.queries import Queries
from npc.flows.pqr.recourses import Recourses
from npc.flows.pqr.rules import (
    FLOW,
    SILENCE_EFFECTS,
    SMS_ACKNOWLEDGE,
    SMS_CALL,
    STAGE_OF_STATE,
    TRANSFER,
    DeadlineKind,
    State,
)
from npc.flows.pqr.sms import SmsQueja
from npc.flows.pqr.store import CASES, SMS
from npc.store.database import Txn


class PqrHandler(SmsQueja, Answering, Recourses, Queries):
    """Commands, deadlines and queries of PQRs and SMS QUEJA requests.

    Each sub-process lives in its own module: filing (with CUN ranges) and SMS QUEJA requests,
    answering (with positive silence), recourses, and queries; this class joins them and reacts
    to the deadlines they set.
    """

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.ANSWER, self._unanswered)
        self.core.deadlines.register(
            FLOW, DeadlineKind.SILENCE_EFFECTS, self._silence_effects_missed
        )
        self.core.deadlines.register(FLOW, DeadlineKind.RECONSIDERATION_WINDOW, self._window_closed)
        self.core.deadlines.register(FLOW, DeadlineKind.SEND_TO_SIC, self._transfer_missed)
        self.core.deadlines.register(FLOW, DeadlineKind.SMS_ACKNOWLEDGE, self._sms_not_acknowledged)
        self.core.deadlines.register(FLOW, DeadlineKind.SMS_CALL, self._sms_not_called)

    async def _unanswered(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] in STAGE_OF_STATE:
            await self._apply_silence(txn, row, STAGE_OF_STATE[row["state"]], deadline.due_at)

    async def _silence_effects_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.SILENCE_APPLIED:
            await self._breach(txn, SILENCE_EFFECTS, row, deadline.due_at)

    async def _window_closed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.ANSWERED:
            row = await CASES.update(txn, row["id"], {"state": State.CLOSED, "closed_at": txn.now})
            events.emit_pqr(txn, "closed", row, CLEARINGHOUSE)

    async def _transfer_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.TRANSFER_DUE:
            await self._breach(txn, TRANSFER, row, deadline.due_at)

    async def _sms_not_acknowledged(self, txn: Txn, deadline: Deadline) -> None:
        row = await SMS.lock(txn, deadline.case_id)
        if row is not None and row["acknowledged_at"] is None:
            await self._sms_breach(txn, SMS_ACKNOWLEDGE, row, deadline.due_at)

    async def _sms_not_called(self, txn: Txn, deadline: Deadline) -> None:
        row = await SMS.lock(txn, deadline.case_id)
        if row is not None and row["first_attempt_at"] is None:
            await self._sms_breach(txn, SMS_CALL, row, deadline.due_at)
