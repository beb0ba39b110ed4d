"""Suspension requests into the flow's commands, and its rows into API messages."""

from __future__ import annotations

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.dates import read_date, to_date
from npc.core.instants import read_instant, to_timestamp
from npc.flows.suspension.model import (
    Money,
    ReactivationRequest,
    SuspensionRef,
    SuspensionRequest,
)
from npc.flows.suspension.rules import State
from npc.v1 import common_pb2
from npc.v1 import suspension_pb2 as pb

STATES = WireEnum(pb.SuspensionState, State)


def suspension_request(request: pb.RequestSuspensionRequest) -> SuspensionRequest:
    """RequestSuspension's command."""
    return SuspensionRequest(
        port_request_id=request.port_request_id,
        number=request.number,
        bill_number=request.bill_number,
        due_date=read_date(request, "due_date"),
        owed=Money(amount=request.owed.amount, currency=request.owed.currency),
    )


def suspension_ref(
    request: pb.ConfirmSuspensionRequest | pb.ConfirmReactivationRequest | pb.GetSuspensionRequest,
) -> SuspensionRef:
    """The suspension a confirmation or a read names."""
    return SuspensionRef(suspension_id=request.suspension_id)


def reactivation_request(request: pb.RequestReactivationRequest) -> ReactivationRequest:
    """RequestReactivation's command."""
    return ReactivationRequest(
        suspension_id=request.suspension_id, paid_at=read_instant(request, "paid_at")
    )


def suspension_message(row: Record) -> pb.Suspension:
    """A suspensions row as its API message."""
    return pb.Suspension(
        id=row["id"],
        port_request_id=row["port_request_id"],
        number=row["number"],
        donor=row["donor"],
        recipient=row["recipient"],
        state=STATES.to_wire(row["state"]),  # type: ignore[arg-type]
        bill_number=row["bill_number"],
        due_date=to_date(row["due_date"]),
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
