"""The port request (SP) up to its admissibility: registration, the donor's answer or silence, a
debt objection and its proof of payment (APD), and a fixed line's installation."""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from npc.core.dates import check_date
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition
from npc.core.identity import Caller
from npc.core.instants import check_instant, within
from npc.core.validation import (
    DOCUMENT_TYPES,
    RECEIPT,
    Violations,
    check_case_id,
)
from npc.flows.portability import metrics, store
from npc.flows.portability import rules as R
from npc.flows.portability.base import FLOW
from npc.flows.portability.events import blocks_json, objection_json
from npc.flows.portability.installation import INSTALLATION, InstallationLimit
from npc.flows.portability.model import (
    AnswerPortRequest,
    NewPortRequest,
    Objection,
    ReportInstallation,
    SubmitDebtPaymentProof,
    SubmitPortRequest,
)
from npc.flows.portability.objections import ObjectionReview
from npc.flows.portability.scheduling import Scheduling
from npc.flows.portability.validation import (
    PAID_AT_FUTURE,
    PAID_AT_PAST,
    PortRequestForm,
    check_answer,
    check_port_request,
)
from npc.store.database import Txn

REQUEST_ANSWER = R.DeadlineKind.REQUEST_ANSWER
DEBT_PROOF = R.DeadlineKind.DEBT_PROOF
State = R.State


