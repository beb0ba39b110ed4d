"""PqrService's messages in and out: requests parsed into the flow's commands, the handler's
rows rendered as API messages. The enums map by name (`WireEnum`); nothing here decides."""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.instants import read_instant, to_timestamp
from npc.flows.pqr import model, texts
from npc.flows.pqr.rules import Channel, DocumentType, Kind, Outcome, SmsState, State, Subject
from npc.v1 import pqr_pb2 as pb

KINDS = WireEnum(pb.PqrKind, Kind)
CHANNELS = WireEnum(pb.PqrChannel, Channel)
SUBJECTS = WireEnum(pb.PqrSubject, Subject)
OUTCOMES = WireEnum(pb.PqrOutcome, Outcome)
DOCUMENT_TYPES = WireEnum(pb.UserDocumentType, DocumentType)
STATES = WireEnum(pb.PqrState, State)
SMS_STATES = WireEnum(pb.SmsRequestState, SmsState)


def _user(user: pb.UserData) -> model.UserData:
    return model.UserData(
        name=user.name,
        document_type=DOCUMENT_TYPES.to_domain(user.document_type),
        document_number=user.document_number,
        email=user.email,
        address=user.address,
        phone=user.phone,
    )


# ------------------------------------------------------------------ requests


def assign_cun_range(request: pb.AssignCunRangeRequest) -> model.AssignCunRange:
    """AssignCunRange's request."""
    return model.AssignCunRange(provider=request.provider, first=request.first, last=request.last)


def file_pqr(request: pb.FilePqrRequest) -> model.FilePqr:
    """FilePqr's request."""
    return model.FilePqr(
        kind=KINDS.to_domain(request.kind),
        channel=CHANNELS.to_domain(request.channel),
        subject=SUBJECTS.to_domain(request.subject),
        user=_user(request.user),
        facts=request.facts,
        presented_at=read_instant(request, "presented_at"),
        verbal=request.verbal,
    )


def extend_for_evidence(request: pb.ExtendPqrForEvidenceRequest) -> model.ExtendPqrForEvidence:
    """ExtendPqrForEvidence's request."""
    return model.ExtendPqrForEvidence(cun=request.cun, reason=request.reason)


def answer(request: pb.AnswerPqrRequest) -> model.AnswerPqr:
    """AnswerPqr's request."""
    return model.AnswerPqr(
        cun=request.cun,
        outcome=OUTCOMES.to_domain(request.outcome),
        summary=request.summary,
        notified_at=read_instant(request, "notified_at"),
    )


def confirm_silence_effects(
    request: pb.ConfirmSilenceEffectsRequest,
) -> model.ConfirmSilenceEffects:
    """ConfirmSilenceEffects's request."""
    return model.ConfirmSilenceEffects(cun=request.cun, description=request.description)


def file_reconsideration(request: pb.FileReconsiderationRequest) -> model.FileReconsideration:
    """FileReconsideration's request."""
    return model.FileReconsideration(
        cun=request.cun,
        appeal_in_subsidy=request.appeal_in_subsidy,
        facts=request.facts,
        presented_at=read_instant(request, "presented_at"),
    )


def record_transfer(request: pb.RecordTransferToSicRequest) -> model.RecordTransferToSic:
    """RecordTransferToSic's request."""
    return model.RecordTransferToSic(cun=request.cun)


def decide_appeal(request: pb.DecideAppealRequest) -> model.DecideAppeal:
    """DecideAppeal's request."""
    return model.DecideAppeal(
        cun=request.cun, outcome=OUTCOMES.to_domain(request.outcome), summary=request.summary
    )


def get_pqr(request: pb.GetPqrRequest) -> model.GetPqr:
    """GetPqr's request."""
    return model.GetPqr(cun=request.cun)


def receive_queja_sms(request: pb.ReceiveQuejaSmsRequest) -> model.ReceiveQuejaSms:
    """ReceiveQuejaSms's request."""
    return model.ReceiveQuejaSms(
        msisdn=request.msisdn, short_code=request.short_code, text=request.text
    )


def acknowledge_queja_sms(request: pb.AcknowledgeQuejaSmsRequest) -> model.AcknowledgeQuejaSms:
    """AcknowledgeQuejaSms's request."""
    return model.AcknowledgeQuejaSms(sms_request_id=request.sms_request_id)


def record_call_attempt(request: pb.RecordCallAttemptRequest) -> model.RecordCallAttempt:
    """RecordCallAttempt's request (`complaint` None when the request has none)."""
    complaint = None
    if request.HasField("complaint"):
        complaint = model.CallComplaint(
            subject=SUBJECTS.to_domain(request.complaint.subject),
            user=_user(request.complaint.user),
            facts=request.complaint.facts,
        )
    return model.RecordCallAttempt(
        sms_request_id=request.sms_request_id, answered=request.answered, complaint=complaint
    )


