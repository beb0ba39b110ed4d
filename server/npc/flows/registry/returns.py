"""Returns of ported numbers to their range holders.

Disconnection: a ported number whose service ended goes back to the holder of its range at once,
and every operator learns it from the registry broadcast. Lack of consent (article 30): the donor
asks the numbers back (SR) and the clearinghouse notifies the recipient of the resolution at once
(`registry.return.requested`); from that instant, which it knows rather than being told, the
recipient gives a disabling instant inside its 5 business days (AR, infraction 30) or denies with
a typed reason (DR); the numbers go back at that instant inside a change window, broadcast to all;
then the recipient's disabling (32) and the donor's enabling within 3 hours (33) are confirmed
against their deadlines. The terms are in `rules`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
from asyncpg import Record

from npc.core.cases import refusal
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
    Reason,
)
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import ChangeWindow, check_instant
from npc.core.numbers import Serving, move_numbers, who_serves
from npc.core.runtime import Core
from npc.core.validation import Violations, check_case_id, printable
from npc.flows.registry.events import emit_return
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.model import (
    AnswerReturn,
    ConfirmReturnExecution,
    GetReturn,
    NewReturn,
    ReportDisconnection,
    RequestReturn,
    Routing,
)
from npc.flows.registry.rules import (
    ANSWER_BUSINESS_DAYS,
    ANSWER_NOTE,
    DENIAL_REASON_LIMIT,
    DISABLE_NOTE,
    ENABLE_NOTE,
    EXECUTE_NOTE,
    RESOLUTION_LIMIT,
    RETURN_ANSWER,
    RETURN_DISABLE,
    RETURN_ENABLE,
    DeadlineKind,
    DenialReason,
    ReturnStep,
    State,
    answered_late,
    check_numbers,
    disabling_limit,
)
from npc.flows.registry.store import (
    FLOW,
    RETURNS,
    deadline_due,
    insert_return,
    next_return_id,
    open_return_of,
)
from npc.store.database import Txn

STEP_REQUIRED = "RETURN_STEP_RECIPIENT_DISABLED or RETURN_STEP_DONOR_ENABLED"
# Who confirms each step, the column it fills and the deadline it meets.
_STEPS = {
    ReturnStep.RECIPIENT_DISABLED: (
        "recipient",
        "recipient_disabled_at",
        DeadlineKind.RECIPIENT_DISABLE,
    ),
    ReturnStep.DONOR_ENABLED: ("donor", "donor_enabled_at", DeadlineKind.DONOR_ENABLE),
}


class ReturnsHandler:
    """Commands that send numbers back to their range holders."""

    def __init__(self, registry: RegistryHandler) -> None:
        self.registry = registry

    async def report_disconnection(
        self, txn: Txn, caller: Caller, command: ReportDisconnection
    ) -> list[Routing]:
        """Send the caller's disconnected ported numbers home and broadcast the change."""
        if caller.is_regulator:
            raise PermissionDenied("the regulator's identity is read-only")
        numbers = list(command.numbers)
        check_numbers(numbers, "numbers")
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument(FieldViolation("numbers", "a number appears twice"))
        live = await self.registry.core.ports.with_live_request(txn.conn, numbers)
        by_holder: dict[str, list[str]] = {}
        for row in await who_serves(txn.conn, numbers):
            _check_disconnectable(row, caller, live)
            assert row.holder is not None  # a ported number lies in a range
            by_holder.setdefault(row.holder, []).append(row.number)
        for holder, home in sorted(by_holder.items()):
            await move_numbers(
                txn,
                home,
                holder,
                reason="disconnection",
                case_id=f"DX:{caller.operator}:{command.request_id}",
            )
        return await self.registry.lookup(numbers, conn=txn.conn)


