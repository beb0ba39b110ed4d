"""SMS QUEJA to the short code (art. 2.1.5.1, parágrafo 1): the acknowledgement SMS within 5
minutes, a call by the end of the next calendar day, and the complaint registered with its CUN
when the user answers; 3 unanswered attempts at least 30 minutes apart close the request."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from asyncpg import Record

from npc.core.compliance import Rule
from npc.core.errors import FailedPrecondition, PermissionDenied
from npc.core.identity import Caller
from npc.core.validation import Violations, printable
from npc.flows.pqr import events, store, texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.filing import Filing
from npc.flows.pqr.model import (
    NO_COMPLAINT,
    AcknowledgeQuejaSms,
    CallComplaint,
    GetSmsRequest,
    ReceiveQuejaSms,
    RecordCallAttempt,
    SmsCase,
)
from npc.flows.pqr.rules import (
    ACKNOWLEDGE_WITHIN,
    ATTEMPT_SPACING,
    FLOW,
    SHORT_CODE,
    SMS_ACKNOWLEDGE,
    SMS_CALL,
    UNANSWERED_ATTEMPTS_TO_CLOSE,
    Channel,
    DeadlineKind,
    Kind,
    SmsState,
)
from npc.flows.pqr.store import SMS
from npc.notifications.outbox import queue_sms
from npc.store.database import Txn

_ACK_MINUTES = ACKNOWLEDGE_WITHIN // timedelta(minutes=1)
_SPACING_MINUTES = ATTEMPT_SPACING // timedelta(minutes=1)


class SmsQueja(Filing):
    """SMS QUEJA requests, from the SMS to the registered complaint or the closing notice."""

    async def receive_queja_sms(
        self, txn: Txn, caller: Caller, request: ReceiveQuejaSms
    ) -> SmsCase:
        """An SMS with the word QUEJA reached code 85432 on the provider's network."""
        v = Violations()
        if not check.CO_MOBILE.fullmatch(request.msisdn):
            v.add("msisdn", "required: the user's line, 10 digits starting with 3")
        if request.short_code != SHORT_CODE:
            v.add("short_code", f"required: {SHORT_CODE}")
        if not check.QUEJA.search(request.text) or not printable(request.text, limit=check.MAX_SMS):
            v.add("text", "required: the SMS text, with the word QUEJA")
        v.raise_if_any()
        if caller.is_regulator:
            raise PermissionDenied("SMS QUEJA requests come from the provider's network")
        if not await store.has_cun_range(txn.conn, caller.operator):
            raise FailedPrecondition(
                f"{caller.operator} has no CUN range: it is not a provider under the PQR regime",
                violation_type="NO_CUN_RANGE",
                subject=caller.operator,
            )
        sms_id = await store.next_sms_request_id(txn.conn)
        ack_due = txn.now + ACKNOWLEDGE_WITHIN
        next_day = self.calendar.local_date(txn.now) + timedelta(days=1)
        call_due = self.calendar.at(next_day + timedelta(days=1), time(0, 0))
        await txn.lock_case(FLOW, sms_id)
        row = await store.insert_sms_request(
            txn.conn,
            sms_id,
            caller.operator,
            request.msisdn,
            request.text,
            received_at=txn.now,
            ack_due=ack_due,
            call_due=call_due,
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.SMS_ACKNOWLEDGE,
            sms_id,
            ack_due,
            f"acknowledgement SMS within {_ACK_MINUTES} minutes (art. 2.1.5.1 par. 1 a)",
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.SMS_CALL,
            sms_id,
            call_due,
            "call the user by the end of the next calendar day (art. 2.1.5.1 par. 1 b)",
        )
        events.emit_sms(txn, "sms_received", row, caller.operator)
        return await self.sms_case(txn.conn, row)

    async def acknowledge_queja_sms(
        self, txn: Txn, caller: Caller, request: AcknowledgeQuejaSms
    ) -> SmsCase:
        """The provider sent the acknowledgement SMS."""
        v = Violations()
        check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
        v.raise_if_any()
        row = await SMS.lock_for(txn, request.sms_request_id, caller, "provider")
        if row["acknowledged_at"] is not None:
            raise FailedPrecondition(f"{row['id']} was already acknowledged", subject=row["id"])
        # "Antes de transcurridos cinco (5) minutos" (art. 2.1.5.15.4 b): the 5th minute is late.
        if txn.now >= row["ack_due"]:
            await self._sms_breach(txn, SMS_ACKNOWLEDGE, row, row["ack_due"])
        row = await SMS.update(txn, row["id"], {"acknowledged_at": txn.now})
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_ACKNOWLEDGE)
        events.emit_sms(txn, "sms_acknowledged", row, caller.operator)
        return await self.sms_case(txn.conn, row)

    async def record_call_attempt(
        self, txn: Txn, caller: Caller, request: RecordCallAttempt
    ) -> SmsCase:
        """A call to the user: answered, it registers the complaint with its CUN."""
        complaint = _checked_call(request)
        row = await SMS.lock_for(txn, request.sms_request_id, caller, "provider")
        if row["state"] != SmsState.RECEIVED:
            raise FailedPrecondition(
                f"{row['id']} is no longer awaiting a call ({row['state']})", subject=row["id"]
            )
        last = row["last_attempt_at"]
        if not request.answered and last is not None and txn.now < last + ATTEMPT_SPACING:
            raise FailedPrecondition(
                f"call attempts count {_SPACING_MINUTES} minutes apart at least; the next from "
                f"{(last + ATTEMPT_SPACING).isoformat()}",
                violation_type="TOO_EARLY",
                subject=row["id"],
            )
        # "Antes de finalizado el día calendario siguiente" (art. 2.1.5.15.4 a): its end is late.
        if row["first_attempt_at"] is None and txn.now >= row["call_due"]:
            await self._sms_breach(txn, SMS_CALL, row, row["call_due"])
        changes: dict[str, Any] = {
            "first_attempt_at": row["first_attempt_at"] or txn.now,
            "last_attempt_at": txn.now,
        }
        case = await self.sms_case(txn.conn, row)
        if complaint is not None:
            row = await self._register_complaint(txn, row, complaint, changes)
            events.emit_sms(txn, "sms_registered", row, caller.operator)
            return SmsCase(row, case.provider_name)
        attempts = row["call_attempts"] + 1
        changes["call_attempts"] = attempts
        if attempts >= UNANSWERED_ATTEMPTS_TO_CLOSE:
            changes |= {"state": SmsState.CLOSED_UNREACHABLE, "closed_at": txn.now}
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_CALL)
            await queue_sms(
                txn,
                to=row["msisdn"],
                text=texts.unreachable_notice(case.provider_name),
                flow=FLOW,
                case_id=row["id"],
            )
        row = await SMS.update(txn, row["id"], changes)
        closed = row["state"] == SmsState.CLOSED_UNREACHABLE
        events.emit_sms(
            txn, "sms_closed" if closed else "sms_call_unanswered", row, caller.operator
        )
        return SmsCase(row, case.provider_name)

    async def _register_complaint(
        self, txn: Txn, row: Record, complaint: CallComplaint, changes: dict[str, Any]
    ) -> Record:
        """The user answered: the complaint is filed under a CUN and the request is done."""
        assert complaint.subject is not None  # checked with the call
        pqr = await self._register(
            txn,
            row["provider"],
            kind=Kind.COMPLAINT,
            channel=Channel.SMS_85432,
            subject=complaint.subject,
            user=complaint.user,
            facts=complaint.facts,
            sms_request_id=row["id"],
            presented_at=txn.now,  # told during the call
        )
        changes |= {"state": SmsState.REGISTERED, "contacted_at": txn.now, "cun": pqr["id"]}
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_CALL)
        return await SMS.update(txn, row["id"], changes)

    async def get_sms_request(self, caller: Caller, request: GetSmsRequest) -> SmsCase:
        """An SMS QUEJA request, for its provider and the regulator."""
        v = Violations()
        check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
        v.raise_if_any()
        row = await SMS.read_for(
            self.core.db, request.sms_request_id, caller.operator, sees_all=caller.is_regulator
        )
        async with self.core.db.pool.acquire() as conn:
            return await self.sms_case(conn, row)

    async def _sms_breach(self, txn: Txn, rule: Rule, row: Record, due: datetime) -> None:
        await self._breach(txn, rule, row, due, received_at=row["received_at"].isoformat())


def _checked_call(request: RecordCallAttempt) -> CallComplaint | None:
    """The complaint an answered call registers (None for an unanswered call), once the request
    is valid."""
    v = Violations()
    check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
    complaint = None
    if request.answered:
        complaint = request.complaint or NO_COMPLAINT
        if complaint.subject is None:
            v.add("complaint.subject", "required: what the complaint is about")
        # Told on the phone: a verbal complaint (art. 2.1.5.3).
        check.check_user(v, "complaint.user", complaint.user, verbal=True)
        check.check_text(v, "complaint.facts", complaint.facts, "the facts of the complaint")
    elif request.complaint is not None:
        v.add("complaint", "only an answered call registers a complaint")
    v.raise_if_any()
    return complaint
