"""Bodies of the PQR flow (`pqr.*`), from npc.flows.pqr.events: a PQR's change, an SMS QUEJA
request, a CUN range."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, instant
from npc.v1 import events_pb2, pqr_pb2

PQR_TYPES = (
    "filed",
    "extended",
    "answered",
    "silence_applied",
    "silence_effects_done",
    "closed",
    "reconsideration_filed",
    "sent_to_sic",
    "appeal_decided",
)
SMS_TYPES = (
    "sms_received",
    "sms_acknowledged",
    "sms_registered",
    "sms_closed",
    "sms_call_unanswered",
)


def _change(type_: str) -> Converter:
    """The converter of `pqr.<type_>`: where the type's extra facts go in the Pqr."""

    def convert(payload: Payload) -> events_pb2.PqrChange:
        case = pqr_pb2.Pqr(
            cun=payload["cun"],
            provider=payload["provider"],
            kind=enum(pqr_pb2.PqrKind, payload.get("kind")),
            subject=enum(pqr_pb2.PqrSubject, payload.get("subject")),
            state=enum(pqr_pb2.PqrState, payload.get("state")),
        )
        stage = enum(events_pb2.PqrStage, payload.get("stage"))
        due = instant(payload.get("answer_due"))
        if due is not None:
            # The answer falls due for the stage the event opened or extended.
            reconsidering = type_ == "reconsideration_filed" or (
                type_ == "extended" and payload.get("state") == "reconsideration_evidence"
            )
            target = case.reconsideration_deadline if reconsidering else case.answer_deadline
            target.CopyFrom(due)
        effects_due = instant(payload.get("effects_due"))
        if effects_due is not None:
            case.silence_effects_deadline.CopyFrom(effects_due)
        if "appeal_in_subsidy" in payload:
            case.appeal_in_subsidy = bool(payload["appeal_in_subsidy"])
        outcome = enum(pqr_pb2.PqrOutcome, payload.get("outcome"))
        if type_ == "appeal_decided":
            case.appeal_outcome = outcome
        elif stage == events_pb2.PQR_STAGE_RECONSIDERATION:
            case.reconsideration_outcome = outcome
        else:
            case.outcome = outcome
        return events_pb2.PqrChange(pqr=case, stage=stage)

    return convert


def sms_request(payload: Payload) -> pqr_pb2.SmsRequest:
    """An SMS QUEJA request: its id, provider, line, state and CUN."""
    return pqr_pb2.SmsRequest(
        id=payload["sms_request_id"],
        provider=payload["provider"],
        msisdn=payload.get("msisdn") or "",
        state=enum(pqr_pb2.SmsRequestState, payload.get("state")),
        cun=payload.get("cun") or "",
    )


def cun_range(payload: Payload) -> pqr_pb2.CunRange:
    """The range of CUNs a provider received."""
    return pqr_pb2.CunRange(
        provider=payload["provider"], first=payload["first"], last=payload["last"]
    )


BODIES: dict[str, tuple[str, Converter]] = {
    **{f"pqr.{t}": ("pqr", _change(t)) for t in PQR_TYPES},
    **{f"pqr.{t}": ("pqr_sms_request", sms_request) for t in SMS_TYPES},
    "pqr.cun_range_assigned": ("pqr_cun_range", cun_range),
}
