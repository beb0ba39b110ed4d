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


# A status travels in the trailers, which clients cap (16 KiB by default, refusing some above
# 8 KiB): its message and details are bounded so that a request with thousands of bad fields, or a
# 100 KB identifier echoed back, still gets a readable answer instead of RESOURCE_EXHAUSTED.
MAX_MESSAGE = 400  # UTF-8 bytes
MAX_VIOLATIONS = 10
MAX_TEXT = 120  # UTF-8 bytes of a field path, description or resource name


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit` UTF-8 bytes, marked with an ellipsis when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def _field_violations(
    violations: list[errors.FieldViolation],
) -> list[error_details_pb2.BadRequest.FieldViolation]:
    shown = [
        error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field), description=_clip(v.description)
        )
        for v in violations[:MAX_VIOLATIONS]
    ]
    if len(violations) > MAX_VIOLATIONS:
        shown.append(
            error_details_pb2.BadRequest.FieldViolation(
                field=_clip(violations[MAX_VIOLATIONS].field),
                description=f"and {len(violations) - MAX_VIOLATIONS} more violations",
            )
        )
    return shown


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error, with field-level details."""
    code = getattr(code_pb2, error.grpc_code)
    status = status_pb2.Status(code=code, message=_clip(error.message, MAX_MESSAGE))
    if isinstance(error, errors.InvalidArgument | errors.OutOfRange):
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(field_violations=_field_violations(error.violations))
            )
        )
    elif isinstance(error, errors.FailedPrecondition):
        status.details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=_clip(error.violation_type),
                            subject=_clip(error.subject),
                            description=_clip(error.message, MAX_MESSAGE),
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
                    resource_type=_clip(error.resource_type),
                    resource_name=_clip(error.resource_name),
                    description=_clip(error.message, MAX_MESSAGE),
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


async def abort(
    context: grpc.aio.ServicerContext,
    status: status_pb2.Status,
    trailers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Abort the call with `status`, details in the grpc-status-details-bin trailer (and any
    other `trailers`)."""
    await context.abort(
        grpc_code(status),
        status.message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()), *trailers),
    )


def fail(
    context: grpc.aio.ServicerContext,
    status: status_pb2.Status,
    trailers: tuple[tuple[str, str], ...] = (),
) -> None:
    """End the call with `status` once the handler returns, details in the trailers (and any
    other `trailers`).

    Unlike `abort`, nothing is raised: grpc keeps the exception `abort` raises on the call's
    state, a reference cycle through the handler's frames (and so its request) that lasts until
    a full collection.
    """
    context.set_code(grpc_code(status))
    context.set_details(status.message)
    context.set_trailing_metadata(
        (("grpc-status-details-bin", status.SerializeToString()), *trailers)
    )