def get_sms_request(request: pb.GetSmsRequestRequest) -> model.GetSmsRequest:
    """GetSmsRequest's request."""
    return model.GetSmsRequest(sms_request_id=request.sms_request_id)


def monthly_indicators(request: pb.GetMonthlyIndicatorsRequest) -> model.GetMonthlyIndicators:
    """GetMonthlyIndicators's request."""
    return model.GetMonthlyIndicators(month=request.month, provider=request.provider)


# ------------------------------------------------------------------ answers


def cun_range_message(row: Record) -> pb.CunRange:
    """A cun_ranges row; `next` is empty once the range is exhausted."""
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


def pqr_message(case: model.PqrCase) -> pb.Pqr:
    """A PQR with the texts the user reads."""
    row = case.row
    return pb.Pqr(
        cun=row["id"],
        provider=row["provider"],
        kind=pb.PqrKind.ValueType(KINDS.to_wire(row["kind"])),
        channel=pb.PqrChannel.ValueType(CHANNELS.to_wire(row["channel"])),
        subject=pb.PqrSubject.ValueType(SUBJECTS.to_wire(row["subject"])),
        state=pb.PqrState.ValueType(STATES.to_wire(row["state"])),
        user=pb.UserData(
            name=row["user_name"],
            document_type=pb.UserDocumentType.ValueType(
                DOCUMENT_TYPES.to_wire(row["document_type"])
            ),
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
        outcome=pb.PqrOutcome.ValueType(OUTCOMES.to_wire(row["outcome"])),
        answer_summary=row["answer_summary"] or "",
        notified_at=to_timestamp(row["notified_at"]),
        reconsideration_until=to_timestamp(row["reconsideration_until"]),
        reconsideration_filed_at=to_timestamp(row["rec_filed_at"]),
        appeal_in_subsidy=row["appeal_in_subsidy"],
        reconsideration_facts=row["rec_facts"] or "",
        reconsideration_deadline=to_timestamp(row["rec_answer_due"]),
        reconsideration_extended_at=to_timestamp(row["rec_extended_at"]),
        reconsideration_answered_at=to_timestamp(row["rec_answered_at"]),
        reconsideration_outcome=pb.PqrOutcome.ValueType(OUTCOMES.to_wire(row["rec_outcome"])),
        reconsideration_summary=row["rec_summary"] or "",
        reconsideration_notified_at=to_timestamp(row["rec_notified_at"]),
        silence_at=to_timestamp(row["silence_at"]),
        silence_effects_deadline=to_timestamp(row["silence_effects_due"]),
        silence_effects_at=to_timestamp(row["silence_effects_at"]),
        transfer_deadline=to_timestamp(row["transfer_due"]),
        transferred_at=to_timestamp(row["transferred_at"]),
        appeal_deadline=to_timestamp(row["appeal_due"]),
        appeal_outcome=pb.PqrOutcome.ValueType(OUTCOMES.to_wire(row["appeal_outcome"])),
        closed_at=to_timestamp(row["closed_at"]),
        status_sentence=case.status_sentence,
        transfer_notice=case.transfer_notice,
        recourse_notice=texts.RECOURSE_NOTICE if row["answered_at"] is not None else "",
    )


def sms_message(case: model.SmsCase) -> pb.SmsRequest:
    """An SMS QUEJA request with the acknowledgement its provider sends."""
    row = case.row
    return pb.SmsRequest(
        id=row["id"],
        provider=row["provider"],
        msisdn=row["msisdn"],
        state=pb.SmsRequestState.ValueType(SMS_STATES.to_wire(row["state"])),
        received_at=to_timestamp(row["received_at"]),
        acknowledgement_deadline=to_timestamp(row["ack_due"]),
        acknowledged_at=to_timestamp(row["acknowledged_at"]),
        call_deadline=to_timestamp(row["call_due"]),
        call_attempts=row["call_attempts"],
        last_attempt_at=to_timestamp(row["last_attempt_at"]),
        contacted_at=to_timestamp(row["contacted_at"]),
        cun=row["cun"] or "",
        closed_at=to_timestamp(row["closed_at"]),
        acknowledgement_text=texts.acknowledgement(case.provider_name),
    )


def _counts(row: model.ProviderIndicators) -> dict[str, Any]:
    return {k: value for k, value in row.items() if k != "frequent_complaints"}


def indicators_message(
    rows: list[model.ProviderIndicators],
) -> pb.GetMonthlyIndicatorsResponse:
    """The monthly indicators, one entry per provider."""
    return pb.GetMonthlyIndicatorsResponse(
        providers=[
            pb.ProviderIndicators(
                **_counts(row),
                frequent_complaints=[
                    pb.SubjectCount(
                        subject=pb.PqrSubject.ValueType(SUBJECTS.to_wire(s)), complaints=n
                    )
                    for s, n in row["frequent_complaints"]
                ],
            )
            for row in rows
        ]
    )
