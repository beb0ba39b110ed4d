"""Suspension for debt and reactivation of ported numbers (article 13).

    requested --recipient confirms--> suspended --donor: paid--> reactivation_due --> reactivated
                                          \\--30th calendar day--/

Deadlines: the recipient suspends within 2 business days of the request (infraction 13); the donor
asks reactivation within 1 business day of the payment (14); the recipient reactivates within 24
hours of the request (15). A suspension lasts at most 30 calendar days of Lima: when its 30th day
begins, reactivation is due as if the donor had asked it, by the end of that day. The terms are
defined in `rules`.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg
from asyncpg import Record

from npc.core import numbers
from npc.core.cases import refusal
from npc.core.compliance import Rule, record_breach
from npc.core.dates import check_date
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import check_instant, within
from npc.core.runtime import Core
from npc.core.validation import AMOUNT, CURRENCY, RECEIPT, Violations, check_case_id
from npc.flows.suspension import store
from npc.flows.suspension.events import suspension_payload
from npc.flows.suspension.model import (
    NewSuspension,
    ReactivationRequest,
    SuspensionRef,
    SuspensionRequest,
)
from npc.flows.suspension.rules import (
    ASK_REACTIVATION,
    ASK_REACTIVATION_WITHIN_BUSINESS_DAYS,
    CLOCK_SKEW,
    FLOW,
    MAX_DURATION_NOTE,
    PAID_AT_PAST,
    REACTIVATE,
    REACTIVATE_NOTE,
    REACTIVATE_WITHIN,
    SUSPEND,
    SUSPEND_NOTE,
    SUSPEND_WITHIN_BUSINESS_DAYS,
    WAIT_AFTER_DISABLING_DAYS,
    DeadlineKind,
    State,
    reactivation_due_from,
    suspension_allowed_from,
    suspension_ends_at,
)
from npc.flows.suspension.store import CASES
from npc.store.database import Txn

__all__ = ["FLOW", "SuspensionHandler"]


def _check_request(request: SuspensionRequest) -> date:
    """Every field of a suspension request; returns the bill's due date."""
    v = Violations()
    check_case_id(v, "port_request_id", request.port_request_id, "SP")
    if not request.number.isascii() or not request.number.isdigit():
        v.add("number", "required: the ported number")
    if not RECEIPT.fullmatch(request.bill_number):
        v.add("bill_number", "required: the bill or collection letter number")
    due = check_date(v, "due_date", request.due_date, missing="required: the bill's due date")
    if not AMOUNT.fullmatch(request.owed.amount) or float(request.owed.amount) <= 0:
        v.add("owed.amount", "required: a positive amount such as 120.50")
    if not CURRENCY.fullmatch(request.owed.currency):
        v.add("owed.currency", "required: an ISO 4217 code such as PEN")
    v.raise_if_any()
    assert due is not None
    return due


def _check_suspension_id(suspension_id: str) -> None:
    v = Violations()
    check_case_id(v, "suspension_id", suspension_id, "SU")
    v.raise_if_any()


