"""Bodies of the user management system (`sgu.*`), from npc.flows.sgu.events."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload, enum, identity, instant
from npc.v1 import common_pb2, sgu_pb2

PROBLEM_TYPES = (
    "sgu.problem.transferred",
    "sgu.problem.deadline_moved",
    "sgu.problem.answered",
    "sgu.problem.overdue",
    "sgu.problem.rated",
    "sgu.claim.requested",
    "sgu.claim.code_assigned",
)


def problem(payload: Payload) -> sgu_pb2.Problem:
    """The problem, with the subscriber's name, document and email."""
    return sgu_pb2.Problem(
        id=payload["problem_id"],
        operator=payload["operator"],
        state=enum(sgu_pb2.ProblemState, payload.get("state")),
        channel=enum(sgu_pb2.Channel, payload.get("channel")),
        subscriber=common_pb2.Subscriber(
            name=payload.get("subscriber_name") or "",
            document=identity(payload.get("document_type"), payload.get("document_number")),
            email=payload.get("email") or "",
        ),
        number=payload.get("number") or "",
        category=payload.get("category") or "",
        subcategory=payload.get("subcategory") or "",
        description=payload.get("description") or "",
        answer_deadline=instant(payload.get("answer_deadline")),
        claim_code_deadline=instant(payload.get("claim_code_deadline")),
    )


def outage(payload: Payload) -> sgu_pb2.Outage:
    """An outage the regulator recorded (no operator: the SGU itself was down)."""
    return sgu_pb2.Outage(
        id=payload["outage_id"],
        operator=payload.get("operator") or "",
        starts_at=instant(payload.get("starts_at")),
        ends_at=instant(payload.get("ends_at")),
        reason=payload.get("reason") or "",
        deadlines_moved=payload.get("deadlines_moved") or 0,
    )


def subcategory(payload: Payload) -> sgu_pb2.Subcategory:
    """A changed subcategory of the catalogue: its code and whether it is active."""
    return sgu_pb2.Subcategory(code=payload["subcategory"], active=bool(payload.get("active")))


BODIES: dict[str, tuple[str, Converter]] = {
    **dict.fromkeys(PROBLEM_TYPES, ("sgu_problem", problem)),
    "sgu.outage.recorded": ("sgu_outage", outage),
    "sgu.catalogue.changed": ("sgu_subcategory", subcategory),
}
