"""Suspension for debt and reactivation of ported numbers (article 13).

    requested --recipient confirms--> suspended --donor: paid--> reactivation_due --> reactivated
                                          \\--30 calendar days--/

Deadlines: the recipient suspends within 2 business days of the request (infraction 13); the donor
asks reactivation within 1 business day of the payment (14); the recipient reactivates within 24
hours of the request (15). A suspension lasts at most 30 calendar days: then reactivation is due
as if the donor had asked it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from npc.core import numbers
from npc.core.cases import CaseTable
from npc.core.compliance import Rule, record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import timestamp, to_timestamp, within
from npc.core.runtime import Core
from npc.core.validation import AMOUNT, CURRENCY, RECEIPT, Violations, check_case_id, parse_date
from npc.flows.suspension.rules import DeadlineKind, State
from npc.store.database import Txn
from npc.v1 import common_pb2
from npc.v1 import suspension_pb2 as pb

FLOW = "suspension"
WAIT_AFTER_DISABLING = timedelta(days=30)
MAX_SUSPENSION = timedelta(days=30)
REACTIVATE_WITHIN = timedelta(hours=24)

SUSPEND = Rule(
    "recipient_suspend",
    13,
    "art. 13 (iii)",
    "leve",
    "recipient",
    "Suspend the number within 2 business days of the donor's request.",
)
ASK_REACTIVATION = Rule(
    "donor_request_reactivation",
    14,
    "art. 13 (iv)",
    "leve",
    "donor",
    "Ask reactivation within 1 business day of receiving the payment or claim.",
)
REACTIVATE = Rule(
    "recipient_reactivate",
    15,
    "art. 13 (v)",
    "leve",
    "recipient",
    "Reactivate the number within 24 hours of the donor's request.",
)

CASES = CaseTable(FLOW, "suspensions", "suspension", ("donor", "recipient"))

STATES = {
    "requested": pb.SUSPENSION_STATE_REQUESTED,
    "suspended": pb.SUSPENSION_STATE_SUSPENDED,
    "reactivation_due": pb.SUSPENSION_STATE_REACTIVATION_DUE,
    "reactivated": pb.SUSPENSION_STATE_REACTIVATED,
}


def message(row: Any) -> pb.Suspension:
    """A suspensions row as its API message."""
    return pb.Suspension(
        id=row["id"],
        port_request_id=row["port_request_id"],
        number=row["number"],
        donor=row["donor"],
        recipient=row["recipient"],
        state=STATES[row["state"]],
        bill_number=row["bill_number"],
        due_date=row["due_date"].isoformat(),
        owed=common_pb2.Money(amount=row["amount"], currency=row["currency"]),
        requested_at=to_timestamp(row["requested_at"]),
        suspend_deadline=to_timestamp(row["suspend_deadline"]),
        suspended_at=to_timestamp(row["suspended_at"]),
        suspension_ends_at=to_timestamp(row["suspension_ends_at"]),
        paid_at=to_timestamp(row["paid_at"]),
        reactivation_requested_at=to_timestamp(row["reactivation_requested_at"]),
        reactivation_deadline=to_timestamp(row["reactivation_deadline"]),
        reactivated_at=to_timestamp(row["reactivated_at"]),
    )


def _payload(row: Any) -> dict[str, Any]:
    return {
        "suspension_id": row["id"],
        "port_request_id": row["port_request_id"],
        "number": row["number"],
        "donor": row["donor"],
        "recipient": row["recipient"],
        "state": row["state"],
        "bill_number": row["bill_number"],
        "due_date": row["due_date"].isoformat(),
        "amount": row["amount"],
        "currency": row["currency"],
    }


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

    def _emit(self, txn: Txn, type_: str, row: Any, sender: str, to: tuple[str, ...]) -> None:
        txn.emit(
            FLOW,
            f"suspension.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=to,
            payload=_payload(row),
        )

    async def _breach(self, txn: Txn, rule: Rule, operator: str, row: Any, due: Any) -> None:
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
        self, txn: Txn, caller: Caller, request: pb.RequestSuspensionRequest
    ) -> pb.Suspension:
        """The donor asks the recipient to suspend a number it ported away, for an unpaid bill."""
        v = Violations()
        check_case_id(v, "port_request_id", request.port_request_id, "SP")
        if not request.number.isascii() or not request.number.isdigit():
            v.add("number", "required: the ported number")
        if not RECEIPT.fullmatch(request.bill_number):
            v.add("bill_number", "required: the bill or collection letter number")
        due = parse_date(request.due_date)
        if due is None:
            v.add("due_date", "required: the bill's due date, YYYY-MM-DD")
        if not AMOUNT.fullmatch(request.owed.amount) or float(request.owed.amount) <= 0:
            v.add("owed.amount", "required: a positive amount such as 120.50")
        if not CURRENCY.fullmatch(request.owed.currency):
            v.add("owed.currency", "required: an ISO 4217 code such as PEN")
        v.raise_if_any()
        ports = self.core.ports
        port = await ports.port(txn.conn, request.port_request_id)
        if port is None or not await ports.includes(txn.conn, port.id, request.number):
            raise NotFound("port_request", f"{request.port_request_id}/{request.number}")
        if port.donor != caller.operator:
            raise PermissionDenied("only the donor of the port asks for a suspension")
        serving = await numbers.ported_to(txn.conn, request.number)
        if port.disabled_at is None or serving != port.recipient:
            raise FailedPrecondition(
                "the number is not served by the recipient of this port",
                violation_type="NOT_PORTED",
                subject="number",
            )
        allowed_from = port.disabled_at + WAIT_AFTER_DISABLING
        if txn.now < allowed_from:
            raise FailedPrecondition(
                f"a suspension may be asked only 30 calendar days after disabling, from {allowed_from.isoformat()}",
                violation_type="TOO_EARLY",
                subject="number",
            )
        case_id = f"SU{await txn.conn.fetchval('SELECT nextval($1)', 'suspension_seq'):010d}"
        deadline = self.calendar.end_of_business_days(txn.now, 2)
        try:
            row = await txn.conn.fetchrow(
                """INSERT INTO suspensions (id, port_request_id, number, donor, recipient, state,
                       bill_number, due_date, amount, currency, requested_at, suspend_deadline)
                   VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $9, $10, $11) RETURNING *""",
                case_id,
                request.port_request_id,
                request.number,
                port.donor,
                port.recipient,
                request.bill_number,
                due,
                request.owed.amount,
                request.owed.currency,
                txn.now,
                deadline,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                "suspension",
                request.number,
                f"number {request.number} already has a suspension under way",
            ) from None
        txn.set_deadline(
            FLOW,
            DeadlineKind.SUSPEND,
            case_id,
            deadline,
            "recipient suspends within 2 business days (art. 13 (iii), infraction 13)",
        )
        self._emit(txn, "requested", row, caller.operator, (row["recipient"],))
        return message(row)

    async def confirm_suspension(
        self, txn: Txn, caller: Caller, request: pb.ConfirmSuspensionRequest
    ) -> pb.Suspension:
        """The recipient suspended the number."""
        v = Violations()
        check_case_id(v, "suspension_id", request.suspension_id, "SU")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.suspension_id, caller.operator, "recipient")
        if row["state"] != State.REQUESTED:
            raise FailedPrecondition(
                f"{row['id']} is not awaiting suspension ({row['state']})", subject=row["id"]
            )
        if txn.now > row["suspend_deadline"]:
            await self._breach(txn, SUSPEND, row["recipient"], row, row["suspend_deadline"])
        ends = txn.now + MAX_SUSPENSION
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
            ends,
            "a suspension lasts at most 30 calendar days",
        )
        self._emit(txn, "suspended", row, caller.operator, (row["donor"],))
        return message(row)

    async def request_reactivation(
        self, txn: Txn, caller: Caller, request: pb.RequestReactivationRequest
    ) -> pb.Suspension:
        """The donor received the payment (or a claim): reactivation is due within 24 hours."""
        v = Violations()
        check_case_id(v, "suspension_id", request.suspension_id, "SU")
        paid_at = timestamp(v, "paid_at", request, "paid_at")
        within(
            v, "paid_at", paid_at, txn.now, past=timedelta(days=365), future=timedelta(minutes=5)
        )
        v.raise_if_any()
        assert paid_at is not None
        row = await CASES.lock_for(txn, request.suspension_id, caller.operator, "donor")
        if row["state"] not in (State.REQUESTED, State.SUSPENDED):
            raise FailedPrecondition(
                f"{row['id']} is not suspended ({row['state']})", subject=row["id"]
            )
        limit = self.calendar.end_of_business_days(paid_at, 1)
        if txn.now > limit:
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
            return message(row)
        row = await self._reactivation_due(txn, row, paid_at=paid_at)
        self._emit(txn, "reactivation_requested", row, caller.operator, (row["recipient"],))
        return message(row)

    async def _reactivation_due(self, txn: Txn, row: Any, *, paid_at: Any = None) -> Any:
        deadline = txn.now + REACTIVATE_WITHIN
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
        txn.set_deadline(
            FLOW,
            DeadlineKind.REACTIVATE,
            row["id"],
            deadline,
            "recipient reactivates within 24 hours (art. 13 (v), infraction 15)",
        )
        return row

    async def confirm_reactivation(
        self, txn: Txn, caller: Caller, request: pb.ConfirmReactivationRequest
    ) -> pb.Suspension:
        """The recipient reactivated the number."""
        v = Violations()
        check_case_id(v, "suspension_id", request.suspension_id, "SU")
        v.raise_if_any()
        row = await CASES.lock_for(txn, request.suspension_id, caller.operator, "recipient")
        if row["state"] not in (State.SUSPENDED, State.REACTIVATION_DUE):
            raise FailedPrecondition(
                f"{row['id']} is not suspended ({row['state']})", subject=row["id"]
            )
        if row["reactivation_deadline"] is not None and txn.now > row["reactivation_deadline"]:
            await self._breach(txn, REACTIVATE, row["recipient"], row, row["reactivation_deadline"])
        row = await CASES.update(
            txn, row["id"], {"state": State.REACTIVATED, "reactivated_at": txn.now}
        )
        txn.cancel_deadlines(FLOW, row["id"])
        self._emit(txn, "reactivated", row, caller.operator, (row["donor"],))
        return message(row)

    async def get_suspension(
        self, caller: Caller, request: pb.GetSuspensionRequest
    ) -> pb.Suspension:
        """A suspension, for its two parties and the regulator."""
        v = Violations()
        check_case_id(v, "suspension_id", request.suspension_id, "SU")
        v.raise_if_any()
        row = await CASES.read_for(
            self.core.db, request.suspension_id, caller.operator, sees_all=caller.is_regulator
        )
        return message(row)

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
