"""Returns of ported numbers to their range holders.

Disconnection: a ported number whose service ended goes back to the holder of its range at once,
and every operator learns it from the registry broadcast. Lack of consent (article 30): the donor
asks the numbers back (SR); the recipient gives the disabling instant within 5 business days of
the notification of the resolution (AR, infraction 30) or denies (DR); the numbers go back at that
instant inside a change window, broadcast to all; then the recipient's disabling (32) and the
donor's enabling within 3 hours (33) are confirmed against their deadlines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

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
    PermissionDenied,
)
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import ChangeWindow, timestamp, to_timestamp, within
from npc.core.numbers import move_numbers, who_serves
from npc.core.runtime import Core
from npc.core.validation import Violations, check_case_id, printable
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.rules import DeadlineKind, State
from npc.flows.registry.store import FLOW
from npc.store.database import Txn
from npc.v1 import registry_pb2 as pb


class ReturnsHandler:
    """Commands that send numbers back to their range holders."""

    def __init__(self, registry: RegistryHandler) -> None:
        self.registry = registry

    async def report_disconnection(
        self, txn: Txn, caller: Caller, request: pb.ReportDisconnectionRequest
    ) -> pb.ReportDisconnectionResponse:
        """Send the caller's disconnected ported numbers home and broadcast the change."""
        if caller.is_regulator:
            raise PermissionDenied("the regulator's identity is read-only")
        numbers = list(request.numbers)
        self.registry.check_numbers(numbers, "numbers")
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument(FieldViolation("numbers", "a number appears twice"))
        live = await self.registry.core.ports.with_live_request(txn.conn, numbers)
        by_holder: dict[str, list[str]] = {}
        for row in await who_serves(txn.conn, numbers):
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
            assert row.holder is not None  # a ported number lies in a range
            by_holder.setdefault(row.holder, []).append(number)
        for holder, home in sorted(by_holder.items()):
            await move_numbers(
                txn,
                home,
                holder,
                reason="disconnection",
                case_id=f"DX:{caller.operator}:{request.request_id}",
            )
        routing = await self.registry.lookup(numbers, conn=txn.conn)
        return pb.ReportDisconnectionResponse(returned=routing)


RETURN_ANSWER = Rule(
    "return_schedule",
    30,
    "art. 30",
    "leve",
    "recipient",
    "Give the date and time of disabling within 5 business days of the notification of the "
    "resolution that upheld the lack-of-consent claim.",
)
RETURN_DISABLE = Rule(
    "return_recipient_disable",
    32,
    "art. 30",
    "grave",
    "recipient",
    "Disable the numbers at the date and time given to the clearinghouse.",
)
RETURN_ENABLE = Rule(
    "return_donor_enable",
    33,
    "art. 30",
    "grave",
    "donor",
    "Enable the numbers again with at most 3 hours without service.",
)
RETURNS = CaseTable(FLOW, "number_returns", "return", ("donor", "recipient"))

RETURN_STATES = {
    "requested": pb.RETURN_STATE_REQUESTED,
    "scheduled": pb.RETURN_STATE_SCHEDULED,
    "denied": pb.RETURN_STATE_DENIED,
    "executed": pb.RETURN_STATE_EXECUTED,
    "completed": pb.RETURN_STATE_COMPLETED,
}


