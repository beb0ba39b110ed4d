"""The registry's messages in and out: requests parsed into the flow's commands, answers rendered
from what the handlers return (domain records and number_returns rows)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.instants import read_instant, to_timestamp
from npc.flows.registry import model
from npc.flows.registry.rules import (
    SERVICE_SLOTS,
    DenialReason,
    ReturnStep,
    Service,
    State,
)
from npc.v1 import common_pb2
from npc.v1 import registry_pb2 as pb

SERVICES = WireEnum(common_pb2.ServiceType, Service)
RETURN_STATES = WireEnum(pb.ReturnState, State)
RETURN_STEPS = WireEnum(pb.ReturnStep, ReturnStep)
DENIAL_REASONS = WireEnum(pb.ReturnDenialReason, DenialReason)
_SERVICE_NUMBERS: dict[Service | None, int] = {None: 0} | {s: SERVICES.to_wire(s) for s in Service}
# The wire number of each of SERVICE_SLOTS, for answer columns.
_SLOT_NUMBERS = [_SERVICE_NUMBERS[s] for s in SERVICE_SLOTS]


# --------------------------------------------------------------------------------- lookups


def lookup_number(request: pb.LookupNumberRequest) -> model.LookupNumber:
    """LookupNumberRequest as its command."""
    return model.LookupNumber(request.number)


def lookup_numbers(request: pb.LookupNumbersRequest) -> model.LookupNumbers:
    """LookupNumbersRequest as its command."""
    return model.LookupNumbers(tuple(request.numbers), request.columnar)


def stream_snapshot(request: pb.StreamSnapshotRequest) -> model.StreamSnapshot:
    """StreamSnapshotRequest as its command."""
    return model.StreamSnapshot(request.chunk_size)


def routing_message(routing: model.Routing) -> pb.NumberRouting:
    """The routing of one number as its API message."""
    message = pb.NumberRouting()
    _fill_routing(message, routing)
    return message


def _routings(target: Any, answers: Iterable[model.Routing]) -> None:
    """Append `answers` to the repeated NumberRouting field `target`, built in place (a batch
    holds up to 10,000)."""
    add = target.add
    for routing in answers:
        _fill_routing(add(), routing)


def _fill_routing(message: pb.NumberRouting, routing: model.Routing) -> None:
    message.number = routing.number
    if not routing.in_plan:
        message.in_plan = False
        return
    message.in_plan = True
    message.serving_operator = routing.serving_operator
    message.routing_code = routing.routing_code
    message.ported = routing.ported
    message.range_holder = routing.range_holder
    message.service = _SERVICE_NUMBERS[routing.service]  # type: ignore[assignment]
    # PostgreSQL's answer carries the exact instant, the hot data's its milliseconds.
    if routing.ported_at is not None:
        message.ported_since.FromDatetime(routing.ported_at)
    elif routing.ported_since_ms:
        message.ported_since.FromMilliseconds(routing.ported_since_ms)


def columns_message(columns: model.RoutingColumns) -> pb.RoutingColumns:
    """Parallel answer columns as their API message."""
    message = pb.RoutingColumns(operators=columns.operators, routing_codes=columns.routing_codes)
    message.serving.extend(columns.serving)
    message.range_holder.extend(columns.range_holder)
    message.ported_since_ms.extend(columns.ported_since_ms)
    message.service.extend(map(_SLOT_NUMBERS.__getitem__, columns.service))  # type: ignore[arg-type]
    return message


def lookup_response(lookup: model.Lookup) -> pb.LookupNumbersResponse:
    """The answer to LookupNumbers, as rows or as columns."""
    if lookup.columns is not None:
        return pb.LookupNumbersResponse(columns=columns_message(lookup.columns))
    message = pb.LookupNumbersResponse()
    _routings(message.results, lookup.rows or ())
    return message


def snapshot_chunk(chunk: model.SnapshotChunk) -> pb.SnapshotChunk:
    """One chunk of a snapshot as its API message."""
    message = pb.SnapshotChunk(
        position=chunk.position,
        ranges=[
            pb.PlanRange(
                first=str(r.first).zfill(8),
                last=str(r.last).zfill(8),
                operator=r.operator,
                routing_code=r.routing_code,
                service=_SERVICE_NUMBERS[r.service],  # type: ignore[arg-type]
            )
            for r in chunk.ranges
        ],
        last=chunk.last,
    )
    # Built in place, without a copy per number: a snapshot renders millions of them.
    add = message.ported.add
    for number, serving, code, since in chunk.ported:
        ported = add(number=number, serving_operator=serving, routing_code=code)
        if since is not None:
            ported.ported_since.FromDatetime(since)
    return message


# --------------------------------------------------------------------------------- returns


def report_disconnection(request: pb.ReportDisconnectionRequest) -> model.ReportDisconnection:
    """ReportDisconnectionRequest as its command."""
    return model.ReportDisconnection(request.request_id, tuple(request.numbers))


def disconnection_response(returned: list[model.Routing]) -> pb.ReportDisconnectionResponse:
    """The numbers of a disconnection as routed now."""
    message = pb.ReportDisconnectionResponse()
    _routings(message.returned, returned)
    return message


def request_return(request: pb.RequestReturnRequest) -> model.RequestReturn:
    """RequestReturnRequest (SR) as its command."""
    return model.RequestReturn(
        request_id=request.request_id,
        port_request_id=request.port_request_id,
        numbers=tuple(request.numbers),
        resolution=request.resolution,
    )


def answer_return(request: pb.AnswerReturnRequest) -> model.AnswerReturn:
    """AnswerReturnRequest (AR/DR) as its command."""
    return model.AnswerReturn(
        request_id=request.request_id,
        return_id=request.return_id,
        accept=request.accept,
        disable_at=read_instant(request, "disable_at"),
        denial_reason=request.denial_reason,
        denial=DENIAL_REASONS.to_domain(request.denial),
    )


def confirm_return_execution(
    request: pb.ConfirmReturnExecutionRequest,
) -> model.ConfirmReturnExecution:
    """ConfirmReturnExecutionRequest as its command."""
    return model.ConfirmReturnExecution(
        request.request_id, request.return_id, RETURN_STEPS.to_domain(request.step)
    )


def get_return(request: pb.GetReturnRequest) -> model.GetReturn:
    """GetReturnRequest as its command."""
    return model.GetReturn(request.return_id)


def return_message(row: Record) -> pb.NumberReturn:
    """A number_returns row as its API message."""
    return pb.NumberReturn(
        id=row["id"],
        port_request_id=row["port_request_id"],
        donor=row["donor"],
        recipient=row["recipient"],
        numbers=row["numbers"],
        state=RETURN_STATES.to_wire(row["state"]),  # type: ignore[arg-type]
        resolution=row["resolution"],
        notified_at=to_timestamp(row["notified_at"]),
        answer_deadline=to_timestamp(row["answer_deadline"]),
        disable_at=to_timestamp(row["disable_at"]),
        denial_reason=row["denial_reason"] or "",
        executed_at=to_timestamp(row["executed_at"]),
        recipient_disabled_at=to_timestamp(row["recipient_disabled_at"]),
        donor_enabled_at=to_timestamp(row["donor_enabled_at"]),
        denial=DENIAL_REASONS.to_wire(row["denial"]),  # type: ignore[arg-type]
    )
