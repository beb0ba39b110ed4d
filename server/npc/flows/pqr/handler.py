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

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from npc.core.cases import CaseTable
from npc.core.compliance import Rule, record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import timestamp, to_timestamp
from npc.core.runtime import Core
from npc.core.validation import Violations
from npc.flows.pqr import texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.rules import DeadlineKind
from npc.notifications.outbox import MAX_SMS_TEXT, queue_email, queue_sms
from npc.store.database import Txn
from npc.store.operators import is_operator, name_of
from npc.v1 import pqr_pb2 as pb

FLOW = "pqr"
JURISDICTION = "CO"
ANSWER_DAYS = 15
EXTENSION_DAYS = 15
RECONSIDERATION_DAYS = 10
TRANSFER_DAYS = 5
SIC_DAYS = 15
SILENCE_EFFECTS_WITHIN = timedelta(hours=72)
ACKNOWLEDGE_WITHIN = timedelta(minutes=5)
ATTEMPT_SPACING = timedelta(minutes=30)
UNANSWERED_ATTEMPTS_TO_CLOSE = 3

# The seed's regime has no infraction table: every breach is recorded as "leve", with its article.
ANSWER = Rule(
    "provider_answer_pqr",
    None,
    "art. 2.1.5.2",
    "leve",
    "provider",
    "Answer the petition or complaint within 15 business days from the day after filing "
    "(30 with the evidence extension); otherwise positive administrative silence applies.",
)
ANSWER_RECONSIDERATION = Rule(
    "provider_answer_reconsideration",
    None,
    "art. 2.1.5.2",
    "leve",
    "provider",
    "Answer the reconsideration within 15 business days from the day after filing "
    "(30 with the evidence extension); otherwise positive administrative silence applies.",
)
SILENCE_EFFECTS = Rule(
    "provider_silence_effects",
    None,
    "art. 2.1.5.2",
    "leve",
    "provider",
    "Carry out the effects of the positive administrative silence within 72 hours.",
)
TRANSFER = Rule(
    "provider_transfer_to_sic",
    None,
    "art. 2.1.5.9.3 c",
    "leve",
    "provider",
    "Send the complete file to the SIC within 5 business days of notifying the decision on the "
    "reconsideration.",
)
SMS_ACKNOWLEDGE = Rule(
    "provider_acknowledge_queja_sms",
    None,
    "art. 2.1.5.1 par. 1 a",
    "leve",
    "provider",
    "Answer an SMS QUEJA to 85432 with the acknowledgement SMS within 5 minutes.",
)
SMS_CALL = Rule(
    "provider_call_queja_sms",
    None,
    "art. 2.1.5.1 par. 1 b",
    "leve",
    "provider",
    "Call the user by the end of the calendar day after the SMS QUEJA to 85432.",
)

CASES = CaseTable(FLOW, "pqrs", "pqr", ("provider",))
SMS = CaseTable(FLOW, "pqr_sms_requests", "sms_request", ("provider",))


@dataclass(frozen=True)
class Stage:
    """The columns of one answerable stage: the petition or complaint, or its reconsideration."""

    name: str
    filed: str
    due: str
    extended: str
    reason: str
    answered: str
    outcome: str
    summary: str
    notified: str
    analysis: str
    evidence: str
    rule: Rule


INITIAL = Stage(
    "initial",
    "filed_at",
    "answer_due",
    "extended_at",
    "extension_reason",
    "answered_at",
    "outcome",
    "answer_summary",
    "notified_at",
    "analysis",
    "evidence",
    ANSWER,
)
RECONSIDERATION = Stage(
    "reconsideration",
    "rec_filed_at",
    "rec_answer_due",
    "rec_extended_at",
    "rec_extension_reason",
    "rec_answered_at",
    "rec_outcome",
    "rec_summary",
    "rec_notified_at",
    "reconsideration",
    "reconsideration_evidence",
    ANSWER_RECONSIDERATION,
)
STAGE_OF_STATE = {
    "analysis": INITIAL,
    "evidence": INITIAL,
    "reconsideration": RECONSIDERATION,
    "reconsideration_evidence": RECONSIDERATION,
}

STATES = {
    "analysis": pb.PQR_STATE_ANALYSIS,
    "evidence": pb.PQR_STATE_EVIDENCE,
    "answered": pb.PQR_STATE_ANSWERED,
    "reconsideration": pb.PQR_STATE_RECONSIDERATION,
    "reconsideration_evidence": pb.PQR_STATE_RECONSIDERATION_EVIDENCE,
    "silence_applied": pb.PQR_STATE_SILENCE_APPLIED,
    "transfer_due": pb.PQR_STATE_TRANSFER_DUE,
    "appeal": pb.PQR_STATE_APPEAL,
    "closed": pb.PQR_STATE_CLOSED,
}
SMS_STATES = {
    "received": pb.SMS_REQUEST_STATE_RECEIVED,
    "registered": pb.SMS_REQUEST_STATE_REGISTERED,
    "closed_unreachable": pb.SMS_REQUEST_STATE_CLOSED_UNREACHABLE,
}


def _inverse(mapping: dict[Any, str]) -> dict[str, Any]:
    return {name: value for value, name in mapping.items()}


