"""The portability process: prior consultation (CP), port request (SP), scheduling (PP), execution
in the change window, and confirmations. Every rule of the process lives here; the gRPC servicer
only translates.

States of a port request::

    awaiting_donor --SAC / silence--> admissible --PP--> scheduled --window--> executed --> completed
          |  \\--OCC (debt)--> objected_debt --APD--> admissible
          |                         \\--no proof in time--> rejected (RABDCP)
          \\--OCC (other reason)--> rejected (RABDCP)
    admissible --no PP by the limit--> cancelled (CNPF)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from npc.config import PortabilitySettings
from npc.core import numbers as registry
from npc.core.compliance import Rule, record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
)
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import timestamp, within
from npc.core.runtime import Core
from npc.core.validation import (
    DOCUMENT_TYPES,
    RECEIPT,
    Violations,
    check_case_id,
    check_document,
    check_operator,
    check_subscriber,
    parse_date,
    printable,
)
from npc.flows.portability import metrics, store
from npc.flows.portability import rules as R
from npc.flows.portability.convert import (
    REQUEST_STATE_NAMES,
    blocks_json,
    consultation_message,
    consultation_payload,
    objection_json,
    request_message,
    request_payload,
)
from npc.flows.portability.validation import check_objection, check_service, expand_numbers
from npc.store import operators
from npc.store.database import Txn
from npc.v1 import portability_pb2 as pb

FLOW = R.FLOW
LIVE_STATES = (R.State.AWAITING_DONOR, R.State.OBJECTED_DEBT, R.State.ADMISSIBLE, R.State.SCHEDULED)

# Deadline kinds.
CONSULTATION_ANSWER = R.DeadlineKind.CONSULTATION_ANSWER
REQUEST_ANSWER = R.DeadlineKind.REQUEST_ANSWER
DEBT_PROOF = R.DeadlineKind.DEBT_PROOF
SCHEDULE = R.DeadlineKind.SCHEDULE
EXECUTE = R.DeadlineKind.EXECUTE
DONOR_DISABLE = R.DeadlineKind.DONOR_DISABLE
RECIPIENT_ENABLE = R.DeadlineKind.RECIPIENT_ENABLE


@dataclass(frozen=True)
class PublicStatus:
    """What the subscriber of a port request may see of it (the public status page).

    ``recipient`` and ``donor`` are the operators' names; ``numbers`` holds at most the first 20
    numbers (``number_count`` says how many there are); ``window_end`` closes the change window of
    ``scheduled_at``; ``objection_reason`` is the donor's reason name (``debt``...) if it objected.
    """

    id: str
    state: str
    service: str
    recipient: str
    donor: str
    numbers: tuple[str, ...]
    number_count: int
    submitted_at: datetime
    execution_limit: datetime | None
    scheduled_at: datetime | None
    window_end: datetime | None
    executed_at: datetime | None
    closed_at: datetime | None
    objection_reason: str | None


# The donor's unanswered message, by the rule its silence breaks.
_SILENT_MESSAGE = {R.CONSULTATION_ANSWER.key: "CP", R.REQUEST_ANSWER.key: "SP"}


class PortabilityHandler:
    """Commands, queries and deadline handlers of the portability process."""

    def __init__(self, core: Core, settings: PortabilitySettings) -> None:
        self.core = core
        self.settings = settings
        self.timeline = R.Timeline(core.calendar(settings.jurisdiction), settings)
        # Returns and suspensions ask about ports through the core, never with our SQL.
        core.ports = store.PortTables()

    def register_deadlines(self) -> None:
        """Plug this flow's deadline handlers into the core."""
        register = self.core.deadlines.register
        register(FLOW, CONSULTATION_ANSWER, self._consultation_donor_silent)
        register(FLOW, REQUEST_ANSWER, self._request_donor_silent)
        register(FLOW, DEBT_PROOF, self._debt_not_proven)
        register(FLOW, SCHEDULE, self._not_scheduled)
        register(FLOW, EXECUTE, self._execute)
        register(FLOW, DONOR_DISABLE, self._confirmation_missed)
        register(FLOW, RECIPIENT_ENABLE, self._confirmation_missed)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _require_operator(caller: Caller) -> None:
        if caller.is_regulator:
            raise PermissionDenied("the regulator's identity is read-only")

    async def _check_numbers(
        self, txn: Txn, donor: str, service: str, numbers: list[str], field: str
    ) -> None:
        """Each number is in the numbering plan, of the right service, and served by the donor."""
        for row in await registry.who_serves(txn.conn, numbers):
            number = row.number
            if row.holder is None:
                raise FailedPrecondition(
                    f"number {number} is not in the numbering plan",
                    violation_type="NUMBER_NOT_IN_PLAN",
                    subject=f"{field}:{number}",
                )
            if row.service != service:
                raise FailedPrecondition(
                    f"number {number} is a {row.service} number, not {service}",
                    violation_type="WRONG_SERVICE",
                    subject=f"{field}:{number}",
                )
            if row.serving != donor:
                raise FailedPrecondition(
                    f"number {number} is neither in the donor's range nor ported to it",
                    violation_type="NUMBER_NOT_SERVED_BY_DONOR",
                    subject=f"{field}:{number}",
                )

    async def _check_parties(self, txn: Txn, v: Violations, caller: Caller, donor: str) -> None:
        if donor == caller.operator:
            v.add("donor", "the donor must differ from the recipient (the caller)")
        v.raise_if_any()
        if not await operators.is_operator(txn.conn, donor):
            raise InvalidArgument(FieldViolation("donor", f"unknown operator {donor!r}"))

    async def _breach(
        self,
        txn: Txn,
        rule: Rule,
        operator: str,
        case_id: str,
        due_at: datetime | None,
        evidence: dict[str, Any],
    ) -> None:
        if await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=operator,
            case_id=case_id,
            due_at=due_at,
            observed_at=txn.now,
            evidence=evidence,
        ):
            txn.after_commit(lambda: metrics.DEADLINE_MISSES.labels(operator, rule.key).inc())
            message = _SILENT_MESSAGE.get(rule.key)
            if message is not None:
                txn.after_commit(lambda: metrics.donor_silent(operator, message))

    @staticmethod
    def _count_outcome(txn: Txn, outcome: str) -> None:
        txn.after_commit(lambda: metrics.REQUEST_OUTCOMES.labels(outcome).inc())

    @staticmethod
    def _observe_answer(txn: Txn, donor: str, message: str, sent_at: datetime) -> None:
        seconds = (txn.now - sent_at).total_seconds()
        txn.after_commit(lambda: metrics.donor_answered(donor, message, seconds))

    def _emit(
        self,
        txn: Txn,
        type_: str,
        code: str | None,
        row: Any,
        *,
        sender: str = CLEARINGHOUSE,
        to: tuple[str, ...] = (),
        broadcast: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payload = request_payload(row, private=not broadcast)
        if extra:
            payload.update(extra)
        txn.emit(
            FLOW,
            f"portability.request.{type_}",
            code=code,
            case_id=row["id"],
            sender=sender,
            audience=to,
            broadcast=broadcast,
            payload=payload,
        )

    async def _load_request(self, txn: Txn, case_id: str, caller: Caller, *roles: str) -> Any:
        return await store.REQUESTS.lock_for(txn, case_id, caller.operator, *roles)

    # ------------------------------------------------------------- prior consultation

    async def submit_prior_consultation(
        self, txn: Txn, caller: Caller, request: pb.SubmitPriorConsultationRequest
    ) -> pb.PriorConsultation:
        """CP: register a prior consultation, send it to the donor (ECPC) with its 5 minutes."""
        self._require_operator(caller)
        v = Violations()
        check_operator(v, "donor", request.donor)
        service = check_service(v, "service", request.service)
        check_document(v, "document", request.document)
        entries = expand_numbers(
            v, "numbers", request.numbers, service, self.settings.max_numbers_per_request
        )
        v.raise_if_any()
        await self._check_parties(txn, v, caller, request.donor)
        await self._check_numbers(
            txn, request.donor, service, [e.number for e in entries], "numbers"
        )
        case_id = await store.next_id(txn.conn, "CP")
        row = await store.insert_consultation(
            txn.conn,
            {
                "id": case_id,
                "recipient": caller.operator,
                "donor": request.donor,
                "service": service,
                "document": {
                    "type": DOCUMENT_TYPES[request.document.type],
                    "number": request.document.number,
                },
                "numbers": blocks_json(request.numbers),
                "number_count": len(entries),
                "state": R.State.AWAITING_DONOR,
                "submitted_at": txn.now,
                "donor_deadline": self.timeline.donor_deadline(txn.now),
            },
        )
        txn.set_deadline(
            FLOW,
            CONSULTATION_ANSWER,
            case_id,
            row["donor_deadline"],
            "donor answers the prior consultation within 5 minutes (art. 20, infraction 18)",
        )
        payload = consultation_payload(row)
        for type_, code, sender, to in (
            ("submitted", "CP", caller.operator, ()),
            ("registered", "ANCP", CLEARINGHOUSE, (caller.operator,)),
            ("sent_to_donor", "ECPC", CLEARINGHOUSE, (request.donor,)),
        ):
            txn.emit(
                FLOW,
                f"portability.consultation.{type_}",
                code=code,
                case_id=case_id,
                sender=sender,
                audience=to,
                payload=payload,
            )
        return consultation_message(row)

    async def answer_prior_consultation(
        self, txn: Txn, caller: Caller, request: pb.AnswerPriorConsultationRequest
    ) -> pb.PriorConsultation:
        """CPAC / CPOCC: the donor's answer; the clearinghouse declares CPPR or CPRABD."""
        v = Violations()
        check_case_id(v, "consultation_id", request.consultation_id, "CP")
        self._check_answer(v, request.accept, request)
        v.raise_if_any()
        row = await store.CONSULTATIONS.lock(txn, request.consultation_id)
        if row is None:
            raise NotFound("prior_consultation", request.consultation_id)
        if row["donor"] != caller.operator:
            raise PermissionDenied(f"only the donor of {row['id']} answers it")
        if row["state"] != R.State.AWAITING_DONOR:
            raise FailedPrecondition(
                f"{row['id']} was already answered ({row['state']})", subject=row["id"]
            )
        if txn.now >= row["donor_deadline"]:
            await self._consultation_silence(txn, row)
            raise FailedPrecondition(
                f"the 5-minute answer window of {row['id']} closed at {row['donor_deadline'].isoformat()};"
                " the donor's silence counted as no objection",
                violation_type="DEADLINE_PASSED",
                subject=row["id"],
                keep_effects=True,
            )
        self._observe_answer(txn, caller.operator, "CP", row["submitted_at"])
        inbound = "CPAC" if request.accept else "CPOCC"
        if request.accept:
            row = await store.CONSULTATIONS.update(
                txn,
                row["id"],
                {"state": R.State.ADMISSIBLE, "answered_at": txn.now},
            )
        else:
            row = await store.CONSULTATIONS.update(
                txn,
                row["id"],
                {
                    "state": R.State.REJECTED,
                    "answered_at": txn.now,
                    "objection": objection_json(request.objection),
                },
            )
        txn.cancel_deadlines(FLOW, row["id"], CONSULTATION_ANSWER)
        payload = consultation_payload(row)
        txn.emit(
            FLOW,
            "portability.consultation.answered",
            code=inbound,
            case_id=row["id"],
            sender=caller.operator,
            payload=payload,
        )
        outcome = ("admissible", "CPPR") if request.accept else ("rejected", "CPRABD")
        txn.emit(
            FLOW,
            f"portability.consultation.{outcome[0]}",
            code=outcome[1],
            case_id=row["id"],
            sender=CLEARINGHOUSE,
            audience=(row["recipient"],),
            payload=payload,
        )
        return consultation_message(row)

    async def _consultation_silence(self, txn: Txn, row: Any) -> Any:
        row = await store.CONSULTATIONS.update(
            txn,
            row["id"],
            {"state": R.State.ADMISSIBLE, "donor_silent": True},
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
        if row is not None and row["state"] == R.State.AWAITING_DONOR:
            await self._consultation_silence(txn, row)

    async def get_prior_consultation(
        self, caller: Caller, request: pb.GetPriorConsultationRequest
    ) -> pb.PriorConsultation:
        """A prior consultation, for its recipient, its donor or the regulator."""
        row = await self._read_case(
            caller, "prior_consultation", "consultation_id", request.consultation_id
        )
        return consultation_message(row)

    # ------------------------------------------------------------------ port request

    async def submit_port_request(
        self, txn: Txn, caller: Caller, request: pb.SubmitPortRequestRequest
    ) -> pb.PortRequest:
        """SP: register the request (ANS), send it to the donor (ESC) with its 5 minutes."""
        self._require_operator(caller)
        v = Violations()
        check_operator(v, "donor", request.donor)
        service = check_service(v, "service", request.service)
        check_subscriber(v, "subscriber", request.subscriber)
        entries = expand_numbers(
            v, "numbers", request.numbers, service, self.settings.max_numbers_per_request
        )
        received_at = timestamp(v, "received_at", request, "received_at")
        within(
            v,
            "received_at",
            received_at,
            txn.now,
            past=timedelta(days=30),
            future=timedelta(minutes=5),
        )
        if request.form_number and not printable(request.form_number, limit=40):
            v.add("form_number", "up to 40 printable characters")
        if request.prior_consultation_id:
            check_case_id(v, "prior_consultation_id", request.prior_consultation_id, "CP")
        installation = None
        if request.installation_date:
            installation = parse_date(request.installation_date)
            if installation is None:
                v.add("installation_date", "a date, YYYY-MM-DD")
            elif service == "mobile":
                v.add("installation_date", "only for fixed service")
            elif installation > self.timeline.calendar.local_date(txn.now):
                v.add("installation_date", "must not be in the future")
        v.raise_if_any()
        await self._check_parties(txn, v, caller, request.donor)
        numbers = [e.number for e in entries]
        await self._check_numbers(txn, request.donor, service, numbers, "numbers")
        if request.prior_consultation_id:
            consultation = await txn.conn.fetchrow(
                "SELECT recipient, donor, state FROM prior_consultations WHERE id = $1",
                request.prior_consultation_id,
            )
            if consultation is None or consultation["recipient"] != caller.operator:
                raise FailedPrecondition(
                    "prior consultation not found for this recipient",
                    violation_type="PRIOR_CONSULTATION",
                    subject="prior_consultation_id",
                )
            if (
                consultation["state"] != R.State.ADMISSIBLE
                or consultation["donor"] != request.donor
            ):
                raise FailedPrecondition(
                    "the prior consultation is not admissible for this donor",
                    violation_type="PRIOR_CONSULTATION",
                    subject="prior_consultation_id",
                )
        subscriber = request.subscriber
        values = {
            "recipient": caller.operator,
            "donor": request.donor,
            "service": service,
            "subscriber": {
                "name": subscriber.name.strip(),
                "legal_representative": subscriber.legal_representative,
                "document": {
                    "type": DOCUMENT_TYPES[subscriber.document.type],
                    "number": subscriber.document.number,
                },
                "email": subscriber.email,
                "contact_phone": subscriber.contact_phone,
            },
            "numbers": blocks_json(request.numbers),
            "number_count": len(entries),
            "special_client": self.timeline.is_special_client(len(entries)),
            "state": R.State.AWAITING_DONOR,
            "form_number": request.form_number,
            "prior_consultation_id": request.prior_consultation_id or None,
            "received_at": received_at,
            "submitted_at": txn.now,
            "donor_deadline": self.timeline.donor_deadline(txn.now),
            "installation_date": installation,
            "execution_limit": self.timeline.execution_limit(txn.now, len(entries)),
        }
        try:
            row = await store.insert_request(txn.conn, values, entries)
        except asyncpg.UniqueViolationError as exc:
            detail = getattr(exc, "detail", "") or ""
            number = (
                detail.split("=(")[-1].split(")")[0] if "=(" in detail else "one of the numbers"
            )
            raise AlreadyExists(
                "port_request", number, f"number {number} already has a live port request"
            ) from None
        case_id = row["id"]
        txn.set_deadline(
            FLOW,
            REQUEST_ANSWER,
            case_id,
            row["donor_deadline"],
            "donor answers the port request within 5 minutes (art. 22, infraction 21)",
        )
        assert received_at is not None
        if txn.now - received_at > self.settings.registration_grace:
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
        txn.after_commit(lambda: metrics.REQUESTS_FILED.labels(service).inc())
        return request_message(row)

    @staticmethod
    def _check_answer(v: Violations, accept: bool, request: Any) -> None:
        if accept and request.HasField("objection"):
            v.add("objection", "must be empty when accepting")
        if not accept:
            if not request.HasField("objection"):
                v.add(
                    "objection",
                    "required when objecting: reason, and for debt the amount and due date",
                )
            else:
                check_objection(v, "objection", request.objection)

    async def answer_port_request(
        self, txn: Txn, caller: Caller, request: pb.AnswerPortRequestRequest
    ) -> pb.PortRequest:
        """SAC / OCC: the donor accepts (SPR follows) or objects with a coded reason."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        self._check_answer(v, request.accept, request)
        v.raise_if_any()
        row = await self._load_request(txn, request.port_request_id, caller, "donor")
        if row["state"] != R.State.AWAITING_DONOR:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting the donor's answer ({row['state']})",
                subject=row["id"],
            )
        if txn.now >= row["donor_deadline"]:
            await self._request_silence(txn, row)
            raise FailedPrecondition(
                f"the 5-minute answer window of {row['id']} closed at {row['donor_deadline'].isoformat()};"
                " the donor's silence counted as no objection",
                violation_type="DEADLINE_PASSED",
                subject=row["id"],
                keep_effects=True,
            )
        self._observe_answer(txn, caller.operator, "SP", row["submitted_at"])
        txn.cancel_deadlines(FLOW, row["id"], REQUEST_ANSWER)
        if request.accept:
            # SAC describes the request as the donor found it (its payload has no answer time);
            # the answer time is written with the admissibility, in one update.
            self._emit(txn, "accepted", "SAC", row, sender=caller.operator)
            row = await self._declare_admissible(txn, row, answered_at=txn.now)
            return request_message(row)
        objection = objection_json(request.objection)
        if request.objection.reason == pb.OBJECTION_REASON_DEBT:
            row = await store.REQUESTS.update(
                txn,
                row["id"],
                {"state": R.State.OBJECTED_DEBT, "answered_at": txn.now, "objection": objection},
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
            return request_message(row)
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": R.State.REJECTED,
                "answered_at": txn.now,
                "objection": objection,
                "closed_at": txn.now,
                "rejection_reason": f"objected by the donor: {objection['reason']}",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        self._emit(txn, "objected", "OCC", row, sender=caller.operator)
        self._emit(txn, "rejected", "RABDCP", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "rejected")
        return request_message(row)

    async def _declare_admissible(
        self,
        txn: Txn,
        row: Any,
        *,
        donor_silent: bool = False,
        answered_at: datetime | None = None,
    ) -> Any:
        """SPR: the request may proceed; the recipient's scheduling limit starts."""
        changes: dict[str, Any] = {"state": R.State.ADMISSIBLE, "admissible_at": txn.now}
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
        self, row: Any, admissible_at: datetime, installation_date: date | None
    ) -> dict[str, datetime]:
        """The recipient's scheduling limit and the execution limit once a request is admissible.

        Mobile: 22:00 of the day of admissibility. Fixed: 22:00 of the day after installation, and
        never before 22:00 of the day of admissibility (a line installed before the request could
        not be scheduled earlier). A request that became admissible late (a debt objection lifted)
        or was installed late keeps its 24 hours counted from then, never less than from filing.
        """
        deadline = self.timeline.mobile_schedule_deadline(admissible_at)
        if row["service"] == "fixed":
            if installation_date is None:
                return {}
            deadline = max(deadline, self.timeline.fixed_schedule_deadline(installation_date))
        reference = admissible_at if row["service"] == "mobile" else deadline
        limit = max(
            row["execution_limit"], self.timeline.execution_limit(reference, row["number_count"])
        )
        return {"schedule_deadline": deadline, "execution_limit": limit}

    def _set_schedule_deadline(self, txn: Txn, row: Any) -> None:
        if row["schedule_deadline"] is None:
            return
        rule = (
            "mobile: schedule by 22:00 of the day the request is admissible (art. 23, infraction 24)"
            if row["service"] == "mobile"
            else "fixed: schedule by 22:00 of the day after installation (art. 23, infraction 25)"
        )
        txn.set_deadline(FLOW, SCHEDULE, row["id"], row["schedule_deadline"], rule)

    async def _request_silence(self, txn: Txn, row: Any) -> Any:
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
        if row is not None and row["state"] == R.State.AWAITING_DONOR:
            await self._request_silence(txn, row)

    async def submit_debt_payment_proof(
        self, txn: Txn, caller: Caller, request: pb.SubmitDebtPaymentProofRequest
    ) -> pb.PortRequest:
        """APD: the recipient proves the objected debt was paid; APDC goes to the donor and the
        objection is lifted."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        if not RECEIPT.fullmatch(request.receipt_number):
            v.add("receipt_number", "required: up to 40 letters, digits or . / _ -")
        paid_at = timestamp(v, "paid_at", request, "paid_at")
        within(
            v, "paid_at", paid_at, txn.now, past=timedelta(days=365), future=timedelta(minutes=5)
        )
        v.raise_if_any()
        assert paid_at is not None
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        if row["state"] != R.State.OBJECTED_DEBT:
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
        self._emit(
            txn,
            "debt_proof_submitted",
            "APD",
            row,
            sender=caller.operator,
            extra={"debt_proof": proof},
        )
        self._emit(
            txn,
            "debt_proof_forwarded",
            "APDC",
            row,
            to=(row["donor"],),
            extra={"debt_proof": proof},
        )
        if row["answered_at"] is not None and paid_at < row["answered_at"]:
            # The donor objected a debt that was already paid: improper objection, for review.
            await self._breach(
                txn,
                R.IMPROPER_OBJECTION,
                row["donor"],
                row["id"],
                None,
                {
                    "objected_at": row["answered_at"].isoformat(),
                    "paid_at": paid_at.isoformat(),
                    "receipt_number": request.receipt_number,
                    "review": True,
                },
            )
        row = await self._declare_admissible(txn, row)
        return request_message(row)

    async def _debt_not_proven(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is None or row["state"] != R.State.OBJECTED_DEBT:
            return
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": R.State.REJECTED,
                "closed_at": txn.now,
                "rejection_reason": "debt objection not lifted: no proof of payment in time",
            },
        )
        await store.release_numbers(txn.conn, row["id"])
        self._emit(txn, "rejected", "RABDCP", row, to=(row["recipient"], row["donor"]))
        self._count_outcome(txn, "rejected")

    async def report_installation(
        self, txn: Txn, caller: Caller, request: pb.ReportInstallationRequest
    ) -> pb.PortRequest:
        """Fixed service: the installation date starts the recipient's scheduling limit."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        installed = parse_date(request.installation_date)
        if installed is None:
            v.add("installation_date", "required: YYYY-MM-DD")
        elif installed > self.timeline.calendar.local_date(txn.now):
            v.add("installation_date", "must not be in the future")
        v.raise_if_any()
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        if row["service"] != "fixed":
            raise FailedPrecondition(
                "installation applies to fixed service only", subject=row["id"]
            )
        if row["state"] not in (R.State.AWAITING_DONOR, R.State.OBJECTED_DEBT, R.State.ADMISSIBLE):
            raise FailedPrecondition(
                f"{row['id']} can no longer change ({row['state']})", subject=row["id"]
            )
        if row["installation_date"] is not None:
            raise FailedPrecondition(
                f"the installation of {row['id']} was already reported", subject=row["id"]
            )
        changes: dict[str, Any] = {"installation_date": installed}
        if row["state"] == R.State.ADMISSIBLE:
            changes.update(self._scheduling_terms(row, row["admissible_at"], installed))
        row = await store.REQUESTS.update(txn, row["id"], changes)
        if row["state"] == R.State.ADMISSIBLE:
            self._set_schedule_deadline(txn, row)
        self._emit(txn, "installation_reported", None, row, sender=caller.operator)
        return request_message(row)

    # ------------------------------------------------------------------ scheduling

    async def schedule_port(
        self, txn: Txn, caller: Caller, request: pb.SchedulePortRequest
    ) -> pb.PortRequest:
        """PP: the recipient sets the instant of the port inside a change window (PEP to all), or
        the clearinghouse refuses a schedule beyond the execution limit (FLEP)."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        scheduled_at = timestamp(v, "scheduled_at", request, "scheduled_at")
        v.raise_if_any()
        assert scheduled_at is not None
        # What the instant alone decides is checked before the case is locked: a late schedule
        # is refused without a round trip to the database.
        self._check_schedule_instant(scheduled_at, txn.now)
        row = await self._load_request(txn, request.port_request_id, caller, "recipient")
        if row["state"] != R.State.ADMISSIBLE:
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
            {"state": R.State.SCHEDULED, "scheduled_at": scheduled_at},
        )
        txn.cancel_deadlines(FLOW, row["id"], SCHEDULE)
        txn.set_deadline(
            FLOW, EXECUTE, row["id"], scheduled_at, "port executes at the scheduled instant"
        )
        self._emit(txn, "scheduled", "PP", row, sender=caller.operator)
        self._emit(txn, "scheduled_for_execution", "PEP", row, broadcast=True)
        return request_message(row)

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

    async def _cancel_not_scheduled(self, txn: Txn, row: Any) -> Any:
        rule = R.MOBILE_SCHEDULE if row["service"] == "mobile" else R.FIXED_SCHEDULE
        row = await store.REQUESTS.update(
            txn,
            row["id"],
            {
                "state": R.State.CANCELLED,
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
        if row is not None and row["state"] == R.State.ADMISSIBLE:
            await self._cancel_not_scheduled(txn, row)

    # ------------------------------------------------------------------ execution

    async def _execute_now(self, txn: Txn, row: Any) -> Any:
        """Move the numbers to the recipient in the central registry and tell every operator."""
        numbers = await store.request_numbers(txn.conn, row["id"])
        moved = await registry.move_numbers(
            txn, numbers, row["recipient"], reason="port", case_id=row["id"]
        )
        await store.release_numbers(txn.conn, row["id"])
        row = await store.REQUESTS.update(
            txn, row["id"], {"state": R.State.EXECUTED, "executed_at": txn.now}
        )
        txn.cancel_deadlines(FLOW, row["id"], EXECUTE)
        scheduled_at = row["scheduled_at"]
        txn.set_deadline(
            FLOW,
            DONOR_DISABLE,
            row["id"],
            self.timeline.donor_disable_deadline(scheduled_at),
            "donor disables the numbers inside the change window (art. 23, infraction 27)",
        )
        txn.set_deadline(
            FLOW,
            RECIPIENT_ENABLE,
            row["id"],
            self.timeline.recipient_enable_deadline(scheduled_at),
            "recipient enables the numbers within 3 hours (art. 23, infraction 28)",
        )
        code = str(await operators.routing_code(txn.conn, row["recipient"]))
        self._emit(txn, "executed", None, row, broadcast=True, extra={"routing_code": code})
        service = row["service"]
        txn.after_commit(lambda: metrics.PORTS_EXECUTED.labels(service).inc())
        txn.after_commit(lambda: metrics.NUMBERS_PORTED.labels(service).inc(moved))
        return row

    async def _execute(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == R.State.SCHEDULED:
            await self._execute_now(txn, row)

    async def confirm_port_execution(
        self, txn: Txn, caller: Caller, request: pb.ConfirmPortExecutionRequest
    ) -> pb.PortRequest:
        """The donor confirms it disabled the numbers; the recipient that it enabled them."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        if request.step not in (
            pb.EXECUTION_STEP_DONOR_DISABLED,
            pb.EXECUTION_STEP_RECIPIENT_ENABLED,
        ):
            v.add(
                "step",
                "required: EXECUTION_STEP_DONOR_DISABLED or EXECUTION_STEP_RECIPIENT_ENABLED",
            )
        done_at = timestamp(v, "done_at", request, "done_at", required=False) or txn.now
        within(v, "done_at", done_at, txn.now, past=timedelta(days=7), future=timedelta(minutes=1))
        v.raise_if_any()
        donor_step = request.step == pb.EXECUTION_STEP_DONOR_DISABLED
        row = await self._load_request(
            txn, request.port_request_id, caller, "donor" if donor_step else "recipient"
        )
        if row["state"] == R.State.SCHEDULED and txn.now >= row["scheduled_at"]:
            row = await self._execute_now(txn, row)  # the confirmation overtook the execution timer
        if row["state"] != R.State.EXECUTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting confirmations ({row['state']})", subject=row["id"]
            )
        column, kind, rule, deadline = (
            (
                "donor_disabled_at",
                DONOR_DISABLE,
                R.DONOR_DISABLE,
                self.timeline.donor_disable_deadline(row["scheduled_at"]),
            )
            if donor_step
            else (
                "recipient_enabled_at",
                RECIPIENT_ENABLE,
                R.RECIPIENT_ENABLE,
                self.timeline.recipient_enable_deadline(row["scheduled_at"]),
            )
        )
        if row[column] is not None:
            raise FailedPrecondition(
                f"{row['id']}: this step was already confirmed", subject=row["id"]
            )
        if done_at < row["scheduled_at"]:
            raise InvalidArgument(
                FieldViolation("done_at", "must not be before the scheduled instant of the port")
            )
        changes: dict[str, Any] = {column: done_at}
        other = "recipient_enabled_at" if donor_step else "donor_disabled_at"
        if row[other] is not None:
            changes.update(state=R.State.COMPLETED, closed_at=txn.now)
        row = await store.REQUESTS.update(txn, row["id"], changes)
        txn.cancel_deadlines(FLOW, row["id"], kind)
        if done_at > deadline or txn.now > deadline:
            # A confirmation received after the deadline cannot prove the step was done in time,
            # whatever instant it claims.
            await self._breach(
                txn,
                rule,
                caller.operator,
                row["id"],
                deadline,
                {
                    "scheduled_at": row["scheduled_at"].isoformat(),
                    "done_at": done_at.isoformat(),
                    "confirmed_at": txn.now.isoformat(),
                },
            )
        counterpart = row["recipient"] if donor_step else row["donor"]
        self._emit(
            txn,
            "donor_disabled" if donor_step else "recipient_enabled",
            None,
            row,
            sender=caller.operator,
            to=(counterpart,),
        )
        if row["state"] == R.State.COMPLETED:
            self._emit(txn, "completed", None, row, to=(row["recipient"], row["donor"]))
            self._count_outcome(txn, "completed")
        return request_message(row)

    async def _confirmation_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await store.REQUESTS.lock(txn, deadline.case_id)
        if row is None:
            return
        if deadline.kind == DONOR_DISABLE and row["donor_disabled_at"] is None:
            await self._breach(
                txn,
                R.DONOR_DISABLE,
                row["donor"],
                row["id"],
                deadline.due_at,
                {"scheduled_at": row["scheduled_at"].isoformat(), "confirmed_at": None},
            )
        elif deadline.kind == RECIPIENT_ENABLE and row["recipient_enabled_at"] is None:
            await self._breach(
                txn,
                R.RECIPIENT_ENABLE,
                row["recipient"],
                row["id"],
                deadline.due_at,
                {"scheduled_at": row["scheduled_at"].isoformat(), "confirmed_at": None},
            )

    # ------------------------------------------------------------------ queries

    async def get_port_request(
        self, caller: Caller, request: pb.GetPortRequestRequest
    ) -> pb.PortRequest:
        """A port request, for its recipient, its donor or the regulator."""
        row = await self._read_case(
            caller, "port_request", "port_request_id", request.port_request_id
        )
        return request_message(row)

    async def public_status(self, case_id: str, document: str) -> PublicStatus | None:
        """A port request as its subscriber may see it, or None.

        Found only when `document` is the subscriber's document number (compared without case):
        code and document are matched by one and the same query, so a wrong code and a wrong
        document cost the same and both answer None.
        """
        async with self.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT r.*,
                          ARRAY(SELECT n.number FROM port_request_numbers n
                                WHERE n.port_request_id = r.id ORDER BY n.number LIMIT 20)
                              AS first_numbers
                   FROM port_requests r
                   WHERE r.id = $1 AND upper(r.subscriber->'document'->>'number') = upper($2)""",
                case_id,
                document,
            )
            if row is None:
                return None
            # Both parties are registered operators (foreign keys): both names are found.
            names = await operators.names(conn, [row["recipient"], row["donor"]])
        window = (
            self.timeline.window_containing(row["scheduled_at"]) if row["scheduled_at"] else None
        )
        return PublicStatus(
            id=row["id"],
            state=row["state"],
            service=row["service"],
            recipient=names[row["recipient"]],
            donor=names[row["donor"]],
            numbers=tuple(row["first_numbers"]),
            number_count=row["number_count"],
            submitted_at=row["submitted_at"],
            execution_limit=row["execution_limit"],
            scheduled_at=row["scheduled_at"],
            window_end=window[1] if window else None,
            executed_at=row["executed_at"],
            closed_at=row["closed_at"],
            objection_reason=(row["objection"] or {}).get("reason"),
        )

    async def request_counts(
        self, start: datetime, end: datetime, operator: str | None
    ) -> list[dict[str, Any]]:
        """Port requests submitted in [start, end), counted by recipient, donor, service and
        state; with `operator`, only those where it is the recipient or the donor."""
        async with self.core.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT recipient, donor, service, state, count(*) AS requests,
                          count(*) FILTER (WHERE donor_silent) AS donor_silent
                   FROM port_requests
                   WHERE submitted_at >= $1 AND submitted_at < $2
                     AND ($3::text IS NULL OR recipient = $3 OR donor = $3)
                   GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
                start,
                end,
                operator,
            )
        return [dict(r) for r in rows]

    async def _read_case(self, caller: Caller, kind: str, field: str, case_id: str) -> Any:
        """A case row, readable by its two parties and the regulator."""
        prefix, table = (
            ("CP", store.CONSULTATIONS) if kind == "prior_consultation" else ("SP", store.REQUESTS)
        )
        v = Violations()
        check_case_id(v, field, case_id, prefix)
        v.raise_if_any()
        return await table.read_for(
            self.core.db, case_id, caller.operator, sees_all=caller.is_regulator
        )

    async def list_port_requests(
        self, caller: Caller, request: pb.ListPortRequestsRequest
    ) -> pb.ListPortRequestsResponse:
        """Requests where the caller is a party (all of them for the regulator), newest first."""
        v = Violations()
        if request.state and request.state not in REQUEST_STATE_NAMES:
            v.add("state", "unknown state")
        if not 0 <= request.page_size <= 500:
            v.add("page_size", "between 1 and 500 (0 means 50)")
        cursor: tuple[datetime, str] | None = None
        if request.page_token:
            try:
                stamp, _, last_id = (
                    base64.urlsafe_b64decode(request.page_token.encode()).decode().partition("|")
                )
                cursor = (datetime.fromisoformat(stamp), last_id)
            except (ValueError, UnicodeDecodeError):
                v.add("page_token", "not a token returned by this method")
        v.raise_if_any()
        size = request.page_size or 50
        state = REQUEST_STATE_NAMES.get(request.state) if request.state else None
        async with self.core.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT * FROM port_requests
                   WHERE ($1::text IS NULL OR recipient = $1 OR donor = $1)
                     AND ($2::text IS NULL OR state = $2)
                     AND ($3::timestamptz IS NULL OR (submitted_at, id) < ($3, $4))
                   ORDER BY submitted_at DESC, id DESC LIMIT $5""",
                None if caller.is_regulator else caller.operator,
                state,
                cursor[0] if cursor else None,
                cursor[1] if cursor else "",
                size + 1,
            )
        response = pb.ListPortRequestsResponse(
            port_requests=[request_message(r) for r in rows[:size]]
        )
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = base64.urlsafe_b64encode(
                f"{last['submitted_at'].isoformat()}|{last['id']}".encode()
            ).decode()
        return response
