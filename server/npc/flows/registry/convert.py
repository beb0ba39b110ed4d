"""The registry's messages in and out: requests parsed into the flow's commands, answers rendered
from what the handlers return (domain records and number_returns rows)."""

from __future__ import annotations

from asyncpg import Record

from npc.api.enums import WireEnum
from npc.core.instants import timestamp, to_timestamp
from npc.core.validation import Violations
from npc.flows.registry import model
from npc.flows.registry.rules import (
    SERVICE_SLOTS,
    UNREADABLE,
    Instant,
    ReturnStep,
    Service,
    State,
)
from npc.v1 import common_pb2
from npc.v1 import registry_pb2 as pb

SERVICES = WireEnum(common_pb2.ServiceType, Service)
RETURN_STATES = WireEnum(pb.ReturnState, State)
RETURN_STEPS = WireEnum(pb.ReturnStep, ReturnStep)
_SERVICE_NUMBERS: dict[Service | None, int] = {None: 0} | {s: SERVICES.to_wire(s) for s in Service}
# The wire number of each of SERVICE_SLOTS, for answer columns.
_SLOT_NUMBERS = [_SERVICE_NUMBERS[s] for s in SERVICE_SLOTS]


def instant(message: object, name: str) -> Instant:
    """A Timestamp field as an aware datetime; None when unset, UNREADABLE when no datetime
    holds it (the handler reports either with the field's path)."""
    unreadable = Violations()
    value = timestamp(unreadable, name, message, name, required=False)
    return UNREADABLE if unreadable.items else value


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
    if not routing.in_plan:
        return pb.NumberRouting(number=routing.number, in_plan=False)
    message = pb.NumberRouting(
        number=routing.number,
        in_plan=True,
        serving_operator=routing.serving_operator,
        routing_code=routing.routing_code,
        ported=routing.ported,
        range_holder=routing.range_holder,
        service=_SERVICE_NUMBERS[routing.service],  # type: ignore[arg-type]
    )
    # PostgreSQL's answer carries the exact instant, the hot data's its milliseconds.
    if routing.ported_at is not None:
        message.ported_since.FromDatetime(routing.ported_at)
    elif routing.ported_since_ms:
        message.ported_since.FromMilliseconds(routing.ported_since_ms)
    return message


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
    return pb.LookupNumbersResponse(results=[routing_message(r) for r in lookup.rows or ()])


def snapshot_chunk(chunk: model.SnapshotChunk) -> pb.SnapshotChunk:
    """One chunk of a snapshot as its API message."""
    return pb.SnapshotChunk(
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
        ported=[
            pb.PortedNumber(
                number=p.number,
                serving_operator=p.serving_operator,
                routing_code=p.routing_code,
                ported_since=to_timestamp(p.ported_since),
            )
            for p in chunk.ported
        ],
        last=chunk.last,
    )


# --------------------------------------------------------------------------------- returns


def report_disconnection(request: pb.ReportDisconnectionRequest) -> model.ReportDisconnection:
    """ReportDisconnectionRequest as its command."""
    return model.ReportDisconnection(request.request_id, tuple(request.numbers))


def disconnection_response(returned: list[model.Routing]) -> pb.ReportDisconnectionResponse:
    """The numbers of a disconnection as routed now."""
    return pb.ReportDisconnectionResponse(returned=[routing_message(r) for r in returned])


def request_return(request: pb.RequestReturnRequest) -> model.RequestReturn:
    """RequestReturnRequest (SR) as its command."""
    return model.RequestReturn(
        request_id=request.request_id,
        port_request_id=request.port_request_id,
        numbers=tuple(request.numbers),
        resolution=request.resolution,
        notified_at=instant(request, "notified_at"),
    )


def answer_return(request: pb.AnswerReturnRequest) -> model.AnswerReturn:
    """AnswerReturnRequest (AR/DR) as its command."""
    return model.AnswerReturn(
        request_id=request.request_id,
        return_id=request.return_id,
        accept=request.accept,
        disable_at=instant(request, "disable_at"),
        denial_reason=request.denial_reason,
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
    )