class PortRequests(Scheduling, ObjectionReview, InstallationLimit):
    """SP, the donor's answer (SAC / OCC) or silence, APD and the installation report."""

    async def submit_port_request(
        self, txn: Txn, caller: Caller, request: SubmitPortRequest
    ) -> Record:
        """SP: register the request (ANS), send it to the donor (ESC) with its term to answer
        (`rules.DONOR_ANSWER_TERM`)."""
        self._require_operator(caller)
        v = Violations()
        form = check_port_request(
            v,
            request,
            txn.now,
            self.timeline.calendar.local_date(txn.now),
            self.settings.max_numbers_per_request,
        )
        numbers = [e.number for e in form.entries]
        await self._check_parties_and_numbers(
            txn, v, caller, request.donor, form.service, numbers, "numbers"
        )
        if request.prior_consultation_id:
            await self._check_prior_consultation(txn, caller, request)
        row = await self._register(txn, caller, request, form)
        case_id = row["id"]
        txn.set_deadline(
            FLOW,
            REQUEST_ANSWER,
            case_id,
            row["donor_deadline"],
            f"donor answers the port request within {R.DONOR_ANSWER_MINUTES} minutes"
            " (art. 22, infraction 21)",
        )
        self._set_installation_limit(txn, row)
        received_at = form.received_at
        # Late from the instant the grace ends, as every deadline of the process is.
        if txn.now - received_at >= self.settings.registration_grace:
            await self._breach(
                txn,
                R.REGISTRATION,
                caller.operator,
                case_id,
                received_at + self.settings.registration_grace,
                {"received_at": received_at.isoformat(), "registered_at": txn.now.isoformat()},
            )
        self._emit(txn, "submitted", "SP", row, sender=caller.operator)
        self._emit(txn, "registered", "ANS", row, to=(caller.operator,))
        self._emit(txn, "sent_to_donor", "ESC", row, to=(request.donor,))
        service = form.service
        txn.after_commit(lambda: metrics.REQUESTS_FILED.labels(service).inc())
        return row

    @staticmethod
    async def _check_prior_consultation(
        txn: Txn, caller: Caller, request: SubmitPortRequest
    ) -> None:
        """The prior consultation a request names is the recipient's, admissible, same donor."""
        consultation = await store.consultation_parties(txn.conn, request.prior_consultation_id)
        if consultation is None or consultation["recipient"] != caller.operator:
            raise FailedPrecondition(
                "prior consultation not found for this recipient",
                violation_type="PRIOR_CONSULTATION",
                subject="prior_consultation_id",
            )
        if consultation["state"] != State.ADMISSIBLE or consultation["donor"] != request.donor:
            raise FailedPrecondition(
                "the prior consultation is not admissible for this donor",
                violation_type="PRIOR_CONSULTATION",
                subject="prior_consultation_id",
            )

    async def _register(
        self, txn: Txn, caller: Caller, request: SubmitPortRequest, form: PortRequestForm
    ) -> Record:
        """ANS: the request's row under a new case number, its numbers now held by it."""
        subscriber = request.subscriber
        count = len(form.entries)
        values = NewPortRequest(
            recipient=caller.operator,
            donor=request.donor,
            service=form.service,
            subscriber={
                "name": subscriber.name.strip(),
                "legal_representative": subscriber.legal_representative,
                "document": {
                    "type": DOCUMENT_TYPES[subscriber.document.type],
                    "number": subscriber.document.number,
                },
                "email": subscriber.email,
                "contact_phone": subscriber.contact_phone,
            },
            numbers=blocks_json(request.numbers),
            number_count=count,
            special_client=self.timeline.is_special_client(count),
            state=State.AWAITING_DONOR,
            form_number=request.form_number,
            prior_consultation_id=request.prior_consultation_id or None,
            received_at=form.received_at,
            submitted_at=txn.now,
            donor_deadline=self.timeline.donor_deadline(txn.now),
            installation_date=form.installation_date,
            execution_limit=self.timeline.execution_limit(form.received_at, count),
        )
        row = await store.insert_request(txn.conn, values, form.entries)
        if row is not None:
            return row
        entries = [e.number for e in form.entries]
        holder = await store.live_holder(txn.conn, entries)
        if holder is None:  # a number twice in the request: validation lets none through
            raise AlreadyExists("port_request", "", "a number of the request appears twice")
        number, live = holder["number"], holder["port_request_id"]
        raise AlreadyExists(
            "port_request",
            live,
            f"number {number} already has a live port request: {live}",
            collided=number,
        )

    async def answer_port_request(
        self, txn: Txn, caller: Caller, request: AnswerPortRequest
    ) -> Record:
        """SAC / OCC: the donor accepts (SPR follows) or objects with a coded reason."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        check_answer(v, request.accept, request.objection)
        v.raise_if_any()
        row = await self._load_request(txn, request.port_request_id, caller, "donor")
        if row["state"] != State.AWAITING_DONOR:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting the donor's answer ({row['state']})",
                subject=row["id"],
            )
        if txn.now >= row["donor_deadline"]:
            await self._request_silence(txn, row)
            raise self._answer_too_late(row)
        self._observe_answer(txn, caller.operator, "SP", row["submitted_at"])
        txn.cancel_deadlines(FLOW, row["id"], REQUEST_ANSWER)
        if request.accept:
            # SAC describes the request as the donor found it (its payload has no answer time);
            # the answer time is written with the admissibility, in one update.
            self._emit(txn, "accepted", "SAC", row, sender=caller.operator)
            return await self._declare_admissible(txn, row, answered_at=txn.now)
        assert request.objection is not None
        return await self._objected(txn, caller, row, request.objection)

    async def _objected(
        self, txn: Txn, caller: Caller, row: Record, objection: Objection
    ) -> Record:
        """OCC: a debt awaits its proof of payment; any other reason rejects the request."""
        stored = objection_json(objection)
        await self._review_objection(txn, row, objection)
        if objection.reason == R.ObjectionReason.DEBT:
            row = await store.REQUESTS.update(
                txn,
                row["id"],
                {"state": State.OBJECTED_DEBT, "answered_at": txn.now, "objection": stored},
            )
            txn.set_deadline(
                FLOW,
                DEBT_PROOF,
                row["id"],
                txn.now + self.settings.debt_proof_window,
                "recipient presents proof of payment (APD) of the objected debt",
            )
            self._emit(txn, "objected", "OCC", row, sender=caller.operator, to=(row["recipient"],))
            self._count_outcome(txn, "objected_debt")
            return row
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": State.REJECTED,
                "answered_at": txn.now,
                "objection": stored,
                "closed_at": txn.now,
                "rejection_reason": f"objected by the donor: {stored['reason']}",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        txn.cancel_deadlines(FLOW, row["id"], INSTALLATION)
        self._emit(txn, "objected", "OCC", row, sender=caller.operator)
        self._emit(txn, "rejected", "RABDCP", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "rejected")
        return row

    async def _request_silence(self, txn: Txn, row: Record) -> Record:
        txn.cancel_deadlines(FLOW, row["id"], REQUEST_ANSWER)
        await self._breach(
            txn,
            R.REQUEST_ANSWER,
            row["donor"],
            row["id"],
            row["donor_deadline"],
            {
                "sent_at": row["submitted_at"].isoformat(),
                "deadline": row["donor_deadline"].isoformat(),
                "answered_at": None,
            },
        )
        return await self._declare_admissible(txn, row, donor_silent=True)

    async def _request_donor_silent(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.AWAITING_DONOR:
            await self._request_silence(txn, row)

    async def submit_debt_payment_proof(
        self, txn: Txn, caller: Caller, request: SubmitDebtPaymentProof
    ) -> Record:
        """APD: the recipient proves the objected debt was paid; APDC goes to the donor and the
        objection is lifted."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        if not RECEIPT.fullmatch(request.receipt_number):
            v.add("receipt_number", "required: up to 40 letters, digits or . / _ -")
        paid_at = check_instant(v, "paid_at", request.paid_at)
        within(v, "paid_at", paid_at, txn.now, past=PAID_AT_PAST, future=PAID_AT_FUTURE)
        v.raise_if_any()
        assert paid_at is not None
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        if row["state"] != State.OBJECTED_DEBT:
            raise FailedPrecondition(
                f"{row['id']} has no debt objection to lift ({row['state']})", subject=row["id"]
            )
        proof = {
            "receipt_number": request.receipt_number,
            "paid_at": paid_at.isoformat(),
            "presented_at": txn.now.isoformat(),
        }
        row = await store.REQUESTS.update(txn, row["id"], {"debt_proof": proof})
        txn.cancel_deadlines(FLOW, row["id"], DEBT_PROOF)
        extra = {"debt_proof": proof}
        self._emit(txn, "debt_proof_submitted", "APD", row, sender=caller.operator, extra=extra)
        self._emit(txn, "debt_proof_forwarded", "APDC", row, to=(row["donor"],), extra=extra)
        await self._review_payment(txn, row, paid_at, request.receipt_number)
        return await self._declare_admissible(txn, row)

    async def _debt_not_proven(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is None or row["state"] != State.OBJECTED_DEBT:
            return
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": State.REJECTED,
                "closed_at": txn.now,
                "rejection_reason": "debt objection not lifted: no proof of payment in time",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        txn.cancel_deadlines(FLOW, row["id"], INSTALLATION)
        self._emit(txn, "rejected", "RABDCP", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "rejected")

    async def report_installation(
        self, txn: Txn, caller: Caller, request: ReportInstallation
    ) -> Record:
        """Fixed service: the installation date starts the recipient's scheduling limit."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        installed = check_date(v, "installation_date", request.installation_date)
        if installed is not None and installed > self.timeline.calendar.local_date(txn.now):
            v.add("installation_date", "must not be in the future")
        v.raise_if_any()
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        if row["service"] != R.Service.FIXED:
            raise FailedPrecondition(
                "installation applies to fixed service only", subject=row["id"]
            )
        if row["state"] not in (State.AWAITING_DONOR, State.OBJECTED_DEBT, State.ADMISSIBLE):
            raise FailedPrecondition(
                f"{row['id']} can no longer change ({row['state']})", subject=row["id"]
            )
        if row["installation_date"] is not None:
            raise FailedPrecondition(
                f"the installation of {row['id']} was already reported", subject=row["id"]
            )
        limit = self._installation_limit_passed(txn, row)
        if limit is not None:
            await self._cancel_not_installed(txn, row, limit)
            raise FailedPrecondition(
                f"{row['id']} passed its installation limit {limit.isoformat()} and is cancelled",
                subject=row["id"],
                keep_effects=True,
            )
        txn.cancel_deadlines(FLOW, row["id"], INSTALLATION)
        changes: dict[str, Any] = {"installation_date": installed}
        if row["state"] == State.ADMISSIBLE:
            changes.update(self._scheduling_terms(row, row["admissible_at"], installed))
        row = await store.REQUESTS.update(txn, row["id"], changes)
        if row["state"] == State.ADMISSIBLE:
            self._set_schedule_deadline(txn, row)
        self._emit(txn, "installation_reported", None, row, sender=caller.operator)
        return row