KIND_VALUES = _inverse(check.KINDS)
CHANNEL_VALUES = _inverse(check.CHANNELS)
SUBJECT_VALUES = _inverse(check.SUBJECTS)
OUTCOME_VALUES = _inverse(check.OUTCOMES)
DOCUMENT_VALUES = _inverse(check.DOCUMENT_TYPES)


def _month_bounds(calendar: Any, month: str) -> tuple[datetime, datetime]:
    year, number = int(month[:4]), int(month[5:7])
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return calendar.at(first, time(0, 0)), calendar.at(following, time(0, 0))


class PqrHandler:
    """Commands, deadlines and queries of PQRs and SMS QUEJA requests."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.calendar = core.calendar(JURISDICTION)

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

    # ------------------------------------------------------------------ messages

    def message(self, row: Any) -> pb.Pqr:
        """A pqrs row as its API message, with the texts the user reads."""
        return pb.Pqr(
            cun=row["id"],
            provider=row["provider"],
            kind=KIND_VALUES[row["kind"]],
            channel=CHANNEL_VALUES[row["channel"]],
            subject=SUBJECT_VALUES[row["subject"]],
            state=STATES[row["state"]],
            user=pb.UserData(
                name=row["user_name"],
                document_type=DOCUMENT_VALUES[row["document_type"]],
                document_number=row["document_number"],
                email=row["email"] or "",
                address=row["address"] or "",
                phone=row["phone"] or "",
            ),
            facts=row["facts"],
            sms_request_id=row["sms_request_id"] or "",
            filed_at=to_timestamp(row["filed_at"]),
            answer_deadline=to_timestamp(row["answer_due"]),
            extended_at=to_timestamp(row["extended_at"]),
            extension_reason=row["extension_reason"] or "",
            answered_at=to_timestamp(row["answered_at"]),
            outcome=OUTCOME_VALUES.get(row["outcome"] or "", 0),
            answer_summary=row["answer_summary"] or "",
            notified_at=to_timestamp(row["notified_at"]),
            reconsideration_until=to_timestamp(row["reconsideration_until"]),
            reconsideration_filed_at=to_timestamp(row["rec_filed_at"]),
            appeal_in_subsidy=row["appeal_in_subsidy"],
            reconsideration_facts=row["rec_facts"] or "",
            reconsideration_deadline=to_timestamp(row["rec_answer_due"]),
            reconsideration_extended_at=to_timestamp(row["rec_extended_at"]),
            reconsideration_answered_at=to_timestamp(row["rec_answered_at"]),
            reconsideration_outcome=OUTCOME_VALUES.get(row["rec_outcome"] or "", 0),
            reconsideration_summary=row["rec_summary"] or "",
            reconsideration_notified_at=to_timestamp(row["rec_notified_at"]),
            silence_at=to_timestamp(row["silence_at"]),
            silence_effects_deadline=to_timestamp(row["silence_effects_due"]),
            silence_effects_at=to_timestamp(row["silence_effects_at"]),
            transfer_deadline=to_timestamp(row["transfer_due"]),
            transferred_at=to_timestamp(row["transferred_at"]),
            appeal_deadline=to_timestamp(row["appeal_due"]),
            appeal_outcome=OUTCOME_VALUES.get(row["appeal_outcome"] or "", 0),
            closed_at=to_timestamp(row["closed_at"]),
            status_sentence=texts.status_sentence(self.calendar, row),
            transfer_notice=texts.transfer_notice(self.calendar, row),
            recourse_notice=texts.RECOURSE_NOTICE if row["answered_at"] is not None else "",
        )

    def sms_message(self, row: Any, provider_name: str) -> pb.SmsRequest:
        """A pqr_sms_requests row as its API message."""
        return pb.SmsRequest(
            id=row["id"],
            provider=row["provider"],
            msisdn=row["msisdn"],
            state=SMS_STATES[row["state"]],
            received_at=to_timestamp(row["received_at"]),
            acknowledgement_deadline=to_timestamp(row["ack_due"]),
            acknowledged_at=to_timestamp(row["acknowledged_at"]),
            call_deadline=to_timestamp(row["call_due"]),
            call_attempts=row["call_attempts"],
            last_attempt_at=to_timestamp(row["last_attempt_at"]),
            contacted_at=to_timestamp(row["contacted_at"]),
            cun=row["cun"] or "",
            closed_at=to_timestamp(row["closed_at"]),
            acknowledgement_text=texts.acknowledgement(provider_name),
        )

    def _emit(self, txn: Txn, type_: str, row: Any, sender: str, **extra: Any) -> None:
        payload = {
            "cun": row["id"],
            "provider": row["provider"],
            "kind": row["kind"],
            "subject": row["subject"],
            "state": row["state"],
            **extra,
        }
        txn.emit(
            FLOW,
            f"pqr.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=(row["provider"],),
            payload=payload,
        )

    async def _breach(self, txn: Txn, rule: Rule, row: Any, due: datetime, **evidence: Any) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=row["provider"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={"due_at": due.isoformat(), **evidence},
        )

    async def _notify_user(self, txn: Txn, row: Any, subject: str, body: str) -> None:
        """Tell the user by e-mail when there is one, else by SMS to the line given."""
        if row["email"]:
            await queue_email(
                txn, to=row["email"], subject=subject, body=body, flow=FLOW, case_id=row["id"]
            )
        elif row["phone"]:
            # The SMS carries what fits the outbox's longest message, not a shorter cut of its own.
            text = body[:MAX_SMS_TEXT]
            await queue_sms(txn, to=row["phone"], text=text, flow=FLOW, case_id=row["id"])

    async def _provider_name(self, conn: asyncpg.Connection, provider: str) -> str:
        return str(await name_of(conn, provider))

    # ------------------------------------------------------------------ CUN ranges

    async def assign_cun_range(
        self, txn: Txn, caller: Caller, request: pb.AssignCunRangeRequest
    ) -> pb.CunRange:
        """The SIC assigns a range of CUNs to a provider (art. 2.1.5.3, parágrafo 2)."""
        v = Violations()
        check.check_provider(v, "provider", request.provider)
        check.check_cun(v, "first", request.first)
        check.check_cun(v, "last", request.last)
        if check.CUN.fullmatch(request.first) and check.CUN.fullmatch(request.last):
            if len(request.first) != len(request.last):
                v.add("last", "first and last have the same number of digits")
            elif int(request.first) > int(request.last):
                v.add("last", "not before first")
        v.raise_if_any()
        if not caller.is_regulator:
            raise PermissionDenied("only the regulator (SIC) assigns CUN ranges")
        # A provider under the regulator's own regime: the SIC assigns no CUN to a Peruvian operator.
        if not await is_operator(txn.conn, request.provider, country=caller.country):
            raise NotFound("provider", request.provider)
        try:
            row = await txn.conn.fetchrow(
                """INSERT INTO cun_ranges (operator_id, numbers, width, next_value, assigned_at,
                                           assigned_by)
                   VALUES ($1, int8range($2, $3, '[]'), $4, $2, $5, $6) RETURNING *""",
                request.provider,
                int(request.first),
                int(request.last),
                len(request.first),
                txn.now,
                caller.operator,
            )
        except asyncpg.ExclusionViolationError:
            raise AlreadyExists(
                "cun_range",
                f"{request.first}-{request.last}",
                "the range overlaps a CUN range already assigned",
            ) from None
        txn.emit(
            FLOW,
            "pqr.cun_range_assigned",
            case_id=None,
            sender=caller.operator,
            audience=(request.provider,),
            payload={"provider": request.provider, "first": request.first, "last": request.last},
        )
        return self._range_message(row)

    def _range_message(self, row: Any) -> pb.CunRange:
        width = row["width"]
        upper = row["numbers"].upper - 1
        following = row["next_value"]
        return pb.CunRange(
            provider=row["operator_id"],
            first=str(row["numbers"].lower).zfill(width),
            last=str(upper).zfill(width),
            next=str(following).zfill(width) if following <= upper else "",
            assigned_at=to_timestamp(row["assigned_at"]),
        )

    async def _allocate_cun(self, txn: Txn, provider: str) -> str:
        """The next free CUN of the provider's lowest range with room.

        The range row is locked while its counter moves, so concurrent filings never share a
        CUN. A filing that waited on a range exhausted meanwhile tries the next range.
        """
        for _ in range(5):
            row = await txn.conn.fetchrow(
                """UPDATE cun_ranges SET next_value = next_value + 1
                   WHERE id = (SELECT id FROM cun_ranges
                               WHERE operator_id = $1 AND next_value < upper(numbers)
                               ORDER BY lower(numbers) LIMIT 1 FOR UPDATE)
                     AND next_value < upper(numbers)
                   RETURNING next_value - 1 AS value, width""",
                provider,
            )
            if row is not None:
                return str(row["value"]).zfill(row["width"])
            has_room = await txn.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM cun_ranges WHERE operator_id = $1"
                " AND next_value < upper(numbers))",
                provider,
            )
            if not has_room:
                break
        raise FailedPrecondition(
            f"{provider} has no CUN left: the SIC must assign it a CUN range",
            violation_type="NO_CUN_RANGE",
            subject=provider,
        )

    # ------------------------------------------------------------------ filing

    async def file_pqr(self, txn: Txn, caller: Caller, request: pb.FilePqrRequest) -> pb.Pqr:
        """A user presented a petition or complaint to the provider; it gets its CUN."""
        v = Violations()
        if request.kind not in check.KINDS:
            v.add("kind", "required: PETITION or COMPLAINT")
        if request.channel not in check.CHANNELS or request.channel == pb.PQR_CHANNEL_SMS_85432:
            v.add(
                "channel",
                "required: OFFICE, PHONE_LINE, WEBSITE or SOCIAL_NETWORK (SMS QUEJA requests are"
                " registered by RecordCallAttempt)",
            )
        if request.subject not in check.SUBJECTS:
            v.add("subject", "required: what the PQR is about")
        check.check_user(v, "user", request.user)
        check.check_text(v, "facts", request.facts, "the facts the PQR rests on")
        v.raise_if_any()
        if caller.is_regulator:
            raise PermissionDenied("PQRs are filed by the provider that received them")
        row = await self._register(
            txn,
            caller.operator,
            kind=check.KINDS[request.kind],
            channel=check.CHANNELS[request.channel],
            subject=check.SUBJECTS[request.subject],
            user=request.user,
            facts=request.facts,
            sms_request_id=None,
        )
        return self.message(row)

    async def _register(
        self,
        txn: Txn,
        provider: str,
        *,
        kind: str,
        channel: str,
        subject: str,
        user: pb.UserData,
        facts: str,
        sms_request_id: str | None,
    ) -> Any:
        cun = await self._allocate_cun(txn, provider)
        due = self.calendar.end_of_business_days(txn.now, ANSWER_DAYS)
        await txn.lock_case(FLOW, cun)
        row = await txn.conn.fetchrow(
            """INSERT INTO pqrs (id, provider, kind, channel, subject, state, user_name,
                   document_type, document_number, email, address, phone, facts, sms_request_id,
                   filed_at, answer_due)
               VALUES ($1, $2, $3, $4, $5, 'analysis', $6, $7, $8, $9, $10, $11, $12, $13, $14,
                       $15)
               RETURNING *""",
            cun,
            provider,
            kind,
            channel,
            subject,
            user.name,
            check.DOCUMENT_TYPES[user.document_type],
            user.document_number,
            user.email or None,
            user.address or None,
            user.phone or None,
            facts,
            sms_request_id,
            txn.now,
            due,
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            cun,
            due,
            "answer within 15 business days from the day after filing; else positive silence"
            " (art. 2.1.5.2)",
        )
        self._emit(txn, "filed", row, provider, answer_due=due.isoformat())
        word = texts.KIND_WORDS[kind]
        await self._notify_user(
            txn,
            row,
            f"Constancia de presentación de su {word} - CUN {cun}",
            f"Su {word} fue radicada el {texts.moment(self.calendar, txn.now)} bajo el Código "
            f"Único Numérico -CUN- {cun}. Con este código puede consultar su estado en cualquier "
            f"momento. Será respondida a más tardar el día {texts.last_day(self.calendar, due)}.",
        )
        return row

    # ------------------------------------------------------------------ the provider's answer

    def _stage(self, row: Any) -> Stage:
        stage = STAGE_OF_STATE.get(row["state"])
        if stage is None:
            raise FailedPrecondition(
                f"{row['id']} awaits no answer from the provider ({row['state']})",
                subject=row["id"],
            )
        return stage

    async def _late_answer(self, txn: Txn, row: Any, stage: Stage) -> None:
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
        self, txn: Txn, caller: Caller, request: pb.ExtendPqrForEvidenceRequest
    ) -> pb.Pqr:
        """Evidence is needed: 15 more business days, with the motivation told to the user."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "reason", request.reason, "the motivation told to the user", 2000)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller.operator, "provider")
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
            "answer within 15 more business days for evidence; else positive silence"
            " (art. 2.1.5.2)",
        )
        self._emit(txn, "extended", row, caller.operator, answer_due=due.isoformat())
        await self._notify_user(
            txn,
            row,
            f"Ampliación del término de su PQR - CUN {row['id']}",
            f"Para la práctica de pruebas, el término para responder su PQR radicada bajo el CUN "
            f"{row['id']} se amplía hasta el día {texts.last_day(self.calendar, due)}. Motivo: "
            f"{request.reason}",
        )
        return self.message(row)

    async def answer(self, txn: Txn, caller: Caller, request: pb.AnswerPqrRequest) -> pb.Pqr:
        """The provider's decision on the petition, complaint or reconsideration."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        if request.outcome not in check.OUTCOMES:
            v.add("outcome", "required: FAVORABLE, PARTIALLY_FAVORABLE or UNFAVORABLE")
        check.check_text(v, "summary", request.summary, "a summary of the decision")
        notified = timestamp(v, "notified_at", request, "notified_at", required=False)
        if notified is not None and notified > txn.now:
            v.add("notified_at", "not in the future")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller.operator, "provider")
        stage = self._stage(row)
        notified = notified or txn.now
        if notified < row[stage.filed]:
            raise FailedPrecondition(
                "the notification cannot precede the filing",
                violation_type="NOTIFIED_BEFORE_FILING",
                subject=row["id"],
            )
        await self._late_answer(txn, row, stage)
        outcome = check.OUTCOMES[request.outcome]
        changes: dict[str, Any] = {
            stage.answered: txn.now,
            stage.outcome: outcome,
            stage.summary: request.summary,
            stage.notified: notified,
        }
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        if stage is INITIAL:
            until = self.calendar.end_of_business_days(notified, RECONSIDERATION_DAYS)
            changes |= {"state": "answered", "reconsideration_until": until}
            txn.set_deadline(
                FLOW,
                DeadlineKind.RECONSIDERATION_WINDOW,
                row["id"],
                until,
                "reconsideration within 10 business days of the notification (art. 2.1.5.9.1)",
            )
        elif row["appeal_in_subsidy"] and outcome != "favorable":
            due = self.calendar.end_of_business_days(notified, TRANSFER_DAYS)
            changes |= {"state": "transfer_due", "transfer_due": due}
            txn.set_deadline(
                FLOW,
                DeadlineKind.SEND_TO_SIC,
                row["id"],
                due,
                "send the file to the SIC within 5 business days of the notification of the"
                " reconsideration decision (art. 2.1.5.9.3 c)",
            )
        else:
            changes |= {"state": "closed", "closed_at": txn.now}
        row = await CASES.update(txn, row["id"], changes)
        self._emit(txn, "answered", row, caller.operator, stage=stage.name, outcome=outcome)
        return self.message(row)

    # ------------------------------------------------------------------ positive silence

    async def _apply_silence(self, txn: Txn, row: Any, stage: Stage, due: datetime) -> Any:
        """The term ended unanswered: the PQR counts as decided for the user (art. 2.1.5.2)."""
        effects_due = due + SILENCE_EFFECTS_WITHIN
        await self._breach(txn, stage.rule, row, due, stage=stage.name)
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": "silence_applied",
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
            "carry out the effects of positive silence within 72 hours (art. 2.1.5.2)",
        )
        self._emit(
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
            "debe materializar sus efectos a más tardar el "
            f"{texts.moment(self.calendar, effects_due)}; usted puede exigirlos de inmediato.",
        )
        return row

    async def confirm_silence_effects(
        self, txn: Txn, caller: Caller, request: pb.ConfirmSilenceEffectsRequest
    ) -> pb.Pqr:
        """The provider carried out the effects of the positive silence."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "description", request.description, "what was done", 2000)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller.operator, "provider")
        if row["state"] != "silence_applied":
            raise FailedPrecondition(
                f"no positive silence awaits its effects on {row['id']} ({row['state']})",
                subject=row["id"],
            )
        if txn.now > row["silence_effects_due"]:
            await self._breach(txn, SILENCE_EFFECTS, row, row["silence_effects_due"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": "closed",
                "silence_effects_at": txn.now,
                "silence_effects_note": request.description,
                "closed_at": txn.now,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"])
        self._emit(txn, "silence_effects_done", row, caller.operator)
        return self.message(row)

    # ------------------------------------------------------------------ recourses

    async def file_reconsideration(
        self, txn: Txn, caller: Caller, request: pb.FileReconsiderationRequest
    ) -> pb.Pqr:
        """The user disagrees with the answer: reconsideration, maybe with appeal in subsidy."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        check.check_text(v, "facts", request.facts, "the user's disagreement")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller.operator, "provider")
        if row["state"] != "answered":
            raise FailedPrecondition(
                f"{row['id']} has no answer open to reconsideration ({row['state']})",
                subject=row["id"],
            )
        if txn.now >= row["reconsideration_until"]:
            raise FailedPrecondition(
                "the 10 business days to file reconsideration ended on "
                f"{row['reconsideration_until'].isoformat()}",
                violation_type="TOO_LATE",
                subject=row["id"],
            )
        if request.appeal_in_subsidy and row["subject"] not in check.APPEALABLE:
            raise FailedPrecondition(
                "appeal to the SIC applies to billing, suspension, termination, cut and refusal"
                " to contract (art. 2.1.5.9)",
                violation_type="NOT_APPEALABLE",
                subject=row["id"],
            )
        due = self.calendar.end_of_business_days(txn.now, ANSWER_DAYS)
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": "reconsideration",
                "rec_filed_at": txn.now,
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
            "answer the reconsideration within 15 business days from the day after filing;"
            " else positive silence (art. 2.1.5.2)",
        )
        self._emit(
            txn,
            "reconsideration_filed",
            row,
            caller.operator,
            appeal_in_subsidy=request.appeal_in_subsidy,
            answer_due=due.isoformat(),
        )
        return self.message(row)

    async def record_transfer(
        self, txn: Txn, caller: Caller, request: pb.RecordTransferToSicRequest
    ) -> pb.Pqr:
        """The provider sent the complete file to the SIC for the appeal."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.cun, caller.operator, "provider")
        if row["state"] != "transfer_due":
            raise FailedPrecondition(
                f"{row['id']} has no appeal awaiting transfer ({row['state']})", subject=row["id"]
            )
        if txn.now > row["transfer_due"]:
            await self._breach(txn, TRANSFER, row, row["transfer_due"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": "appeal",
                "transferred_at": txn.now,
                "appeal_due": self.calendar.end_of_business_days(txn.now, SIC_DAYS),
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SEND_TO_SIC)
        self._emit(txn, "sent_to_sic", row, caller.operator)
        await self._notify_user(
            txn,
            row,
            f"Envío de su expediente a la SIC - CUN {row['id']}",
            texts.transfer_notice(self.calendar, row),
        )
        return self.message(row)

    async def decide_appeal(
        self, txn: Txn, caller: Caller, request: pb.DecideAppealRequest
    ) -> pb.Pqr:
        """The SIC decided the appeal: the PQR closes under the same CUN."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        if request.outcome not in check.OUTCOMES:
            v.add("outcome", "required: FAVORABLE, PARTIALLY_FAVORABLE or UNFAVORABLE")
        check.check_text(v, "summary", request.summary, "a summary of the decision")
        v.raise_if_any()
        if not caller.is_regulator:
            raise PermissionDenied("the SIC decides appeals")
        row = await CASES.lock(txn, request.cun)
        if row is None:
            raise NotFound("pqr", request.cun)
        if row["state"] != "appeal":
            raise FailedPrecondition(
                f"{row['id']} is not at the SIC ({row['state']})", subject=row["id"]
            )
        outcome = check.OUTCOMES[request.outcome]
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": "closed",
                "appeal_decided_at": txn.now,
                "appeal_outcome": outcome,
                "appeal_summary": request.summary,
                "closed_at": txn.now,
            },
        )
        self._emit(txn, "appeal_decided", row, caller.operator, outcome=outcome)
        return self.message(row)

    async def get_pqr(self, caller: Caller, request: pb.GetPqrRequest) -> pb.Pqr:
        """A PQR by CUN, for its provider and the regulator."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        v.raise_if_any()
        row = await CASES.read_for(
            self.core.db, request.cun, caller.operator, sees_all=caller.is_regulator
        )
        return self.message(row)

    # ------------------------------------------------------------------ SMS QUEJA to 85432

    async def receive_queja_sms(
        self, txn: Txn, caller: Caller, request: pb.ReceiveQuejaSmsRequest
    ) -> pb.SmsRequest:
        """An SMS with the word QUEJA reached code 85432 on the provider's network."""
        v = Violations()
        if not check.CO_MOBILE.fullmatch(request.msisdn):
            v.add("msisdn", "required: the user's line, 10 digits starting with 3")
        if request.short_code != check.SHORT_CODE:
            v.add("short_code", "required: 85432")
        if not check.QUEJA.search(request.text) or not check.printable(
            request.text, limit=check.MAX_SMS
        ):
            v.add("text", "required: the SMS text, with the word QUEJA")
        v.raise_if_any()
        if caller.is_regulator:
            raise PermissionDenied("SMS QUEJA requests come from the provider's network")
        has_range = await txn.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM cun_ranges WHERE operator_id = $1)", caller.operator
        )
        if not has_range:
            raise FailedPrecondition(
                f"{caller.operator} has no CUN range: it is not a provider under the PQR regime",
                violation_type="NO_CUN_RANGE",
                subject=caller.operator,
            )
        sms_id = f"SQ{await txn.conn.fetchval('SELECT nextval($1)', 'pqr_sms_seq'):010d}"
        ack_due = txn.now + ACKNOWLEDGE_WITHIN
        next_day = self.calendar.local_date(txn.now) + timedelta(days=1)
        call_due = self.calendar.at(next_day + timedelta(days=1), time(0, 0))
        await txn.lock_case(FLOW, sms_id)
        row = await txn.conn.fetchrow(
            """INSERT INTO pqr_sms_requests (id, provider, msisdn, text, state, received_at,
                   ack_due, call_due)
               VALUES ($1, $2, $3, $4, 'received', $5, $6, $7) RETURNING *""",
            sms_id,
            caller.operator,
            request.msisdn,
            request.text,
            txn.now,
            ack_due,
            call_due,
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.SMS_ACKNOWLEDGE,
            sms_id,
            ack_due,
            "acknowledgement SMS within 5 minutes (art. 2.1.5.1 par. 1 a)",
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.SMS_CALL,
            sms_id,
            call_due,
            "call the user by the end of the next calendar day (art. 2.1.5.1 par. 1 b)",
        )
        self._emit_sms(txn, "sms_received", row, caller.operator)
        name = await self._provider_name(txn.conn, caller.operator)
        return self.sms_message(row, name)

    def _emit_sms(self, txn: Txn, type_: str, row: Any, sender: str) -> None:
        txn.emit(
            FLOW,
            f"pqr.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=(row["provider"],),
            payload={
                "sms_request_id": row["id"],
                "provider": row["provider"],
                "msisdn": row["msisdn"],
                "state": row["state"],
                "cun": row["cun"],
            },
        )

    async def acknowledge_queja_sms(
        self, txn: Txn, caller: Caller, request: pb.AcknowledgeQuejaSmsRequest
    ) -> pb.SmsRequest:
        """The provider sent the acknowledgement SMS."""
        v = Violations()
        check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
        v.raise_if_any()
        row = await SMS.lock_for(txn, request.sms_request_id, caller.operator, "provider")
        if row["acknowledged_at"] is not None:
            raise FailedPrecondition(f"{row['id']} was already acknowledged", subject=row["id"])
        if txn.now > row["ack_due"]:
            await self._sms_breach(txn, SMS_ACKNOWLEDGE, row, row["ack_due"])
        row = await SMS.update(txn, row["id"], {"acknowledged_at": txn.now})
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_ACKNOWLEDGE)
        self._emit_sms(txn, "sms_acknowledged", row, caller.operator)
        return self.sms_message(row, await self._provider_name(txn.conn, row["provider"]))

    async def record_call_attempt(
        self, txn: Txn, caller: Caller, request: pb.RecordCallAttemptRequest
    ) -> pb.SmsRequest:
        """A call to the user: answered, it registers the complaint with its CUN."""
        v = Violations()
        check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
        if request.answered:
            complaint = request.complaint
            if complaint.subject not in check.SUBJECTS:
                v.add("complaint.subject", "required: what the complaint is about")
            check.check_user(v, "complaint.user", complaint.user)
            check.check_text(v, "complaint.facts", complaint.facts, "the facts of the complaint")
        elif request.HasField("complaint"):
            v.add("complaint", "only an answered call registers a complaint")
        v.raise_if_any()
        row = await SMS.lock_for(txn, request.sms_request_id, caller.operator, "provider")
        if row["state"] != "received":
            raise FailedPrecondition(
                f"{row['id']} is no longer awaiting a call ({row['state']})", subject=row["id"]
            )
        last = row["last_attempt_at"]
        if not request.answered and last is not None and txn.now < last + ATTEMPT_SPACING:
            raise FailedPrecondition(
                "call attempts count 30 minutes apart at least; the next from "
                f"{(last + ATTEMPT_SPACING).isoformat()}",
                violation_type="TOO_EARLY",
                subject=row["id"],
            )
        if row["first_attempt_at"] is None and txn.now > row["call_due"]:
            await self._sms_breach(txn, SMS_CALL, row, row["call_due"])
        changes: dict[str, Any] = {
            "first_attempt_at": row["first_attempt_at"] or txn.now,
            "last_attempt_at": txn.now,
        }
        name = await self._provider_name(txn.conn, row["provider"])
        if request.answered:
            pqr = await self._register(
                txn,
                row["provider"],
                kind="complaint",
                channel="sms_85432",
                subject=check.SUBJECTS[request.complaint.subject],
                user=request.complaint.user,
                facts=request.complaint.facts,
                sms_request_id=row["id"],
            )
            changes |= {"state": "registered", "contacted_at": txn.now, "cun": pqr["id"]}
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_CALL)
            row = await SMS.update(txn, row["id"], changes)
            self._emit_sms(txn, "sms_registered", row, caller.operator)
            return self.sms_message(row, name)
        attempts = row["call_attempts"] + 1
        changes["call_attempts"] = attempts
        if attempts >= UNANSWERED_ATTEMPTS_TO_CLOSE:
            changes |= {"state": "closed_unreachable", "closed_at": txn.now}
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SMS_CALL)
            await queue_sms(
                txn,
                to=row["msisdn"],
                text=texts.unreachable_notice(name),
                flow=FLOW,
                case_id=row["id"],
            )
        row = await SMS.update(txn, row["id"], changes)
        closed = row["state"] == "closed_unreachable"
        self._emit_sms(txn, "sms_closed" if closed else "sms_call_unanswered", row, caller.operator)
        return self.sms_message(row, name)

    async def get_sms_request(
        self, caller: Caller, request: pb.GetSmsRequestRequest
    ) -> pb.SmsRequest:
        """An SMS QUEJA request, for its provider and the regulator."""
        v = Violations()
        check.check_sms_request_id(v, "sms_request_id", request.sms_request_id)
        v.raise_if_any()
        row = await SMS.read_for(
            self.core.db, request.sms_request_id, caller.operator, sees_all=caller.is_regulator
        )
        async with self.core.db.pool.acquire() as conn:
            name = await self._provider_name(conn, row["provider"])
        return self.sms_message(row, name)

    async def _sms_breach(self, txn: Txn, rule: Rule, row: Any, due: datetime) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=row["provider"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={"due_at": due.isoformat(), "received_at": row["received_at"].isoformat()},
        )

    # ------------------------------------------------------------------ deadlines

    async def _unanswered(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] in STAGE_OF_STATE:
            await self._apply_silence(txn, row, STAGE_OF_STATE[row["state"]], deadline.due_at)

    async def _silence_effects_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == "silence_applied":
            await self._breach(txn, SILENCE_EFFECTS, row, deadline.due_at)

    async def _window_closed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == "answered":
            row = await CASES.update(txn, row["id"], {"state": "closed", "closed_at": txn.now})
            self._emit(txn, "closed", row, CLEARINGHOUSE)

    async def _transfer_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == "transfer_due":
            await self._breach(txn, TRANSFER, row, deadline.due_at)

    async def _sms_not_acknowledged(self, txn: Txn, deadline: Deadline) -> None:
        row = await SMS.lock(txn, deadline.case_id)
        if row is not None and row["acknowledged_at"] is None:
            await self._sms_breach(txn, SMS_ACKNOWLEDGE, row, deadline.due_at)

    async def _sms_not_called(self, txn: Txn, deadline: Deadline) -> None:
        row = await SMS.lock(txn, deadline.case_id)
        if row is not None and row["first_attempt_at"] is None:
            await self._sms_breach(txn, SMS_CALL, row, deadline.due_at)

    # ------------------------------------------------------------------ queries for pages

    async def public_status(self, cun: str) -> dict[str, Any] | None:
        """What anyone holding a CUN may read (art. 2.1.5.14): no personal data.

        The seed gives the CUN as the key of the consultation, with no further identity check.

        Returns:
            ``{"cun", "provider", "provider_name", "kind", "state", "filed_at", "due_at",
            "sentence", "transfer_notice"}`` or None when there is no PQR with that CUN.
        """
        if not check.CUN.fullmatch(cun):
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM pqrs WHERE id = $1", cun)
            provider_name = None if row is None else await name_of(conn, row["provider"])
        if row is None or provider_name is None:
            return None
        due = {
            "analysis": row["answer_due"],
            "evidence": row["answer_due"],
            "reconsideration": row["rec_answer_due"],
            "reconsideration_evidence": row["rec_answer_due"],
            "appeal": row["appeal_due"],
            "transfer_due": row["transfer_due"],
            "silence_applied": row["silence_effects_due"],
            "answered": row["reconsideration_until"],
        }.get(row["state"])
        return {
            "cun": row["id"],
            "provider": row["provider"],
            "provider_name": provider_name,
            "kind": row["kind"],
            "state": row["state"],
            "filed_at": row["filed_at"],
            "due_at": due,
            "sentence": texts.status_sentence(self.calendar, row),
            "transfer_notice": texts.transfer_notice(self.calendar, row),
        }

    async def report(self, month: str, provider: str | None = None) -> list[dict[str, Any]]:
        """Monthly indicators per provider (art. 2.1.5.15.3, 2.1.5.15.4), Bogotá month.

        SMS requests count in the month they were received; answers, silences and transfers in
        the month they happened; late silence effects and late transfers are the compliance
        records whose due instant fell in the month. Percentages are 0 when nothing was counted.

        Args:
            month: ``YYYY-MM``.
            provider: one provider, or None for every provider holding a CUN range.
        """
        start, end = _month_bounds(self.calendar, month)
        async with self.core.db.pool.acquire() as conn:
            providers = [
                r["operator_id"]
                for r in await conn.fetch(
                    "SELECT DISTINCT operator_id FROM cun_ranges"
                    " WHERE $1::text IS NULL OR operator_id = $1 ORDER BY operator_id",
                    provider,
                )
            ]
            if provider is not None and provider not in providers:
                providers = [provider]
            sms = {
                r["provider"]: r
                for r in await conn.fetch(
                    """SELECT provider, count(*) AS n,
                              count(*) FILTER (WHERE acknowledged_at <= ack_due) AS ack,
                              count(*) FILTER (WHERE contacted_at <= call_due) AS contacted,
                              count(*) FILTER (WHERE state = 'closed_unreachable') AS unreachable
                       FROM pqr_sms_requests WHERE received_at >= $1 AND received_at < $2
                       GROUP BY provider""",
                    start,
                    end,
                )
            }
            counts = {
                r["provider"]: r
                for r in await conn.fetch(
                    """SELECT provider,
                         count(*) FILTER (WHERE filed_at >= $1 AND filed_at < $2) AS filed,
                         count(*) FILTER (WHERE silence_at >= $1 AND silence_at < $2) AS silences,
                         count(*) FILTER (WHERE transferred_at >= $1 AND transferred_at < $2)
                             AS transfers,
                         count(*) FILTER (WHERE answered_at >= $1 AND answered_at < $2)
                           + count(*) FILTER (WHERE rec_answered_at >= $1 AND rec_answered_at < $2)
                             AS answers,
                         count(*) FILTER (WHERE answered_at >= $1 AND answered_at < $2
                                          AND answered_at < answer_due)
                           + count(*) FILTER (WHERE rec_answered_at >= $1 AND rec_answered_at < $2
                                              AND rec_answered_at < rec_answer_due)
                             AS answers_in_time
                       FROM pqrs GROUP BY provider""",
                    start,
                    end,
                )
            }
            late = {
                (r["operator_id"], r["rule"]): r["n"]
                for r in await conn.fetch(
                    """SELECT operator_id, rule, count(*) AS n FROM compliance_records
                       WHERE flow = $1 AND due_at >= $2 AND due_at < $3
                       GROUP BY operator_id, rule""",
                    FLOW,
                    start,
                    end,
                )
            }
            subjects: dict[str, list[tuple[str, int]]] = {}
            for r in await conn.fetch(
                """SELECT provider, subject, count(*) AS n FROM pqrs
                   WHERE kind = 'complaint' AND filed_at >= $1 AND filed_at < $2
                   GROUP BY provider, subject ORDER BY provider, n DESC, subject""",
                start,
                end,
            ):
                subjects.setdefault(r["provider"], []).append((r["subject"], r["n"]))
        rows = []
        for name in providers:
            s = sms.get(name)
            c = counts.get(name)
            n = s["n"] if s else 0
            answers = c["answers"] if c else 0
            rows.append(
                {
                    "provider": name,
                    "month": month,
                    "sms_requests": n,
                    "sms_acknowledged_in_time": s["ack"] if s else 0,
                    "sms_acknowledged_in_time_pct": _pct(s["ack"] if s else 0, n),
                    "sms_contacted_in_time": s["contacted"] if s else 0,
                    "sms_contacted_in_time_pct": _pct(s["contacted"] if s else 0, n),
                    "sms_closed_unreachable": s["unreachable"] if s else 0,
                    "pqrs_filed": c["filed"] if c else 0,
                    "answers": answers,
                    "answers_in_time": c["answers_in_time"] if c else 0,
                    "answers_in_time_pct": _pct(c["answers_in_time"] if c else 0, answers),
                    "silences_applied": c["silences"] if c else 0,
                    "silence_effects_late": late.get((name, SILENCE_EFFECTS.key), 0),
                    "transfers_to_sic": c["transfers"] if c else 0,
                    "transfers_to_sic_late": late.get((name, TRANSFER.key), 0),
                    "frequent_complaints": subjects.get(name, []),
                }
            )
        return rows

    async def monthly_indicators(
        self, caller: Caller, request: pb.GetMonthlyIndicatorsRequest
    ) -> pb.GetMonthlyIndicatorsResponse:
        """The monthly indicators: the regulator's of any provider, a provider's of its own."""
        v = Violations()
        if not check.MONTH.fullmatch(request.month):
            v.add("month", "required: YYYY-MM")
        if request.provider:
            check.check_provider(v, "provider", request.provider)
        v.raise_if_any()
        provider: str | None = request.provider or None
        if not caller.is_regulator:
            if provider not in (None, caller.operator):
                raise PermissionDenied("a provider reads its own indicators only")
            provider = caller.operator
        rows = await self.report(request.month, provider)
        return pb.GetMonthlyIndicatorsResponse(
            providers=[
                pb.ProviderIndicators(
                    **{k: value for k, value in row.items() if k != "frequent_complaints"},
                    frequent_complaints=[
                        pb.SubjectCount(subject=SUBJECT_VALUES[s], complaints=n)
                        for s, n in row["frequent_complaints"]
                    ],
                )
                for row in rows
            ]
        )


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
