"""The prior consultation (CP): the recipient asks the donor whether a port would be admissible;
the donor answers within its term, and its silence counts as no objection."""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from npc.core.cases import refusal
from npc.core.deadlines import Deadline
from npc.core.errors import FailedPrecondition, NotFound
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.validation import (
    DOCUMENT_TYPES,
    Violations,
    check_case_id,
    check_document,
    check_operator,
)
from npc.flows.portability import rules as R
from npc.flows.portability import store
from npc.flows.portability.base import FLOW, PortabilityBase
from npc.flows.portability.events import blocks_json, consultation_payload, objection_json
from npc.flows.portability.model import (
    AnswerPriorConsultation,
    NewConsultation,
    SubmitPriorConsultation,
)
from npc.flows.portability.validation import check_answer, check_service, expand_numbers
from npc.store.database import Txn

CONSULTATION_ANSWER = R.DeadlineKind.CONSULTATION_ANSWER
State = R.ConsultationState


class PriorConsultations(PortabilityBase):
    """CP, the donor's answer (CPAC / CPOCC) and its silence."""

    async def submit_prior_consultation(
        self, txn: Txn, caller: Caller, request: SubmitPriorConsultation
    ) -> Record:
        """CP: register a prior consultation, send it to the donor (ECPC) with its term to
        answer (`rules.DONOR_ANSWER_TERM`)."""
        self._require_operator(caller)
        v = Violations()
        check_operator(v, "donor", request.donor)
        service = check_service(v, "service", request.service)
        check_document(v, "document", request.document)
        entries = expand_numbers(
            v, "numbers", request.numbers, service, self.settings.max_numbers_per_request
        )
        v.raise_if_any()
        assert service is not None
        await self._check_parties_and_numbers(
            txn, v, caller, request.donor, service, [e.number for e in entries], "numbers"
        )
        case_id = await store.next_id(txn.conn, "CP")
        row = await store.insert_consultation(
            txn.conn,
            NewConsultation(
                id=case_id,
                recipient=caller.operator,
                donor=request.donor,
                service=service,
                document={
                    "type": DOCUMENT_TYPES[request.document.type],
                    "number": request.document.number,
                },
                numbers=blocks_json(request.numbers),
                number_count=len(entries),
                state=State.AWAITING_DONOR,
                submitted_at=txn.now,
                donor_deadline=self.timeline.donor_deadline(txn.now),
            ),
        )
        txn.set_deadline(
            FLOW,
            CONSULTATION_ANSWER,
            case_id,
            row["donor_deadline"],
            f"donor answers the prior consultation within {R.DONOR_ANSWER_MINUTES} minutes"
            " (art. 20, infraction 18)",
        )
        self._emit_consultation_submitted(txn, caller, row)
        return row

    @staticmethod
    def _emit_consultation_submitted(txn: Txn, caller: Caller, row: Record) -> None:
        """CP from the recipient, ANCP back to it, ECPC to the donor."""
        payload = consultation_payload(row)
        for type_, code, sender, to in (
            ("submitted", "CP", caller.operator, ()),
            ("registered", "ANCP", CLEARINGHOUSE, (caller.operator,)),
            ("sent_to_donor", "ECPC", CLEARINGHOUSE, (row["donor"],)),
        ):
            txn.emit(
                FLOW,
                f"portability.consultation.{type_}",
                code=code,
                case_id=row["id"],
                sender=sender,
                audience=to,
                payload=payload,
            )

    async def answer_prior_consultation(
        self, txn: Txn, caller: Caller, request: AnswerPriorConsultation
    ) -> Record:
        """CPAC / CPOCC: the donor's answer; the clearinghouse declares CPPR or CPRABD."""
        v = Violations()
        check_case_id(v, "consultation_id", request.consultation_id, "CP")
        check_answer(v, request.accept, request.objection)
        v.raise_if_any()
        row = await store.CONSULTATIONS.lock(txn, request.consultation_id)
        if row is None:
            raise NotFound("prior_consultation", request.consultation_id)
        if row["donor"] != caller.operator:
            raise refusal(
                caller,
                (row["recipient"], row["donor"]),
                "prior_consultation",
                request.consultation_id,
                f"only the donor of {row['id']} answers it",
            )
        if row["state"] != State.AWAITING_DONOR:
            raise FailedPrecondition(
                f"{row['id']} was already answered ({row['state']})", subject=row["id"]
            )
        if txn.now >= row["donor_deadline"]:
            await self._consultation_silence(txn, row)
            raise self._answer_too_late(row)
        self._observe_answer(txn, caller.operator, "CP", row["submitted_at"])
        if request.accept:
            changes = {"state": State.ADMISSIBLE, "answered_at": txn.now}
        else:
            assert request.objection is not None
            changes = {
                "state": State.REJECTED,
                "answered_at": txn.now,
                "objection": objection_json(request.objection),
            }
        row = await store.CONSULTATIONS.update(txn, row["id"], changes)
        txn.cancel_deadlines(FLOW, row["id"], CONSULTATION_ANSWER)
        self._emit_consultation_answer(txn, caller, row, request.accept)
        return row

    @staticmethod
    def _emit_consultation_answer(txn: Txn, caller: Caller, row: Record, accept: bool) -> None:
        payload = consultation_payload(row)
        txn.emit(
            FLOW,
            "portability.consultation.answered",
            code="CPAC" if accept else "CPOCC",
            case_id=row["id"],
            sender=caller.operator,
            payload=payload,
        )
        decided: dict[str, Any] = {
            "case_id": row["id"],
            "sender": CLEARINGHOUSE,
            "audience": (row["recipient"],),
            "payload": payload,
        }
        if accept:
            txn.emit(FLOW, "portability.consultation.admissible", code="CPPR", **decided)
        else:
            txn.emit(FLOW, "portability.consultation.rejected", code="CPRABD", **decided)

    async def _consultation_silence(self, txn: Txn, row: Record) -> Record:
        row = await store.CONSULTATIONS.update(
            txn,
            row["id"],
            {"state": State.ADMISSIBLE, "donor_silent": True},
        )
        txn.cancel_deadlines(FLOW, row["id"], CONSULTATION_ANSWER)
        await self._breach(
            txn,
            R.CONSULTATION_ANSWER,
            row["donor"],
            row["id"],
            row["donor_deadline"],
            {
                "sent_at": row["submitted_at"].isoformat(),
                "deadline": row["donor_deadline"].isoformat(),
                "answered_at": None,
            },
        )
        txn.emit(
            FLOW,
            "portability.consultation.admissible",
            code="CPPR",
            case_id=row["id"],
            sender=CLEARINGHOUSE,
            audience=(row["recipient"],),
            payload={**consultation_payload(row), "donor_silent": True},
        )
        return row

    async def _consultation_donor_silent(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.CONSULTATIONS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.AWAITING_DONOR:
            await self._consultation_silence(txn, row)
