"""The user management system on the wire: requests into the flow's commands, rows and records
into answers. The enums are mapped by name (`WireEnum`), not by hand."""

from __future__ import annotations

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.instants import read_instant, to_timestamp
from npc.core.validation import DOCUMENT_TYPES
from npc.flows.sgu import model
from npc.flows.sgu.attention import TrayEntry
from npc.flows.sgu.rules import Channel, DeadlineUnit, State
from npc.v1 import common_pb2
from npc.v1 import sgu_pb2 as pb

STATES = WireEnum(pb.ProblemState, State)
CHANNELS = WireEnum(pb.Channel, Channel)
UNITS = WireEnum(pb.DeadlineUnit, DeadlineUnit)
# Stored document types by their wire numbers (the core keeps the wire numbers as its own).
DOCUMENT_NUMBERS = {name: number for number, name in DOCUMENT_TYPES.items()}


# ------------------------------------------------------------------ requests


def _document(document: common_pb2.IdentityDocument) -> model.IdentityDocument:
    return model.IdentityDocument(type=document.type, number=document.number)


def _subscriber(subscriber: common_pb2.Subscriber) -> model.Subscriber:
    return model.Subscriber(
        name=subscriber.name,
        legal_representative=subscriber.legal_representative,
        document=_document(subscriber.document),
        email=subscriber.email,
        contact_phone=subscriber.contact_phone,
    )


def _office(office: pb.Office) -> model.Office:
    return model.Office(
        code=office.code,
        name=office.name,
        department=office.department,
        province=office.province,
        district=office.district,
        ubigeo=office.ubigeo,
    )


def register_problem(request: pb.RegisterProblemRequest) -> model.RegisterProblem:
    """RegisterProblemRequest as the flow's command."""
    return model.RegisterProblem(
        channel=CHANNELS.to_domain(request.channel),
        subscriber=_subscriber(request.subscriber),
        number=request.number,
        subcategory=request.subcategory,
        description=request.description,
        office=_office(request.office) if request.HasField("office") else None,
        registered_by=request.registered_by,
    )


def confirm_email(request: pb.ConfirmEmailRequest) -> model.ConfirmEmail:
    """ConfirmEmailRequest as the flow's command."""
    return model.ConfirmEmail(token=request.token)


def answer_problem(request: pb.AnswerProblemRequest) -> model.AnswerProblem:
    """AnswerProblemRequest as the flow's command."""
    return model.AnswerProblem(
        problem_id=request.problem_id, answer=request.answer, solved=request.solved
    )


def rate_answer(request: pb.RateAnswerRequest) -> model.RateAnswer:
    """RateAnswerRequest as the flow's command."""
    return model.RateAnswer(
        problem_id=request.problem_id,
        document=_document(request.document),
        satisfied=request.satisfied,
        score=request.score,
    )


def escalate_to_claim(request: pb.EscalateToClaimRequest) -> model.EscalateToClaim:
    """EscalateToClaimRequest as the flow's command."""
    return model.EscalateToClaim(
        problem_id=request.problem_id, document=_document(request.document)
    )


def assign_claim_code(request: pb.AssignClaimCodeRequest) -> model.AssignClaimCode:
    """AssignClaimCodeRequest as the flow's command."""
    return model.AssignClaimCode(problem_id=request.problem_id, claim_code=request.claim_code)


def get_problem(request: pb.GetProblemRequest) -> model.GetProblem:
    """GetProblemRequest as the flow's query."""
    return model.GetProblem(problem_id=request.problem_id)


def subcategory(entry: pb.Subcategory) -> model.Subcategory:
    """A wire Subcategory as the catalogue's entry."""
    return model.Subcategory(
        code=entry.code,
        name=entry.name,
        category=entry.category,
        category_name=entry.category_name,
        service=entry.service,
        deadline_unit=UNITS.to_domain(entry.deadline_unit),
        deadline_amount=entry.deadline_amount,
        claimable=entry.claimable,
        claim_business_days=entry.claim_business_days,
        active=entry.active,
    )


def upsert_subcategory(request: pb.UpsertSubcategoryRequest) -> model.UpsertSubcategory:
    """UpsertSubcategoryRequest as the flow's command."""
    return model.UpsertSubcategory(subcategory=subcategory(request.subcategory))


def record_outage(request: pb.RecordOutageRequest) -> model.RecordOutage:
    """RecordOutageRequest as the flow's command."""
    return model.RecordOutage(
        operator=request.operator,
        starts_at=read_instant(request, "starts_at"),
        ends_at=read_instant(request, "ends_at"),
        reason=request.reason,
    )