class SuspensionHandler:
    """Commands and deadlines of suspensions for debt."""

    def __init__(self, core: Core, jurisdiction: str) -> None:
        self.core = core
        self.calendar = core.calendar(jurisdiction)

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.SUSPEND, self._not_suspended)
        self.core.deadlines.register(FLOW, DeadlineKind.MAX_DURATION, self._suspension_ended)
        self.core.deadlines.register(FLOW, DeadlineKind.REACTIVATE, self._not_reactivated)

    def _emit(self, txn: Txn, type_: str, row: Record, sender: str, to: tuple[str, ...]) -> None:
        txn.emit(
            FLOW,
            f"suspension.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=to,
            payload=suspension_payload(row),
        )

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
            evidence={"number": row["number"], "due_at": due.isoformat()},
        )

    async def request_suspension(
        self, txn: Txn, caller: Caller, request: SuspensionRequest
    ) -> Record:
        """The donor asks the recipient to suspend a number it ported away, for an unpaid bill."""
        due = _check_request(request)
        ports = self.core.ports
        port = await ports.port(txn.conn, request.port_request_id)
        if port is None or not await ports.includes(txn.conn, port.id, request.number):
            raise NotFound("port_request", f"{request.port_request_id}/{request.number}")
        if port.donor != caller.operator:
            raise refusal(
                caller,
                (port.donor, port.recipient),
                "port_request",
                f"{request.port_request_id}/{request.number}",
                "only the donor of the port asks for a suspension",
            )
        serving = await numbers.ported_to(txn.conn, request.number)
        if port.disabled_at is None or serving != port.recipient:
            raise FailedPrecondition(
                "the number is not served by the recipient of this port",
                violation_type="NOT_PORTED",
                subject="number",
            )
        allowed_from = suspension_allowed_from(self.calendar, port.disabled_at)
        if txn.now < allowed_from:
            raise FailedPrecondition(
                f"a suspension may be asked only {WAIT_AFTER_DISABLING_DAYS} calendar days after"
                f" disabling, from {allowed_from.isoformat()}",
                violation_type="TOO_EARLY",
                subject="number",
            )
        case_id = await store.next_suspension_id(txn.conn)
        deadline = self.calendar.end_of_business_days(txn.now, SUSPEND_WITHIN_BUSINESS_DAYS)
        suspension = NewSuspension(
            id=case_id,
            port_request_id=request.port_request_id,
            number=request.number,
            donor=port.donor,
            recipient=port.recipient,
            bill_number=request.bill_number,
            due_date=due,
            amount=request.owed.amount,
            currency=request.owed.currency,
            requested_at=txn.now,
            suspend_deadline=deadline,
        )
        try:
            # A savepoint: the transaction must still read which suspension is under way.
            async with txn.conn.transaction():
                row = await store.insert_suspension(txn.conn, suspension)
        except asyncpg.UniqueViolationError:
            live = await store.open_suspension_of(txn.conn, request.number)
            raise AlreadyExists(
                "suspension",
                live,
                f"number {request.number} already has a suspension under way: {live}",
                collided=request.number,
            ) from None
        txn.set_deadline(FLOW, DeadlineKind.SUSPEND, case_id, deadline, SUSPEND_NOTE)
        self._emit(txn, "requested", row, caller.operator, (row["recipient"],))
        return row

    async def confirm_suspension(self, txn: Txn, caller: Caller, request: SuspensionRef) -> Record:
        """The recipient suspended the number."""
        _check_suspension_id(request.suspension_id)
        row = await CASES.lock_for(txn, request.suspension_id, caller, "recipient")
        if row["state"] != State.REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting suspension ({row['state']})", subject=row["id"]
            )
        # At a deadline's instant the step is late, as when its timer fires then.
        if txn.now >= row["suspend_deadline"]:
            await self._breach(txn, SUSPEND, row["recipient"], row, row["suspend_deadline"])
        ends = suspension_ends_at(self.calendar, txn.now)
        row = await CASES.update(
            txn,
            row["id"],
            {"state": State.SUSPENDED, "suspended_at": txn.now, "suspension_ends_at": ends},
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.SUSPEND)
        txn.set_deadline(
            FLOW,
            DeadlineKind.MAX_DURATION,
            row["id"],
            reactivation_due_from(ends),
            MAX_DURATION_NOTE,
        )
        self._emit(txn, "suspended", row, caller.operator, (row["donor"],))
        return row

    async def request_reactivation(
        self, txn: Txn, caller: Caller, request: ReactivationRequest
    ) -> Record:
        """The donor received the payment (or a claim): reactivation is due within 24 hours."""
        v = Violations()
        check_case_id(v, "suspension_id", request.suspension_id, "SU")
        paid_at = check_instant(v, "paid_at", request.paid_at)
        within(v, "paid_at", paid_at, txn.now, past=PAID_AT_PAST, future=CLOCK_SKEW)
        v.raise_if_any()
        assert paid_at is not None
        row = await CASES.lock_for(txn, request.suspension_id, caller, "donor")
        if row["state"] not in (State.REQUESTED, State.SUSPENDED):
            raise FailedPrecondition(
                f"{row['id']} is not suspended ({row['state']})", subject=row["id"]
            )
        limit = self.calendar.end_of_business_days(paid_at, ASK_REACTIVATION_WITHIN_BUSINESS_DAYS)
        if txn.now >= limit:  # the instant the business day ends belongs to the next day
            await self._breach(txn, ASK_REACTIVATION, row["donor"], row, limit)
        if row["state"] == State.REQUESTED:
            # Paid before the recipient suspended: nothing to suspend any more.
            row = await CASES.update(
                txn,
                row["id"],
                {
                    "state": State.REACTIVATED,
                    "paid_at": paid_at,
                    "reactivation_requested_at": txn.now,
                    "reactivated_at": txn.now,
                },
            )
            txn.cancel_deadlines(FLOW, row["id"])
            self._emit(txn, "withdrawn", row, caller.operator, (row["recipient"],))
            return row
        row = await self._reactivation_due(txn, row, paid_at=paid_at)
        self._emit(txn, "reactivation_requested", row, caller.operator, (row["recipient"],))
        return row

    async def _reactivation_due(
        self, txn: Txn, row: Record, *, paid_at: datetime | None = None
    ) -> Record:
        deadline = txn.now + REACTIVATE_WITHIN
        if row["suspension_ends_at"] is not None:
            # Never past the 30th day: the 24 hours end with the suspension's maximum.
            deadline = min(deadline, row["suspension_ends_at"])
        row = await CASES.update(
            txn,
            row["id"],
            {
                "state": State.REACTIVATION_DUE,
                "paid_at": paid_at,
                "reactivation_requested_at": txn.now,
                "reactivation_deadline": deadline,
            },
        )
        txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.MAX_DURATION)
        txn.set_deadline(FLOW, DeadlineKind.REACTIVATE, row["id"], deadline, REACTIVATE_NOTE)
        return row

    async def confirm_reactivation(
        self, txn: Txn, caller: Caller, request: SuspensionRef
    ) -> Record:
        """The recipient reactivated the number."""
        _check_suspension_id(request.suspension_id)
        row = await CASES.lock_for(txn, request.suspension_id, caller, "recipient")
        if row["state"] not in (State.SUSPENDED, State.REACTIVATION_DUE):
            raise FailedPrecondition(
                f"{row['id']} is not suspended ({row['state']})", subject=row["id"]
            )
        if row["reactivation_deadline"] is not None and txn.now >= row["reactivation_deadline"]:
            await self._breach(txn, REACTIVATE, row["recipient"], row, row["reactivation_deadline"])
        row = await CASES.update(
            txn, row["id"], {"state": State.REACTIVATED, "reactivated_at": txn.now}
        )
        txn.cancel_deadlines(FLOW, row["id"])
        self._emit(txn, "reactivated", row, caller.operator, (row["donor"],))
        return row

    async def get_suspension(self, caller: Caller, request: SuspensionRef) -> Record:
        """A suspension, for its two parties and the regulator."""
        _check_suspension_id(request.suspension_id)
        return await CASES.read_for(
            self.core.db, request.suspension_id, caller.operator, sees_all=caller.is_regulator
        )

    async def _not_suspended(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.REQUESTED:
            await self._breach(txn, SUSPEND, row["recipient"], row, deadline.due_at)

    async def _suspension_ended(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.SUSPENDED:
            row = await self._reactivation_due(txn, row)
            self._emit(txn, "ended", row, CLEARINGHOUSE, (row["recipient"], row["donor"]))

    async def _not_reactivated(self, txn: Txn, deadline: Deadline) -> None:
        row = await CASES.lock(txn, deadline.case_id)
        if row is not None and row["state"] == State.REACTIVATION_DUE:
            await self._breach(txn, REACTIVATE, row["recipient"], row, deadline.due_at)
