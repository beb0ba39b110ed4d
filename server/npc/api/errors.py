"""Domain errors as gRPC statuses with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from npc.core import errors
from npc.core.errors import ERROR_DOMAIN, Reason


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


def error_info(reason: str, **metadata: str) -> any_pb2.Any:
    """A packed `google.rpc.ErrorInfo` of domain "npc" (see `npc.core.errors.Reason`)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    for key, value in metadata.items():
        info.metadata[key] = _clip(value)
    return _pack(info)


def status(code: int, message: str, reason: Reason, **metadata: str) -> status_pb2.Status:
    """A google.rpc.Status with its ErrorInfo, for failures that are not domain errors."""
    return status_pb2.Status(
        code=code, message=_clip(message, MAX_MESSAGE), details=[error_info(reason, **metadata)]
    )


def to_status(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error: field-level details and its ErrorInfo."""
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
    status.details.append(error_info(error.reason, **_info_metadata(error)))
    return status


def _info_metadata(error: errors.DomainError) -> dict[str, str]:
    """What ErrorInfo repeats of the other details, for clients that read only ErrorInfo."""
    if isinstance(error, errors.AlreadyExists) and error.collided:
        return {
            "resource_type": error.resource_type,
            "resource_name": error.resource_name,
            "collided": error.collided,
        }
    if isinstance(error, errors.NotFound | errors.AlreadyExists):
        return {"resource_type": error.resource_type, "resource_name": error.resource_name}
    if isinstance(error, errors.FailedPrecondition) and error.subject:
        return {"subject": error.subject}
    if isinstance(error, errors.InvalidArgument | errors.OutOfRange):
        return {"fields": ",".join(v.field for v in error.violations[:MAX_VIOLATIONS])}
    return {}


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
