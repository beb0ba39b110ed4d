"""User management system, SGU (Res. 00170-2020-CD/OSIPTEL, Instructivo Técnico del SGU).

    (72 hours unconfirmed: expired)
    awaiting_confirmation --e-mail confirmed--> in_tray --operator answers--> answered --rated-->
    (registered at an office: in_tray at once)     |                            closed (satisfied,
                                          answer deadline missed              or not claimable)
                                                   v                          escalation_open
                                                overdue --late answer--> answered   (unsatisfied)
                                                   \\---------- escalated ----------/
                                                              v
                                                       claim_requested --claim code--> claimed

Deadlines: an e-mail not confirmed within 72 hours expires the registration; the operator answers within its subcategory's deadline (business days on the Peruvian
calendar, or hours); escalated to a claim, it assigns its claim code at once (a short configurable
grace). Both are extended by recorded outages of the SGU or of the operator's system that ran
during them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from npc.core.cases import CaseTable
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
from npc.core.instants import timestamp, to_timestamp, within
from npc.core.numbers import who_serves
from npc.core.runtime import Core
from npc.core.validation import (
    DOCUMENT_TYPES,
    MOBILE_NUMBER,
    Violations,
    check_case_id,
    check_document,
    check_operator,
    check_subscriber,
    printable,
)
from npc.flows.sgu.catalogue import SUBCATEGORY, UNIT_VALUES, check_subcategory, upsert
from npc.flows.sgu.rules import DeadlineKind, State
from npc.notifications.outbox import queue_email
from npc.store.database import Txn
from npc.store.operators import is_operator
from npc.v1 import common_pb2
from npc.v1 import sgu_pb2 as pb

FLOW = "sgu"
# "Immediately" leaves the operator no time of its own; the grace covers the systems' round trip.
DEFAULT_CLAIM_CODE_GRACE = timedelta(hours=1)
# An address never confirmed must not hold a problem (and its token) open for ever.
CONFIRMATION_WINDOW = timedelta(hours=72)
# The public page that confirms an address; the e-mail links to it on the site's public address.
CONFIRM_PATH = "/sgu/confirmar"
DEFAULT_PUBLIC_BASE_URL = "http://localhost:8080"

ANSWER = Rule(
    "sgu_answer_in_time",
    None,
    "Res. 00170-2020-CD/OSIPTEL; Instructivo Técnico SGU, registro y atención del problema",
    "leve",
    "operator",
    "Record the answer or solution of a problem within the deadline of its subcategory.",
)
CLAIM_CODE = Rule(
    "sgu_claim_code_at_once",
    None,
    "Res. 00170-2020-CD/OSIPTEL; Instructivo Técnico SGU, generación del reclamo",
    "leve",
    "operator",
    "Assign the claim code at once when a problem is escalated to a formal claim.",
)

CASES = CaseTable(FLOW, "sgu_problems", "problem", ("operator",))

STATES = {
    "awaiting_confirmation": pb.PROBLEM_STATE_AWAITING_CONFIRMATION,
    "in_tray": pb.PROBLEM_STATE_IN_TRAY,
    "overdue": pb.PROBLEM_STATE_OVERDUE,
    "answered": pb.PROBLEM_STATE_ANSWERED,
    "closed": pb.PROBLEM_STATE_CLOSED,
    "escalation_open": pb.PROBLEM_STATE_ESCALATION_OPEN,
    "claim_requested": pb.PROBLEM_STATE_CLAIM_REQUESTED,
    "claimed": pb.PROBLEM_STATE_CLAIMED,
    "expired": pb.PROBLEM_STATE_EXPIRED,
}
# States in which a problem waits for its operator.
TRAY_STATES = (State.IN_TRAY, State.OVERDUE, State.CLAIM_REQUESTED)
# A line has at most one problem of a subcategory under way in its operator's hands.
OPEN_STATES = (
    State.IN_TRAY,
    State.OVERDUE,
    State.ANSWERED,
    State.ESCALATION_OPEN,
    State.CLAIM_REQUESTED,
)
CHANNELS = {pb.CHANNEL_WEB: "web", pb.CHANNEL_APP: "app", pb.CHANNEL_OFFICE: "office"}
CHANNEL_VALUES = {name: value for value, name in CHANNELS.items()}
DOCUMENT_VALUES: dict[str, common_pb2.DocumentType.ValueType] = {
    name: common_pb2.DocumentType.ValueType(value) for value, name in DOCUMENT_TYPES.items()
}
TRAY_EVENTS = {"sgu.problem.transferred": "transferred", "sgu.claim.requested": "claim_requested"}

OFFICE_CODE = re.compile(r"(?a)^[A-Z0-9-]{2,20}$")
UBIGEO = re.compile(r"(?a)^\d{6}$")
CLAIM_CODE_FORMAT = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")
TOKEN = re.compile(r"(?a)^[A-Za-z0-9_-]{16,100}$")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def extend_for_outages(
    start: datetime, base: datetime, outages: list[tuple[datetime, datetime]]
) -> datetime:
    """The deadline `base` of a period that began at `start`, with the clock stopped during outages.

    Overlapping outages count once; an outage reached only because an earlier one pushed the
    deadline back counts too.
    """
    merged: list[list[datetime]] = []
    for begin, end in sorted(outages):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    deadline = base
    for begin, end in merged:
        if begin >= deadline:
            break
        if end <= start:
            continue
        deadline += end - max(begin, start)
    return deadline


def message(row: Any) -> pb.Problem:
    """A sgu_problems row as its API message."""
    office = None
    if row["office_code"]:
        office = pb.Office(
            code=row["office_code"],
            name=row["office_name"] or "",
            department=row["office_department"] or "",
            province=row["office_province"] or "",
            district=row["office_district"] or "",
            ubigeo=row["office_ubigeo"] or "",
        )
    return pb.Problem(
        id=row["id"],
        operator=row["operator"],
        state=STATES[row["state"]],
        channel=CHANNEL_VALUES[row["channel"]],
        subscriber=common_pb2.Subscriber(
            name=row["subscriber_name"],
            document=common_pb2.IdentityDocument(
                type=DOCUMENT_VALUES[row["document_type"]], number=row["document_number"]
            ),
            email=row["email"] or "",
            contact_phone=row["contact_phone"] or "",
        ),
        number=row["number"],
        category=row["category"],
        subcategory=row["subcategory"],
        description=row["description"],
        office=office,
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


def subcategory_message(row: Any) -> pb.Subcategory:
    """A sgu_subcategories row as its API message."""
    return pb.Subcategory(
        code=row["code"],
        name=row["name"],
        category=row["category"],
        category_name=row["category_name"],
        service=row["service"],
        deadline_unit=UNIT_VALUES[row["deadline_unit"]],
        deadline_amount=row["deadline_amount"],
        claimable=row["claimable"],
        claim_business_days=row["claim_business_days"],
        active=row["active"],
    )


def _payload(row: Any) -> dict[str, Any]:
    """What an operator needs to act on a problem (the subscriber's data included)."""
    return {
        "problem_id": row["id"],
        "operator": row["operator"],
        "state": row["state"],
        "number": row["number"],
        "subcategory": row["subcategory"],
        "category": row["category"],
        "description": row["description"],
        "subscriber_name": row["subscriber_name"],
        "document_type": row["document_type"],
        "document_number": row["document_number"],
        "email": row["email"],
        "channel": row["channel"],
        "answer_deadline": _iso(row["answer_deadline"]),
        "claim_code_deadline": _iso(row["claim_code_deadline"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ProblemCount:
    """How many problems a subcategory had."""

    subcategory: str
    name: str
    problems: int


@dataclass(frozen=True)
class ResolutionTime:
    """Time from the operator's tray to its answer, per subcategory."""

    subcategory: str
    answered: int
    average_hours: float
    max_hours: float


@dataclass(frozen=True)
class OperatorStats:
    """Problems of one operator and how it answered them."""

    operator: str
    problems: int
    answered_in_time: int
    answered_late: int
    unanswered_overdue: int
    claims: int


@dataclass(frozen=True)
class Satisfaction:
    """The subscribers' rating of one operator's answers."""

    operator: str
    rated: int
    satisfied: int
    average_score: float


@dataclass(frozen=True)
class Report:
    """Statistics of the problems registered in a period."""

    most_frequent: list[ProblemCount]
    resolution_times: list[ResolutionTime]
    operators: list[OperatorStats]
    satisfaction: list[Satisfaction]


class SguHandler:
    """Commands, deadlines and queries of the user management system."""

    def __init__(
        self,
        core: Core,
        jurisdiction: str,
        *,
        claim_code_grace: timedelta = DEFAULT_CLAIM_CODE_GRACE,
        public_base_url: str = DEFAULT_PUBLIC_BASE_URL,
    ) -> None:
        self.core = core
        self.calendar = core.calendar(jurisdiction)
        self.claim_code_grace = claim_code_grace
        self.public_base_url = public_base_url.rstrip("/")

    def confirmation_link(self, token: str) -> str:
        """The address of the confirmation page for `token`, as the subscriber's e-mail gives it."""
        return f"{self.public_base_url}{CONFIRM_PATH}?{urlencode({'token': token})}"

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.ANSWER, self._not_answered)
        self.core.deadlines.register(FLOW, DeadlineKind.CLAIM_CODE, self._no_claim_code)
        self.core.deadlines.register(FLOW, DeadlineKind.CONFIRMATION, self._unconfirmed)

    # ------------------------------------------------------------------ helpers

    def _emit(self, txn: Txn, type_: str, row: Any, sender: str) -> None:
        txn.emit(
            FLOW,
            type_,
            case_id=row["id"],
            sender=sender,
            audience=(row["operator"],),
            payload=_payload(row),
        )

    async def _breach(self, txn: Txn, rule: Rule, row: Any, due: datetime) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=row["operator"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={
                "number": row["number"],
                "subcategory": row["subcategory"],
                "due_at": due.isoformat(),
            },
        )

    async def _outages(self, conn: Any, operator: str) -> list[tuple[datetime, datetime]]:
        rows = await conn.fetch(
            "SELECT starts_at, ends_at FROM sgu_outages WHERE operator IS NULL OR operator = $1",
            operator,
        )
        return [(r["starts_at"], r["ends_at"]) for r in rows]

    def _base_answer_deadline(self, start: datetime, unit: str, amount: int) -> datetime:
        if unit == "hours":
            return start + timedelta(hours=amount)
        return self.calendar.end_of_business_days(start, amount)

    @staticmethod
    def _check_caller_is_regulator(caller: Caller, what: str) -> None:
        if not caller.is_regulator:
            raise PermissionDenied(f"only the regulator {what}")

    @staticmethod
    def _same_document(row: Any, document: common_pb2.IdentityDocument) -> bool:
        return (
            DOCUMENT_TYPES.get(document.type) == row["document_type"]
            and document.number == row["document_number"]
        )

    async def _lock_for_subscriber(
        self, txn: Txn, problem_id: str, document: common_pb2.IdentityDocument
    ) -> Any:
        row = await CASES.lock(txn, problem_id)
        # A wrong document answers exactly as an unknown problem does.
        if row is None or not self._same_document(row, document):
            raise NotFound("problem", problem_id)
        return row

    # ------------------------------------------------------------------ registration

    async def register_problem(
        self, txn: Txn, caller: Caller, request: pb.RegisterProblemRequest
    ) -> pb.Problem:
        """Register a subscriber's problem (through the regulator's web, app or offices)."""
        self._check_caller_is_regulator(caller, "registers problems (web, app or office)")
        v = Violations()
        channel = CHANNELS.get(request.channel, "")
        if not channel:
            v.add("channel", "required: CHANNEL_WEB, CHANNEL_APP or CHANNEL_OFFICE")
        check_subscriber(v, "subscriber", request.subscriber)
        if channel in ("web", "app") and not request.subscriber.email:
            v.add("subscriber.email", "required from the web or app: the address to confirm")
        if not MOBILE_NUMBER.fullmatch(request.number):
            v.add("number", "required: a mobile number of the numbering plan (9 digits)")
        if not SUBCATEGORY.fullmatch(request.subcategory):
            v.add("subcategory", "required: a catalogue code such as REC-01")
        if not printable(request.description, limit=2000):
            v.add("description", "required: up to 2000 printable characters")
        office = request.office
        if channel == "office":
            if not OFFICE_CODE.fullmatch(office.code):
                v.add("office.code", "required at an office: 2 to 20 of A-Z, 0-9 and -")
            if not printable(office.name, limit=120):
                v.add("office.name", "required at an office: up to 120 printable characters")
            if not printable(office.department, limit=60):
                v.add("office.department", "required at an office: its department")
            for name in ("province", "district"):
                value = getattr(office, name)
                if value and not printable(value, limit=60):
                    v.add(f"office.{name}", "up to 60 printable characters")
            if office.ubigeo and not UBIGEO.fullmatch(office.ubigeo):
                v.add("office.ubigeo", "the INEI ubigeo has 6 digits")
            if not printable(request.registered_by, limit=120):
                v.add("registered_by", "required at an office: the staff member")
        elif request.HasField("office") or request.registered_by:
            v.add("office", "only for problems registered at an office")
        v.raise_if_any()
        conn = txn.conn
        sub = await conn.fetchrow(
            "SELECT * FROM sgu_subcategories WHERE code = $1 AND active", request.subcategory
        )
        if sub is None:
            raise InvalidArgument(
                FieldViolation("subcategory", "not an active subcategory of the catalogue")
            )
        (line,) = await who_serves(conn, [request.number])
        operator = line.serving if line.service == sub["service"] else None
        if operator is None:
            raise InvalidArgument(
                FieldViolation("number", f"not a {sub['service']} number of the numbering plan")
            )
        await self._check_not_under_way(txn, request.number, request.subcategory)
        problem_id = f"SG{await conn.fetchval('SELECT nextval($1)', 'sgu_problem_seq'):010d}"
        token = secrets.token_urlsafe(24) if channel != "office" else None
        subscriber = request.subscriber
        row = await conn.fetchrow(
            """INSERT INTO sgu_problems (id, operator, state, channel, subscriber_name,
                   document_type, document_number, email, contact_phone, number, subcategory,
                   category, deadline_unit, deadline_amount, description, office_code,
                   office_name, office_department, office_province, office_district,
                   office_ubigeo, registered_by, confirmation_sha256, registered_at, claimable,
                   claim_business_days)
               VALUES ($1, $2, 'awaiting_confirmation', $3, $4, $5, $6, $7, $8, $9, $10, $11,
                       $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
               RETURNING *""",
            problem_id,
            operator,
            channel,
            subscriber.name,
            DOCUMENT_TYPES[subscriber.document.type],
            subscriber.document.number,
            subscriber.email or None,
            subscriber.contact_phone or None,
            request.number,
            sub["code"],
            sub["category"],
            sub["deadline_unit"],
            sub["deadline_amount"],
            request.description,
            office.code or None,
            office.name or None,
            office.department or None,
            office.province or None,
            office.district or None,
            office.ubigeo or None,
            request.registered_by or None,
            _digest(token) if token else None,
            txn.now,
            sub["claimable"],
            sub["claim_business_days"],
        )
        if token is None:
            # Staff of the orientation office verified the subscriber in person.
            row = await self._transfer(txn, row)
        else:
            txn.set_deadline(
                FLOW,
                DeadlineKind.CONFIRMATION,
                problem_id,
                txn.now + CONFIRMATION_WINDOW,
                "an unconfirmed registration expires after 72 hours",
            )
            await queue_email(
                txn,
                to=row["email"],
                subject=f"SGU: confirme su correo para el problema {problem_id}",
                body=(
                    f"Registramos su problema {problem_id} ({sub['name']}) con la línea "
                    f"{row['number']}.\nPara enviarlo a su empresa operadora, confirme su correo "
                    f"abriendo este enlace:\n{self.confirmation_link(token)}\n"
                    f"o ingresando este código en {self.public_base_url}{CONFIRM_PATH}: {token}\n"
                    "El enlace y el código vencen a las 72 horas.\n"
                ),
                flow=FLOW,
                case_id=problem_id,
            )
        return message(row)

    async def _check_not_under_way(self, txn: Txn, number: str, subcategory: str) -> None:
        duplicate = await txn.conn.fetchval(
            "SELECT id FROM sgu_problems WHERE number = $1 AND subcategory = $2"
            " AND state = ANY($3::text[])",
            number,
            subcategory,
            list(OPEN_STATES),
        )
        if duplicate is not None:
            raise AlreadyExists(
                "problem",
                duplicate,
                f"line {number} already has problem {duplicate} of this subcategory under way",
            )

    async def _transfer(self, txn: Txn, row: Any) -> Any:
        """Move a problem into its operator's tray and start the answer deadline."""
        await self._check_not_under_way(txn, row["number"], row["subcategory"])
        base = self._base_answer_deadline(txn.now, row["deadline_unit"], row["deadline_amount"])
        due = extend_for_outages(txn.now, base, await self._outages(txn.conn, row["operator"]))
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.IN_TRAY,
                "transferred_at": txn.now,
                "answer_base_deadline": base,
                "answer_deadline": due,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.CONFIRMATION)
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            row["id"],
            due,
            f"answer within {row['deadline_amount']} {row['deadline_unit']} of subcategory "
            f"{row['subcategory']} (Instructivo Técnico SGU)",
        )
        self._emit(txn, "sgu.problem.transferred", row, CLEARINGHOUSE)
        if row["email"]:
            local = self.calendar.local(due).strftime("%d/%m/%Y %H:%M")
            await queue_email(
                txn,
                to=row["email"],
                subject=f"SGU: su problema {row['id']} fue trasladado a {row['operator']}",
                body=(
                    f"Su problema {row['id']} fue trasladado a la empresa operadora "
                    f"{row['operator']}, que debe responder a más tardar el {local} "
                    "(hora de Lima).\n"
                ),
                flow=FLOW,
                case_id=row["id"],
            )
        return row

    async def confirm_email(
        self, txn: Txn, caller: Caller, request: pb.ConfirmEmailRequest
    ) -> pb.Problem:
        """The subscriber confirmed the e-mail address: the problem goes to the operator's tray."""
        self._check_caller_is_regulator(caller, "confirms e-mail addresses for subscribers")
        if not TOKEN.fullmatch(request.token):
            raise InvalidArgument(FieldViolation("token", "required: the code of the e-mail"))
        row = await self._confirm(txn, request.token)
        if row["state"] == State.EXPIRED:
            raise FailedPrecondition(
                f"the confirmation of {row['id']} expired; register the problem again",
                violation_type="EXPIRED",
                subject=row["id"],
            )
        return message(row)

    async def _confirm(self, txn: Txn, token: str) -> Any:
        problem_id = await txn.conn.fetchval(
            "SELECT id FROM sgu_problems WHERE confirmation_sha256 = $1", _digest(token)
        )
        if problem_id is None:
            raise NotFound("confirmation", "token")
        row = await CASES.lock(txn, problem_id)
        assert row is not None
        if row["state"] != State.AWAITING_CONFIRMATION:
            return row
        return await self._transfer(txn, row)

    async def confirm_email_token(self, token: str) -> dict[str, Any] | None:
        """For the confirmation link page: confirm `token`; the problem's public status, or None.

        Confirming twice is harmless: the second visit shows the status.
        """
        if not TOKEN.fullmatch(token):
            return None
        try:
            async with self.core.db.transaction("sgu.confirm", self.core.clock.now()) as txn:
                row = await self._confirm(txn, token)
        except (NotFound, AlreadyExists):
            return None
        return self._public(row)

    # ------------------------------------------------------------------ operator

    async def answer_problem(
        self, txn: Txn, caller: Caller, request: pb.AnswerProblemRequest
    ) -> pb.Problem:
        """The operator's answer or solution."""
        v = Violations()
        check_case_id(v, "problem_id", request.problem_id, "SG")
        if not printable(request.answer, limit=4000):
            v.add("answer", "required: up to 4000 printable characters")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.problem_id, caller.operator, "operator")
        if row["state"] not in (State.IN_TRAY, State.OVERDUE):
            raise FailedPrecondition(
                f"{row['id']} is not awaiting an answer ({row['state']})", subject=row["id"]
            )
        late = txn.now >= row["answer_deadline"]
        if late:
            await self._breach(txn, ANSWER, row, row["answer_deadline"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.ANSWERED,
                "answered_at": txn.now,
                "answer": request.answer,
                "solved": request.solved,
                "answered_late": late,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        self._emit(txn, "sgu.problem.answered", row, caller.operator)
        if row["email"]:
            await queue_email(
                txn,
                to=row["email"],
                subject=f"SGU: respuesta a su problema {row['id']}",
                body=(
                    f"{row['operator']} respondió su problema {row['id']}:\n\n{request.answer}\n\n"
                    "Califique la respuesta en el SGU (satisfecho o no satisfecho).\n"
                ),
                flow=FLOW,
                case_id=row["id"],
            )
        return message(row)

    async def assign_claim_code(
        self, txn: Txn, caller: Caller, request: pb.AssignClaimCodeRequest
    ) -> pb.Problem:
        """The operator's claim code; the subscriber is e-mailed the code, form and deadline."""
        v = Violations()
        check_case_id(v, "problem_id", request.problem_id, "SG")
        if not CLAIM_CODE_FORMAT.fullmatch(request.claim_code):
            v.add("claim_code", "required: up to 40 letters, digits or . / _ -")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.problem_id, caller.operator, "operator")
        if row["state"] != State.CLAIM_REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting a claim code ({row['state']})", subject=row["id"]
            )
        if txn.now >= row["claim_code_deadline"]:
            await self._breach(txn, CLAIM_CODE, row, row["claim_code_deadline"])
        claim_deadline = self.calendar.end_of_business_days(txn.now, row["claim_business_days"])
        try:
            async with txn.conn.transaction():
                row = await CASES.update(
                    txn,
                    row["id"],
                    {
                        "state": State.CLAIMED,
                        "claim_code": request.claim_code,
                        "claim_code_assigned_at": txn.now,
                        "claim_deadline": claim_deadline,
                    },
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                "claim", request.claim_code, f"claim code {request.claim_code} is already in use"
            ) from None
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.CLAIM_CODE)
        self._emit(txn, "sgu.claim.code_assigned", row, caller.operator)
        if row["email"]:
            await queue_email(
                txn,
                to=row["email"],
                subject=f"SGU: su reclamo {request.claim_code} ante {row['operator']}",
                body=self._claim_email(row),
                flow=FLOW,
                case_id=row["id"],
            )
        return message(row)

    def _claim_email(self, row: Any) -> str:
        deadline = self.calendar.local(row["claim_deadline"] - timedelta(seconds=1))
        return (
            f"Su problema {row['id']} se convirtió en reclamo.\n"
            f"Código de reclamo: {row['claim_code']}\n"
            f"La empresa operadora {row['operator']} debe resolverlo a más tardar el "
            f"{deadline.strftime('%d/%m/%Y')} ({row['claim_business_days']} días hábiles).\n\n"
            "Formulario de reclamo\n"
            f"  Nombre: {row['subscriber_name']}\n"
            f"  Documento: {row['document_type'].upper()} {row['document_number']}\n"
            f"  Servicio: móvil, línea {row['number']}\n"
            f"  Materia: {row['subcategory']}\n"
            f"  Descripción: {row['description']}\n"
            f"  Respuesta de la empresa: {row['answer'] or '(sin respuesta en el plazo)'}\n"
            f"  Código de reclamo: {row['claim_code']}\n"
        )

    async def list_tray(self, caller: Caller) -> list[Any]:
        """The operator's problems awaiting it, oldest first."""
        if caller.is_regulator:
            raise PermissionDenied("the tray is an operator's")
        async with self.core.db.pool.acquire() as conn:
            rows: list[Any] = await conn.fetch(
                "SELECT * FROM sgu_problems WHERE operator = $1 AND state = ANY($2::text[])"
                " ORDER BY transferred_at, id",
                caller.operator,
                list(TRAY_STATES),
            )
        return rows

    async def watch_tray(self, caller: Caller, from_position: int) -> AsyncIterator[pb.TrayItem]:
        """The operator's tray on the shared event log, from `from_position`, then live."""
        if caller.is_regulator:
            raise PermissionDenied("the tray is an operator's")
        hub = self.core.hub
        if from_position < 0:
            raise InvalidArgument(
                FieldViolation("from_position", "must be 0 or a position already received")
            )
        if from_position > hub.head:
            await hub.refresh()
            if from_position > hub.head:
                raise OutOfRange("from_position", f"beyond the head of the log ({hub.head})")
        async for event in hub.subscribe(caller.operator, from_position, [FLOW]):
            kind = TRAY_EVENTS.get(event.type)
            if kind is None or event.case_id is None:
                continue
            async with self.core.db.pool.acquire() as conn:
                row = await conn.fetchrow("SELECT * FROM sgu_problems WHERE id = $1", event.case_id)
            if row is not None:
                yield pb.TrayItem(position=event.position, kind=kind, problem=message(row))

    # ------------------------------------------------------------------ subscriber

    async def rate_answer(
        self, txn: Txn, caller: Caller, request: pb.RateAnswerRequest
    ) -> pb.Problem:
        """The subscriber rates the operator's answer."""
        self._check_caller_is_regulator(caller, "records ratings for subscribers")
        v = Violations()
        check_case_id(v, "problem_id", request.problem_id, "SG")
        check_document(v, "document", request.document)
        if not 1 <= request.score <= 5:
            v.add("score", "required: 1 (worst) to 5 (best)")
        v.raise_if_any()
        row = await self._lock_for_subscriber(txn, request.problem_id, request.document)
        if row["state"] != State.ANSWERED:
            raise FailedPrecondition(
                f"{row['id']} has no answer to rate ({row['state']})", subject=row["id"]
            )
        escalable = not request.satisfied and row["claimable"]
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.ESCALATION_OPEN if escalable else State.CLOSED,
                "rated_at": txn.now,
                "satisfied": request.satisfied,
                "score": request.score,
            },
        )
        self._emit(txn, "sgu.problem.rated", row, CLEARINGHOUSE)
        return message(row)

    async def escalate_to_claim(
        self, txn: Txn, caller: Caller, request: pb.EscalateToClaimRequest
    ) -> pb.Problem:
        """Turn a claimable problem, unsatisfied or unanswered in time, into a formal claim."""
        self._check_caller_is_regulator(caller, "escalates problems for subscribers")
        v = Violations()
        check_case_id(v, "problem_id", request.problem_id, "SG")
        check_document(v, "document", request.document)
        v.raise_if_any()
        row = await self._lock_for_subscriber(txn, request.problem_id, request.document)
        if not row["claimable"]:
            raise FailedPrecondition(
                f"subcategory {row['subcategory']} cannot become a claim",
                violation_type="NOT_CLAIMABLE",
                subject=row["id"],
            )
        unanswered_in_time = row["state"] == State.OVERDUE or (
            row["state"] == State.ANSWERED and row["answered_late"]
        )
        if row["state"] != State.ESCALATION_OPEN and not unanswered_in_time:
            raise FailedPrecondition(
                f"{row['id']} may become a claim only when the answer was late, missing or "
                f"unsatisfying ({row['state']})",
                subject=row["id"],
            )
        base = txn.now + self.claim_code_grace
        due = extend_for_outages(txn.now, base, await self._outages(txn.conn, row["operator"]))
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.CLAIM_REQUESTED,
                "escalated_at": txn.now,
                "claim_code_base_deadline": base,
                "claim_code_deadline": due,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        txn.set_deadline(
            FLOW,
            DeadlineKind.CLAIM_CODE,
            row["id"],
            due,
            "assign the claim code at once (SGU, reclamo)",
        )
        self._emit(txn, "sgu.claim.requested", row, CLEARINGHOUSE)
        return message(row)

    # ------------------------------------------------------------------ deadlines

    async def _not_answered(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is None or row["state"] != State.IN_TRAY:
            return
        row = await CASES.update(txn, row["id"], {"state": State.OVERDUE})
        await self._breach(txn, ANSWER, row, row["answer_deadline"])
        self._emit(txn, "sgu.problem.overdue", row, CLEARINGHOUSE)
        if row["email"] and row["claimable"]:
            await queue_email(
                txn,
                to=row["email"],
                subject=f"SGU: su problema {row['id']} no fue respondido a tiempo",
                body=(
                    f"{row['operator']} no respondió su problema {row['id']} en el plazo. "
                    "Puede convertirlo en reclamo desde el SGU.\n"
                ),
                flow=FLOW,
                case_id=row["id"],
            )

    async def _unconfirmed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.AWAITING_CONFIRMATION:
            await CASES.update(txn, row["id"], {"state": State.EXPIRED})

    async def _no_claim_code(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.CLAIM_REQUESTED:
            await self._breach(txn, CLAIM_CODE, row, row["claim_code_deadline"])

    # ------------------------------------------------------------------ regulator

    async def record_outage(
        self, txn: Txn, caller: Caller, request: pb.RecordOutageRequest
    ) -> pb.Outage:
        """Record an outage and move the deadlines that ran during it."""
        self._check_caller_is_regulator(caller, "records outages")
        v = Violations()
        if request.operator:
            check_operator(v, "operator", request.operator)
        starts = timestamp(v, "starts_at", request, "starts_at")
        ends = timestamp(v, "ends_at", request, "ends_at")
        for field, value in (("starts_at", starts), ("ends_at", ends)):
            within(v, field, value, txn.now, past=timedelta(days=365), future=timedelta(days=30))
        if starts is not None and ends is not None and ends <= starts:
            v.add("ends_at", "must be after starts_at")
        if not printable(request.reason, limit=500):
            v.add("reason", "required: up to 500 printable characters")
        v.raise_if_any()
        assert starts is not None and ends is not None
        operator = request.operator or None
        if operator is not None and not await is_operator(
            txn.conn, operator, country=caller.country
        ):
            raise InvalidArgument(
                FieldViolation("operator", "not an operator under this regulator")
            )
        outage_id = await txn.conn.fetchval(
            """INSERT INTO sgu_outages (operator, starts_at, ends_at, reason, recorded_by,
                                        recorded_at)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            operator,
            starts,
            ends,
            request.reason,
            caller.operator,
            txn.now,
        )
        # Deadlines still running that the outage overlaps; those already missed stay missed.
        affected = await txn.conn.fetch(
            """SELECT id FROM sgu_problems
               WHERE ($1::text IS NULL OR operator = $1)
                 AND ((state = 'in_tray' AND transferred_at < $3 AND answer_deadline > $2)
                   OR (state = 'claim_requested' AND escalated_at < $3
                       AND claim_code_deadline > $2))
               ORDER BY id""",
            operator,
            starts,
            ends,
        )
        moved = 0
        for item in affected:
            row = await CASES.lock(txn, item["id"])
            if row is not None and await self._reschedule(txn, row):
                moved += 1
        txn.emit(
            FLOW,
            "sgu.outage.recorded",
            case_id=None,
            sender=caller.operator,
            audience=(operator,) if operator else (),
            broadcast=operator is None,
            payload={
                "outage_id": outage_id,
                "operator": operator,
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
                "reason": request.reason,
                "deadlines_moved": moved,
            },
        )
        return pb.Outage(
            id=outage_id,
            operator=operator or "",
            starts_at=to_timestamp(starts),
            ends_at=to_timestamp(ends),
            reason=request.reason,
            deadlines_moved=moved,
        )

    async def _reschedule(self, txn: Txn, row: Any) -> bool:
        outages = await self._outages(txn.conn, row["operator"])
        if row["state"] == State.IN_TRAY:
            kind, start, base, column = (
                DeadlineKind.ANSWER,
                row["transferred_at"],
                row["answer_base_deadline"],
                "answer_deadline",
            )
        elif row["state"] == State.CLAIM_REQUESTED:
            kind, start, base, column = (
                DeadlineKind.CLAIM_CODE,
                row["escalated_at"],
                row["claim_code_base_deadline"],
                "claim_code_deadline",
            )
        else:
            return False
        due = extend_for_outages(start, base, outages)
        if due == row[column]:
            return False
        row = await CASES.update(txn, row["id"], {column: due})
        txn.set_deadline(FLOW, kind, row["id"], due, f"{kind} deadline extended by an outage")
        self._emit(txn, "sgu.problem.deadline_moved", row, CLEARINGHOUSE)
        return True

    async def upsert_subcategory(
        self, txn: Txn, caller: Caller, request: pb.UpsertSubcategoryRequest
    ) -> pb.Subcategory:
        """Add or change a subcategory of the catalogue (problems under way keep their terms)."""
        self._check_caller_is_regulator(caller, "edits the catalogue")
        v = Violations()
        check_subcategory(v, request.subcategory)
        v.raise_if_any()
        return subcategory_message(await upsert(txn, request.subcategory, caller.operator))

    # ------------------------------------------------------------------ queries

    async def get_problem(self, caller: Caller, request: pb.GetProblemRequest) -> pb.Problem:
        """A problem, for its operator and the regulator."""
        v = Violations()
        check_case_id(v, "problem_id", request.problem_id, "SG")
        v.raise_if_any()
        row = await CASES.read_for(
            self.core.db, request.problem_id, caller.operator, sees_all=caller.is_regulator
        )
        if row["state"] == State.AWAITING_CONFIRMATION and not caller.is_regulator:
            raise NotFound("problem", request.problem_id)
        return message(row)

    async def catalogue(self, *, include_inactive: bool = False) -> list[Any]:
        """The subcategories, by category and code (for the registration form)."""
        async with self.core.db.pool.acquire() as conn:
            rows: list[Any] = await conn.fetch(
                "SELECT * FROM sgu_subcategories WHERE active OR $1 ORDER BY category, code",
                include_inactive,
            )
        return rows

    def _public(self, row: Any) -> dict[str, Any]:
        return {
            "problem_id": row["id"],
            "state": row["state"],
            "operator": row["operator"],
            "number": row["number"],
            "subcategory": row["subcategory"],
            "registered_at": row["registered_at"],
            "answer_deadline": row["answer_deadline"],
            "answered_at": row["answered_at"],
            "answer": row["answer"],
            "answered_late": row["answered_late"],
            "satisfied": row["satisfied"],
            "score": row["score"],
            "claimable": row["claimable"],
            "escalable": row["claimable"]
            and (
                row["state"] in (State.ESCALATION_OPEN, State.OVERDUE)
                or (row["state"] == State.ANSWERED and row["answered_late"])
            ),
            "claim_code": row["claim_code"],
            "claim_deadline": row["claim_deadline"],
        }

    async def public_status(self, problem_code: str, document: str) -> dict[str, Any] | None:
        """For the subscriber's page: the problem's status, or None (unknown code or document).

        A wrong document and an unknown code answer the same, so the page reveals nothing.
        """
        if not re.fullmatch(r"(?a)SG\d{10}", problem_code) or not document:
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM sgu_problems WHERE id = $1", problem_code)
        if row is None or not secrets.compare_digest(
            row["document_number"].encode(), document.encode()
        ):
            return None
        return self._public(row)

    async def report(
        self, start: datetime, end: datetime, *, operator: str | None = None
    ) -> Report:
        """Statistics of the problems transferred to operators and registered in [start, end),
        of every operator or only of `operator`."""
        async with self.core.db.pool.acquire() as conn:
            frequent = await conn.fetch(
                """SELECT p.subcategory, s.name, count(*) AS problems
                   FROM sgu_problems p JOIN sgu_subcategories s ON s.code = p.subcategory
                   WHERE p.registered_at >= $1 AND p.registered_at < $2
                     AND p.transferred_at IS NOT NULL
                     AND ($3::text IS NULL OR p.operator = $3)
                   GROUP BY p.subcategory, s.name ORDER BY problems DESC, p.subcategory""",
                start,
                end,
                operator,
            )
            times = await conn.fetch(
                """SELECT subcategory, count(*) AS answered,
                      avg(extract(epoch FROM answered_at - transferred_at)) / 3600 AS average,
                      max(extract(epoch FROM answered_at - transferred_at)) / 3600 AS longest
                   FROM sgu_problems
                   WHERE registered_at >= $1 AND registered_at < $2 AND answered_at IS NOT NULL
                     AND ($3::text IS NULL OR operator = $3)
                   GROUP BY subcategory ORDER BY subcategory""",
                start,
                end,
                operator,
            )
            operators = await conn.fetch(
                """SELECT operator, count(*) AS problems,
                      count(*) FILTER (WHERE answered_at IS NOT NULL AND NOT answered_late)
                          AS in_time,
                      count(*) FILTER (WHERE answered_late) AS late,
                      count(*) FILTER (WHERE answered_at IS NULL AND answer_deadline <= $3)
                          AS overdue,
                      count(*) FILTER (WHERE escalated_at IS NOT NULL) AS claims
                   FROM sgu_problems
                   WHERE registered_at >= $1 AND registered_at < $2
                     AND transferred_at IS NOT NULL
                     AND ($4::text IS NULL OR operator = $4)
                   GROUP BY operator ORDER BY problems DESC, operator""",
                start,
                end,
                self.core.clock.now(),
                operator,
            )
            ratings = await conn.fetch(
                """SELECT operator, count(*) AS rated, count(*) FILTER (WHERE satisfied)
                      AS satisfied, avg(score)::float8 AS average
                   FROM sgu_problems
                   WHERE registered_at >= $1 AND registered_at < $2 AND rated_at IS NOT NULL
                     AND ($3::text IS NULL OR operator = $3)
                   GROUP BY operator ORDER BY operator""",
                start,
                end,
                operator,
            )
        return Report(
            most_frequent=[
                ProblemCount(r["subcategory"], r["name"], r["problems"]) for r in frequent
            ],
            resolution_times=[
                ResolutionTime(
                    r["subcategory"], r["answered"], float(r["average"]), float(r["longest"])
                )
                for r in times
            ],
            operators=[
                OperatorStats(
                    r["operator"],
                    r["problems"],
                    r["in_time"],
                    r["late"],
                    r["overdue"],
                    r["claims"],
                )
                for r in operators
            ],
            satisfaction=[
                Satisfaction(r["operator"], r["rated"], r["satisfied"], r["average"])
                for r in ratings
            ],
        )

    async def get_report(self, caller: Caller, request: pb.GetReportRequest) -> pb.SguReport:
        """The regulator's statistics report."""
        self._check_caller_is_regulator(caller, "reads the SGU report")
        v = Violations()
        start = timestamp(v, "from", request, "from")
        end = timestamp(v, "to", request, "to")
        if start is not None and end is not None:
            if end <= start:
                v.add("to", "must be after from")
            elif end - start > timedelta(days=366):
                v.add("to", "a report covers at most 366 days")
        v.raise_if_any()
        assert start is not None and end is not None
        report = await self.report(start, end)
        return pb.SguReport(
            most_frequent=[pb.ProblemCount(**vars(item)) for item in report.most_frequent],
            resolution_times=[pb.ResolutionTime(**vars(item)) for item in report.resolution_times],
            operators=[pb.OperatorStats(**vars(item)) for item in report.operators],
            satisfaction=[pb.Satisfaction(**vars(item)) for item in report.satisfaction],
        )
