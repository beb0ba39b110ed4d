"""Registration: the regulator registers a subscriber's problem; from the web or the app the
subscriber confirms the e-mail address (72 hours, or the registration expires) before the problem
goes to the operator's tray; at an office it goes there at once."""

from __future__ import annotations

import secrets
from typing import Any

from asyncpg import Record

from npc.core.deadlines import Deadline
from npc.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.numbers import who_serves
from npc.core.validation import (
    DOCUMENT_TYPES,
    FIXED_NUMBER,
    MOBILE_NUMBER,
    Violations,
    check_subscriber,
    printable,
)
from npc.flows.sgu import emails, store
from npc.flows.sgu.base import CONFIRM_PATH, SguBase, digest, public_status
from npc.flows.sgu.events import emit_problem
from npc.flows.sgu.model import ConfirmEmail, Office, RegisterProblem
from npc.flows.sgu.rules import (
    CHANNEL_REQUIRED,
    CLAIM_EMAIL_REQUIRED,
    CONFIRMATION_HOURS,
    CONFIRMATION_WINDOW,
    DESCRIPTION_LIMIT,
    FLOW,
    OFFICE_CODE,
    OFFICE_NAME_LIMIT,
    OFFICE_PLACE_LIMIT,
    OPEN_STATES,
    STAFF_LIMIT,
    SUBCATEGORY,
    TOKEN,
    UBIGEO,
    Channel,
    DeadlineKind,
    State,
)
from npc.flows.sgu.store import CASES, NewProblem
from npc.notifications.outbox import queue_email
from npc.store.database import Txn


def check_registration(command: RegisterProblem) -> Channel:
    """The registration form: every field the channel requires, all refusals together; the
    channel, once checked."""
    v = Violations()
    channel = command.channel
    if channel is None:
        v.add("channel", CHANNEL_REQUIRED)
    check_subscriber(v, "subscriber", command.subscriber)
    if channel in (Channel.WEB, Channel.APP) and not command.subscriber.email:
        v.add("subscriber.email", "required from the web or app: the address to confirm")
    if not (MOBILE_NUMBER.fullmatch(command.number) or FIXED_NUMBER.fullmatch(command.number)):
        v.add(
            "number",
            "required: a number of the numbering plan (mobile 9 digits, fixed 8 digits)",
        )
    if not SUBCATEGORY.fullmatch(command.subcategory):
        v.add("subcategory", "required: a catalogue code such as REC-01")
    if not printable(command.description, limit=DESCRIPTION_LIMIT):
        v.add("description", f"required: up to {DESCRIPTION_LIMIT} printable characters")
    if channel == Channel.OFFICE:
        _check_office(v, command.office or Office(), command.registered_by)
    elif command.office is not None or command.registered_by:
        v.add("office", "only for problems registered at an office")
    v.raise_if_any()
    assert channel is not None
    return channel


def _check_office(v: Violations, office: Office, registered_by: str) -> None:
    if not OFFICE_CODE.fullmatch(office.code):
        v.add("office.code", "required at an office: 2 to 20 of A-Z, 0-9 and -")
    if not printable(office.name, limit=OFFICE_NAME_LIMIT):
        v.add(
            "office.name", f"required at an office: up to {OFFICE_NAME_LIMIT} printable characters"
        )
    if not printable(office.department, limit=OFFICE_PLACE_LIMIT):
        v.add("office.department", "required at an office: its department")
    for name, value in (("province", office.province), ("district", office.district)):
        if value and not printable(value, limit=OFFICE_PLACE_LIMIT):
            v.add(f"office.{name}", f"up to {OFFICE_PLACE_LIMIT} printable characters")
    if office.ubigeo and not UBIGEO.fullmatch(office.ubigeo):
        v.add("office.ubigeo", "the INEI ubigeo has 6 digits")
    if not printable(registered_by, limit=STAFF_LIMIT):
        v.add("registered_by", "required at an office: the staff member")


class Registration(SguBase):
    """Registering problems and confirming the subscriber's address."""

    async def register_problem(self, txn: Txn, caller: Caller, command: RegisterProblem) -> Record:
        """Register a subscriber's problem (through the regulator's web, app or offices)."""
        self._check_caller_is_regulator(caller, "registers problems (web, app or office)")
        channel = check_registration(command)
        conn = txn.conn
        sub = await store.active_subcategory(conn, command.subcategory)
        if sub is None:
            raise InvalidArgument(
                FieldViolation("subcategory", "not an active subcategory of the catalogue")
            )
        if sub["claimable"] and not command.subscriber.email:
            # The claim code, the form and the deadline reach the subscriber by e-mail only.
            raise InvalidArgument(FieldViolation("subscriber.email", CLAIM_EMAIL_REQUIRED))
        (line,) = await who_serves(conn, [command.number])
        operator = line.serving if line.service == sub["service"] else None
        if operator is None:
            raise InvalidArgument(
                FieldViolation("number", f"not a {sub['service']} number of the numbering plan")
            )
        await self._check_not_under_way(txn, command.number, command.subcategory)
        problem_id = await store.next_problem_id(conn)
        token = secrets.token_urlsafe(24) if channel != Channel.OFFICE else None
        row = await store.insert_problem(
            conn, _new_problem(problem_id, operator, channel, command, sub, token, txn)
        )
        if token is None:
            # Staff of the orientation office verified the subscriber in person.
            return await self._transfer(txn, row)
        await self._ask_confirmation(txn, row, sub["name"], token)
        return row

    async def _ask_confirmation(self, txn: Txn, row: Record, name: str, token: str) -> None:
        txn.set_deadline(
            FLOW,
            DeadlineKind.CONFIRMATION,
            row["id"],
            txn.now + CONFIRMATION_WINDOW,
            f"an unconfirmed registration expires after {CONFIRMATION_HOURS} hours",
        )
        email = emails.confirm_address(
            row["id"],
            name,
            row["number"],
            self.confirmation_link(token),
            f"{self.public_base_url}{CONFIRM_PATH}",
            token,
        )
        await queue_email(
            txn,
            to=row["email"],
            subject=email.subject,
            body=email.body,
            flow=FLOW,
            case_id=row["id"],
        )

    async def _check_not_under_way(self, txn: Txn, number: str, subcategory: str) -> None:
        duplicate = await store.problem_under_way(txn.conn, number, subcategory, OPEN_STATES)
        if duplicate is not None:
            raise AlreadyExists(
                "problem",
                duplicate,
                f"line {number} already has problem {duplicate} of this subcategory under way",
                collided=f"{number}/{subcategory}",
            )

    async def _transfer(self, txn: Txn, row: Record) -> Record:
        """Move a problem into its operator's tray and start the answer deadline."""
        await self._check_not_under_way(txn, row["number"], row["subcategory"])
        base = self._base_answer_deadline(txn.now, row["deadline_unit"], row["deadline_amount"])
        due = await self._due(txn, row["operator"], txn.now, base)
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
        emit_problem(txn, "sgu.problem.transferred", row, CLEARINGHOUSE)
        if row["email"]:
            email = emails.transferred(row, self.calendar)
            await queue_email(
                txn,
                to=row["email"],
                subject=email.subject,
                body=email.body,
                flow=FLOW,
                case_id=row["id"],
            )
        return row

    async def confirm_email(self, txn: Txn, caller: Caller, command: ConfirmEmail) -> Record:
        """The subscriber confirmed the e-mail address: the problem goes to the operator's tray."""
        self._check_caller_is_regulator(caller, "confirms e-mail addresses for subscribers")
        if not TOKEN.fullmatch(command.token):
            raise InvalidArgument(FieldViolation("token", "required: the code of the e-mail"))
        row = await self._confirm(txn, command.token)
        if row["state"] == State.EXPIRED:
            raise FailedPrecondition(
                f"the confirmation of {row['id']} expired; register the problem again",
                violation_type="EXPIRED",
                subject=row["id"],
                keep_effects=True,
            )
        return row

    async def _confirm(self, txn: Txn, token: str) -> Record:
        problem_id = await store.problem_by_confirmation(txn.conn, digest(token))
        if problem_id is None:
            raise NotFound("confirmation", "token")
        row = await CASES.lock(txn, problem_id)
        assert row is not None
        if row["state"] != State.AWAITING_CONFIRMATION:
            return row
        if txn.now >= row["registered_at"] + CONFIRMATION_WINDOW:
            # The window's instant expires the registration, whether or not its deadline fired.
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.CONFIRMATION)
            return await CASES.update(txn, row["id"], {"state": State.EXPIRED})
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
        return public_status(row)

    async def _unconfirmed(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.AWAITING_CONFIRMATION:
            await CASES.update(txn, row["id"], {"state": State.EXPIRED})


def _new_problem(
    problem_id: str,
    operator: str,
    channel: Channel,
    command: RegisterProblem,
    sub: Record,
    token: str | None,
    txn: Txn,
) -> NewProblem:
    """The row of a problem just registered, awaiting its address's confirmation."""
    subscriber, office = command.subscriber, command.office or Office()
    return NewProblem(
        id=problem_id,
        operator=operator,
        state=State.AWAITING_CONFIRMATION,
        channel=channel,
        subscriber_name=subscriber.name,
        document_type=DOCUMENT_TYPES[subscriber.document.type],
        document_number=subscriber.document.number,
        email=subscriber.email or None,
        contact_phone=subscriber.contact_phone or None,
        number=command.number,
        subcategory=sub["code"],
        category=sub["category"],
        deadline_unit=sub["deadline_unit"],
        deadline_amount=sub["deadline_amount"],
        description=command.description,
        office_code=office.code or None,
        office_name=office.name or None,
        office_department=office.department or None,
        office_province=office.province or None,
        office_district=office.district or None,
        office_ubigeo=office.ubigeo or None,
        registered_by=command.registered_by or None,
        confirmation_sha256=digest(token) if token else None,
        registered_at=txn.now,
        claimable=sub["claimable"],
        claim_business_days=sub["claim_business_days"],
    )