def get_report(request: pb.GetReportRequest) -> model.GetReport:
    """GetReportRequest as the flow's query."""
    return model.GetReport(from_=read_instant(request, "from"), to=read_instant(request, "to"))


# ------------------------------------------------------------------ answers


def _office_message(row: Record) -> pb.Office | None:
    if not row["office_code"]:
        return None
    return pb.Office(
        code=row["office_code"],
        name=row["office_name"] or "",
        department=row["office_department"] or "",
        province=row["office_province"] or "",
        district=row["office_district"] or "",
        ubigeo=row["office_ubigeo"] or "",
    )


def _subscriber_message(row: Record) -> common_pb2.Subscriber:
    return common_pb2.Subscriber(
        name=row["subscriber_name"],
        document=common_pb2.IdentityDocument(
            type=common_pb2.DocumentType.ValueType(DOCUMENT_NUMBERS[row["document_type"]]),
            number=row["document_number"],
        ),
        email=row["email"] or "",
        contact_phone=row["contact_phone"] or "",
    )


def problem(row: Record) -> pb.Problem:
    """A sgu_problems row as its API message."""
    return pb.Problem(
        id=row["id"],
        operator=row["operator"],
        state=pb.ProblemState.ValueType(STATES.to_wire(row["state"])),
        channel=pb.Channel.ValueType(CHANNELS.to_wire(row["channel"])),
        subscriber=_subscriber_message(row),
        number=row["number"],
        category=row["category"],
        subcategory=row["subcategory"],
        description=row["description"],
        office=_office_message(row),
        registered_by=row["registered_by"] or "",
        registered_at=to_timestamp(row["registered_at"]),
        transferred_at=to_timestamp(row["transferred_at"]),
        answer_deadline=to_timestamp(row["answer_deadline"]),
        answered_at=to_timestamp(row["answered_at"]),
        answer=row["answer"] or "",
        solved=bool(row["solved"]),
        answered_late=row["answered_late"],
        rated_at=to_timestamp(row["rated_at"]),
        satisfied=bool(row["satisfied"]),
        score=row["score"] or 0,
        claimable=row["claimable"],
        escalated_at=to_timestamp(row["escalated_at"]),
        claim_code_deadline=to_timestamp(row["claim_code_deadline"]),
        claim_code=row["claim_code"] or "",
        claim_code_assigned_at=to_timestamp(row["claim_code_assigned_at"]),
        claim_deadline=to_timestamp(row["claim_deadline"]),
    )


def problems(rows: list[Record]) -> pb.ListTrayResponse:
    """The operator's tray."""
    return pb.ListTrayResponse(problems=[problem(row) for row in rows])


def tray_item(entry: TrayEntry) -> pb.TrayItem:
    """A problem arriving in the tray, with its position on the log."""
    return pb.TrayItem(position=entry.position, kind=entry.kind, problem=problem(entry.problem))


def subcategory_message(row: Record) -> pb.Subcategory:
    """A sgu_subcategories row as its API message."""
    return pb.Subcategory(
        code=row["code"],
        name=row["name"],
        category=row["category"],
        category_name=row["category_name"],
        service=row["service"],
        deadline_unit=pb.DeadlineUnit.ValueType(UNITS.to_wire(row["deadline_unit"])),
        deadline_amount=row["deadline_amount"],
        claimable=row["claimable"],
        claim_business_days=row["claim_business_days"],
        active=row["active"],
    )


def catalogue(rows: list[Record]) -> pb.ListCatalogueResponse:
    """The catalogue's subcategories."""
    return pb.ListCatalogueResponse(subcategories=[subcategory_message(row) for row in rows])


def outage(record: model.Outage) -> pb.Outage:
    """A recorded outage."""
    return pb.Outage(
        id=record.id,
        operator=record.operator or "",
        starts_at=to_timestamp(record.starts_at),
        ends_at=to_timestamp(record.ends_at),
        reason=record.reason,
        deadlines_moved=record.deadlines_moved,
    )


def report(record: model.Report) -> pb.SguReport:
    """The regulator's statistics."""
    return pb.SguReport(
        most_frequent=[pb.ProblemCount(**vars(item)) for item in record.most_frequent],
        resolution_times=[pb.ResolutionTime(**vars(item)) for item in record.resolution_times],
        operators=[pb.OperatorStats(**vars(item)) for item in record.operators],
        satisfaction=[pb.Satisfaction(**vars(item)) for item in record.satisfaction],
    )