def _check_disconnectable(row: Serving, caller: Caller, live: set[str]) -> None:
    """A number the caller may send home: ported, served by the caller, no live port request."""
    number = row.number
    if not row.ported:
        raise FailedPrecondition(
            f"number {number} is not ported: it is already with its range holder",
            violation_type="NOT_PORTED",
            subject=f"numbers:{number}",
        )
    if row.serving != caller.operator:
        raise PermissionDenied(f"number {number} is not served by {caller.operator}")
    if number in live:
        raise FailedPrecondition(
            f"number {number} has a live port request; it cannot be disconnected now",
            violation_type="LIVE_PORT_REQUEST",
            subject=f"numbers:{number}",
        )


class ConsentReturns:
    """Returns for lack of consent (SR → AR/DR), executed in a change window (article 30)."""

    def __init__(self, core: Core, window: ChangeWindow) -> None:
        self.core = core
        self.window = window

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        register = self.core.deadlines.register
        register(FLOW, DeadlineKind.ANSWER, self._not_answered)
        register(FLOW, DeadlineKind.EXECUTE, self._execute)
        register(FLOW, DeadlineKind.RECIPIENT_DISABLE, self._confirmation_missed)
        register(FLOW, DeadlineKind.DONOR_ENABLE, self._confirmation_missed)

    async def _load(self, txn: Txn, case_id: str, caller: Caller, role: str) -> Record:
        v = Violations()
        check_case_id(v, "return_id", case_id, "RT")
        v.raise_if_any()
        return await RETURNS.lock_for(txn, case_id, caller, role)

    async def _breach(
        self, txn: Txn, rule: Rule, operator: str, row: Record, due: datetime
    ) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=operator,
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={"numbers": list(row["numbers"]), "due_at": due.isoformat()},
        )

    async def request_return(self, txn: Txn, caller: Caller, command: RequestReturn) -> Record:
        """SR: the donor of a port found to lack consent asks its numbers back; the recipient is
        notified of the resolution now, by the `registry.return.requested` event."""
        _check_request(command)
        notified_at = txn.now
        ports = self.core.ports
        port = await ports.port(txn.conn, command.port_request_id)
        if port is None:
            raise NotFound("port_request", command.port_request_id)
        if port.donor != caller.operator:
            raise refusal(
                caller,
                (port.donor, port.recipient),
                "port_request",
                command.port_request_id,
                "only the donor of the port asks for a return",
            )
        of_port = await ports.numbers_of(txn.conn, port.id)
        numbers = list(command.numbers) or of_port
        # Only the port's own numbers are asked about: anything else fails here, unread.
        in_port = set(of_port)
        served = {
            row.number: row
            for row in await who_serves(txn.conn, [n for n in numbers if n in in_port])
        }
        for number in numbers:
            row = served.get(number)
            if row is None or not row.ported or row.serving != port.recipient:
                raise FailedPrecondition(
                    f"number {number} is not served by the recipient of this port",
                    violation_type="NOT_SERVED_BY_RECIPIENT",
                    subject=f"numbers:{number}",
                )
        case_id = await next_return_id(txn.conn)
        deadline = self.window.calendar.end_of_business_days(notified_at, ANSWER_BUSINESS_DAYS)
        new = NewReturn(
            id=case_id,
            port_request_id=command.port_request_id,
            donor=port.donor,
            recipient=port.recipient,
            numbers=numbers,
            state=State.REQUESTED,
            resolution=command.resolution,
            notified_at=notified_at,
            answer_deadline=deadline,
        )
        try:
            # A savepoint: the transaction must still read which return is under way.
            async with txn.conn.transaction():
                row = await insert_return(txn.conn, new)
        except asyncpg.UniqueViolationError:
            live = await open_return_of(txn.conn, command.port_request_id)
            raise AlreadyExists(
                "return",
                live,
                f"port {command.port_request_id} already has a return under way: {live}",
                collided=command.port_request_id,
            ) from None
        txn.set_deadline(FLOW, DeadlineKind.ANSWER, case_id, deadline, ANSWER_NOTE)
        emit_return(txn, "requested", row, caller.operator, to=(row["recipient"],))
        return row

    async def answer_return(self, txn: Txn, caller: Caller, command: AnswerReturn) -> Record:
        """AR with the disabling instant (inside a change window), or DR with a reason."""
        disable_at = self._checked_answer(command, txn.now)
        row = await self._load(txn, command.return_id, caller, "recipient")
        if row["state"] != State.REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} was already answered ({row['state']})", subject=row["id"]
            )
        if command.accept:
            assert disable_at is not None  # required when accepting
            self._check_in_term(disable_at, txn.now, row["answer_deadline"])
        if answered_late(txn.now, row["answer_deadline"]):
            await self._breach(txn, RETURN_ANSWER, row["recipient"], row, row["answer_deadline"])
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        if not command.accept:
            denied = {
                "state": State.DENIED,
                "denial": command.denial,
                "denial_reason": command.denial_reason,
            }
            row = await RETURNS.update(txn, row["id"], denied)
            emit_return(txn, "denied", row, caller.operator, to=(row["donor"],))
            return row
        assert disable_at is not None
        row = await RETURNS.update(
            txn, row["id"], {"state": State.SCHEDULED, "disable_at": disable_at}
        )
        txn.set_deadline(FLOW, DeadlineKind.EXECUTE, row["id"], disable_at, EXECUTE_NOTE)
        emit_return(txn, "accepted", row, caller.operator, to=(row["donor"],))
        return row

    def _check_in_term(
        self, disable_at: datetime, now: datetime, answer_deadline: datetime
    ) -> None:
        """The disabling instant falls before the end of the recipient's term (or of the next
        change window when none opens before that end); OUT_OF_RANGE on `disable_at` otherwise."""
        limit = disabling_limit(answer_deadline, self._next_window_end(now))
        if disable_at >= limit:
            raise OutOfRange(
                "disable_at",
                f"must come before {limit.isoformat()}: the end of the recipient's"
                f" {ANSWER_BUSINESS_DAYS} business days"
                if limit == answer_deadline
                else f"must come before {limit.isoformat()}: no change window opens before the"
                f" end of the term ({answer_deadline.isoformat()}), so the next one",
                reason=Reason.BEYOND_TERM,
            )

    def _next_window_end(self, now: datetime) -> datetime:
        """The end of the change window open now, or else of the next one to open."""
        window = self.window.containing(now)
        if window is not None:
            return window[1]
        day = self.window.calendar.local_date(now)
        start = self.window.start_on(day)
        if start <= now:
            start = self.window.start_on(day + timedelta(days=1))
        return self.window.end_for(start)

    def _checked_answer(self, command: AnswerReturn, now: datetime) -> datetime | None:
        """The disabling instant given (None when unset), or the answer's faults (all of them)."""
        v = Violations()
        check_case_id(v, "return_id", command.return_id, "RT")
        disable_at = check_instant(v, "disable_at", command.disable_at, required=command.accept)
        if command.accept and disable_at is not None and self.window.containing(disable_at) is None:
            v.add("disable_at", "must fall inside a change window")
        if command.accept and disable_at is not None and disable_at <= now:
            v.add("disable_at", "must be in the future")
        if not command.accept:
            _check_denial(v, command)
        v.raise_if_any()
        return disable_at

    async def _not_answered(self, txn: Txn, deadline: Deadline) -> None:
        row = await RETURNS.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.REQUESTED:
            await self._breach(txn, RETURN_ANSWER, row["recipient"], row, deadline.due_at)

    async def _execute(self, txn: Txn, deadline: Deadline) -> None:
        row = await RETURNS.lock(txn, deadline.case_id)
        if row is None or row["state"] != State.SCHEDULED:
            return
        await move_numbers(txn, row["numbers"], row["donor"], reason="return", case_id=row["id"])
        row = await RETURNS.update(
            txn, row["id"], {"state": State.EXECUTED, "executed_at": txn.now}
        )
        window = self.window.containing(row["disable_at"])
        disable_by = window[1] if window else row["disable_at"] + self.window.max_outage
        txn.set_deadline(FLOW, DeadlineKind.RECIPIENT_DISABLE, row["id"], disable_by, DISABLE_NOTE)
        txn.set_deadline(
            FLOW,
            DeadlineKind.DONOR_ENABLE,
            row["id"],
            row["disable_at"] + self.window.max_outage,
            ENABLE_NOTE,
        )
        emit_return(txn, "executed", row, CLEARINGHOUSE, to=(row["donor"], row["recipient"]))

    async def confirm_return_execution(
        self, txn: Txn, caller: Caller, command: ConfirmReturnExecution
    ) -> Record:
        """The recipient disabled the numbers; the donor enabled them."""
        v = Violations()
        check_case_id(v, "return_id", command.return_id, "RT")
        if command.step is None:
            v.add("step", STEP_REQUIRED)
        v.raise_if_any()
        assert command.step is not None
        role, column, kind = _STEPS[command.step]
        row = await self._load(txn, command.return_id, caller, role)
        if row["state"] != State.EXECUTED or row[column] is not None:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting this confirmation ({row['state']})", subject=row["id"]
            )
        due = await deadline_due(txn.conn, row["id"], kind)
        if due is not None and txn.now > due:
            rule = RETURN_DISABLE if role == "recipient" else RETURN_ENABLE
            await self._breach(txn, rule, caller.operator, row, due)
        other = "donor_enabled_at" if role == "recipient" else "recipient_disabled_at"
        changes: dict[str, Any] = {column: txn.now}
        if row[other] is not None:
            changes["state"] = State.COMPLETED
        row = await RETURNS.update(txn, row["id"], changes)
        txn.cancel_deadlines(FLOW, row["id"], kind)
        confirmed = "recipient_confirmed" if role == "recipient" else "donor_confirmed"
        emit_return(
            txn,
            confirmed,
            row,
            caller.operator,
            to=(row["donor"] if role == "recipient" else row["recipient"],),
        )
        return row

    async def _confirmation_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await RETURNS.lock(txn, deadline.case_id)
        if row is None:
            return
        if deadline.kind == DeadlineKind.RECIPIENT_DISABLE and row["recipient_disabled_at"] is None:
            await self._breach(txn, RETURN_DISABLE, row["recipient"], row, deadline.due_at)
        elif deadline.kind == DeadlineKind.DONOR_ENABLE and row["donor_enabled_at"] is None:
            await self._breach(txn, RETURN_ENABLE, row["donor"], row, deadline.due_at)

    async def get_return(self, caller: Caller, command: GetReturn) -> Record:
        """A return, for its two parties and the regulator."""
        v = Violations()
        check_case_id(v, "return_id", command.return_id, "RT")
        v.raise_if_any()
        return await RETURNS.read_for(
            self.core.db, command.return_id, caller.operator, sees_all=caller.is_regulator
        )


def _check_request(command: RequestReturn) -> None:
    """Every fault of an SR."""
    v = Violations()
    check_case_id(v, "port_request_id", command.port_request_id, "SP")
    if not printable(command.resolution, limit=RESOLUTION_LIMIT):
        v.add("resolution", "required: the resolution that upheld the claim")
    v.raise_if_any()


def _check_denial(v: Violations, command: AnswerReturn) -> None:
    """A DR names its typed reason; the explanation is optional but for OTHER."""
    if command.denial is None:
        v.add("denial", "required when denying: a RETURN_DENIAL_REASON_* value")
    text = command.denial_reason
    if command.denial == DenialReason.OTHER and not text:
        v.add("denial_reason", "required with RETURN_DENIAL_REASON_OTHER: the reason")
    elif text and not printable(text, limit=DENIAL_REASON_LIMIT):
        v.add("denial_reason", f"up to {DENIAL_REASON_LIMIT} printable characters")