def return_message(row: Any) -> pb.NumberReturn:
    """A number_returns row as its API message."""
    return pb.NumberReturn(
        id=row["id"],
        port_request_id=row["port_request_id"],
        donor=row["donor"],
        recipient=row["recipient"],
        numbers=row["numbers"],
        state=RETURN_STATES[row["state"]],
        resolution=row["resolution"],
        notified_at=to_timestamp(row["notified_at"]),
        answer_deadline=to_timestamp(row["answer_deadline"]),
        disable_at=to_timestamp(row["disable_at"]),
        denial_reason=row["denial_reason"] or "",
        executed_at=to_timestamp(row["executed_at"]),
        recipient_disabled_at=to_timestamp(row["recipient_disabled_at"]),
        donor_enabled_at=to_timestamp(row["donor_enabled_at"]),
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

    def _emit(
        self, txn: Txn, type_: str, row: Any, sender: str, *, to: tuple[str, ...] = ()
    ) -> None:
        txn.emit(
            FLOW,
            f"registry.return.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=to,
            payload={
                "return_id": row["id"],
                "port_request_id": row["port_request_id"],
                "donor": row["donor"],
                "recipient": row["recipient"],
                "numbers": list(row["numbers"]),
                "state": row["state"],
                "disable_at": row["disable_at"].isoformat() if row["disable_at"] else None,
            },
        )

    async def _load(self, txn: Txn, case_id: str, caller: Caller, role: str) -> Any:
        v = Violations()
        check_case_id(v, "return_id", case_id, "RT")
        v.raise_if_any()
        return await RETURNS.lock_for(txn, case_id, caller.operator, role)

    async def _breach(self, txn: Txn, rule: Rule, operator: str, row: Any, due: datetime) -> None:
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

    async def request_return(
        self, txn: Txn, caller: Caller, request: pb.RequestReturnRequest
    ) -> pb.NumberReturn:
        """SR: the donor of a port found to lack consent asks its numbers back."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        if not printable(request.resolution, limit=100):
            v.add("resolution", "required: the resolution that upheld the claim")
        notified_at = timestamp(v, "notified_at", request, "notified_at")
        within(
            v,
            "notified_at",
            notified_at,
            txn.now,
            past=timedelta(days=60),
            future=timedelta(minutes=5),
        )
        v.raise_if_any()
        assert notified_at is not None
        ports = self.core.ports
        port = await ports.port(txn.conn, request.port_request_id)
        if port is None:
            raise NotFound("port_request", request.port_request_id)
        if port.donor != caller.operator:
            raise PermissionDenied("only the donor of the port asks for a return")
        of_port = await ports.numbers_of(txn.conn, port.id)
        numbers = list(request.numbers) or of_port
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
        case_id = f"RT{await txn.conn.fetchval('SELECT nextval($1)', 'number_return_seq'):010d}"
        deadline = self.window.calendar.end_of_business_days(notified_at, 5)
        try:
            row = await txn.conn.fetchrow(
                """INSERT INTO number_returns (id, port_request_id, donor, recipient, numbers, state,
                       resolution, notified_at, answer_deadline)
                   VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8) RETURNING *""",
                case_id,
                request.port_request_id,
                port.donor,
                port.recipient,
                numbers,
                request.resolution,
                notified_at,
                deadline,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                "return", request.port_request_id, "this port already has a return under way"
            ) from None
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            case_id,
            deadline,
            "recipient gives the disabling date within 5 business days (art. 30, infraction 30)",
        )
        self._emit(txn, "requested", row, caller.operator, to=(row["recipient"],))
        return return_message(row)

    async def answer_return(
        self, txn: Txn, caller: Caller, request: pb.AnswerReturnRequest
    ) -> pb.NumberReturn:
        """AR with the disabling instant (inside a change window), or DR with a reason."""
        v = Violations()
        disable_at = timestamp(v, "disable_at", request, "disable_at", required=request.accept)
        if request.accept and disable_at is not None and self.window.containing(disable_at) is None:
            v.add("disable_at", "must fall inside a change window")
        if request.accept and disable_at is not None and disable_at <= txn.now:
            v.add("disable_at", "must be in the future")
        if not request.accept and not printable(request.denial_reason, limit=500):
            v.add("denial_reason", "required when denying: up to 500 printable characters")
        v.raise_if_any()
        row = await self._load(txn, request.return_id, caller, "recipient")
        if row["state"] != State.REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} was already answered ({row['state']})", subject=row["id"]
            )
        if txn.now > row["answer_deadline"]:
            await self._breach(txn, RETURN_ANSWER, row["recipient"], row, row["answer_deadline"])
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.ANSWER)
        if not request.accept:
            row = await RETURNS.update(
                txn, row["id"], {"state": State.DENIED, "denial_reason": request.denial_reason}
            )
            self._emit(txn, "denied", row, caller.operator, to=(row["donor"],))
            return return_message(row)
        assert disable_at is not None
        row = await RETURNS.update(
            txn, row["id"], {"state": State.SCHEDULED, "disable_at": disable_at}
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.EXECUTE,
            row["id"],
            disable_at,
            "numbers go back at the given instant",
        )
        self._emit(txn, "accepted", row, caller.operator, to=(row["donor"],))
        return return_message(row)

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
        txn.set_deadline(
            FLOW,
            DeadlineKind.RECIPIENT_DISABLE,
            row["id"],
            disable_by,
            "recipient disables at the given time (art. 30, infraction 32)",
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.DONOR_ENABLE,
            row["id"],
            row["disable_at"] + self.window.max_outage,
            "donor enables within 3 hours (art. 30, infraction 33)",
        )
        self._emit(txn, "executed", row, CLEARINGHOUSE, to=(row["donor"], row["recipient"]))

    async def confirm_return_execution(
        self, txn: Txn, caller: Caller, request: pb.ConfirmReturnExecutionRequest
    ) -> pb.NumberReturn:
        """The recipient disabled the numbers; the donor enabled them."""
        steps = {
            pb.RETURN_STEP_RECIPIENT_DISABLED: (
                "recipient",
                "recipient_disabled_at",
                DeadlineKind.RECIPIENT_DISABLE,
            ),
            pb.RETURN_STEP_DONOR_ENABLED: ("donor", "donor_enabled_at", DeadlineKind.DONOR_ENABLE),
        }
        if request.step not in steps:
            raise InvalidArgument(
                FieldViolation(
                    "step", "RETURN_STEP_RECIPIENT_DISABLED or RETURN_STEP_DONOR_ENABLED"
                )
            )
        role, column, kind = steps[request.step]
        row = await self._load(txn, request.return_id, caller, role)
        if row["state"] != State.EXECUTED or row[column] is not None:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting this confirmation ({row['state']})", subject=row["id"]
            )
        due = await txn.conn.fetchval(
            "SELECT due_at FROM deadlines WHERE flow = $1 AND case_id = $2 AND kind = $3",
            FLOW,
            row["id"],
            kind,
        )
        if due is not None and txn.now > due:
            rule = RETURN_DISABLE if role == "recipient" else RETURN_ENABLE
            await self._breach(txn, rule, caller.operator, row, due)
        other = "donor_enabled_at" if role == "recipient" else "recipient_disabled_at"
        changes: dict[str, Any] = {column: txn.now}
        if row[other] is not None:
            changes["state"] = State.COMPLETED
        row = await RETURNS.update(txn, row["id"], changes)
        txn.cancel_deadlines(FLOW, row["id"], kind)
        self._emit(
            txn,
            f"{role}_confirmed",
            row,
            caller.operator,
            to=(row["donor"] if role == "recipient" else row["recipient"],),
        )
        return return_message(row)

    async def _confirmation_missed(self, txn: Txn, deadline: Deadline) -> None:
        row = await RETURNS.lock(txn, deadline.case_id)
        if row is None:
            return
        if deadline.kind == DeadlineKind.RECIPIENT_DISABLE and row["recipient_disabled_at"] is None:
            await self._breach(txn, RETURN_DISABLE, row["recipient"], row, deadline.due_at)
        elif deadline.kind == DeadlineKind.DONOR_ENABLE and row["donor_enabled_at"] is None:
            await self._breach(txn, RETURN_ENABLE, row["donor"], row, deadline.due_at)

    async def get_return(self, caller: Caller, request: pb.GetReturnRequest) -> pb.NumberReturn:
        """A return, for its two parties and the regulator."""
        v = Violations()
        check_case_id(v, "return_id", request.return_id, "RT")
        v.raise_if_any()
        row = await RETURNS.read_for(
            self.core.db, request.return_id, caller.operator, sees_all=caller.is_regulator
        )
        return return_message(row)
