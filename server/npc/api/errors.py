"""Domain errors as gRPC statuses with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from npc.core import errors


class RpcFailure(Exception):
    """A failure already expressed as a google.rpc.Status (for instance a stored answer)."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error, with field-level details."""
    code = getattr(code_pb2, error.grpc_code)
    status = status_pb2.Status(code=code, message=error.message)
    if isinstance(error, errors.InvalidArgument | errors.OutOfRange):
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    elif isinstance(error, errors.FailedPrecondition):
        status.details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=error.violation_type,
                            subject=error.subject,
                            description=error.message,
                        )
                    ]
                )
            )
        )
    elif isinstance(error, errors.ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, int(error.retry_after * 1000)))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    elif isinstance(error, errors.NotFound | errors.AlreadyExists):
        status.details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=error.resource_type,
                    resource_name=error.resource_name,
                    description=error.message,
                )
            )
        )
    return status


def grpc_code(status: status_pb2.Status) -> grpc.StatusCode:
    """The grpc.StatusCode of a google.rpc.Status."""
    for code in grpc.StatusCode:
        if code.value[0] == status.code:
            return code
    return grpc.StatusCode.UNKNOWN


async def abort(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    """Abort the call with `status`, details in the grpc-status-details-bin trailer."""
    await context.abort(
        grpc_code(status),
        status.message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )
