"""Domain errors. Errors are data: each maps to a precise gRPC status with google.rpc details."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The domain of every `google.rpc.ErrorInfo` the clearinghouse sends.
ERROR_DOMAIN = "npc"


class Reason(StrEnum):
    """Stable, machine-readable reasons of errors (`google.rpc.ErrorInfo.reason`, domain "npc").

    An operator's system branches on these, never on messages: a reason is never renamed or
    reused for something else; new ones are added. A refused precondition's reason is its
    `PreconditionFailure` type (NUMBER_NOT_IN_PLAN, DEADLINE_PASSED...), listed in the README.
    """

    INVALID_FIELDS = "INVALID_FIELDS"  # BadRequest lists every wrong field
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"  # the same request_id came with another request
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"  # well formed, outside what the rules allow now
    WRONG_STATE = "WRONG_STATE"  # the case's state does not allow the command
    NOT_FOUND = "NOT_FOUND"  # no such case for this caller (another operator's case included)
    LIVE_CASE_EXISTS = "LIVE_CASE_EXISTS"  # ResourceInfo names the live case
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the caller's role may not do this
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no valid token or certificate
    RATE_LIMITED = "RATE_LIMITED"  # RetryInfo says when to retry
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"  # over the method's size limit
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"  # the operator's streams or uploads are at their cap
    CONCURRENT_UPDATE = "CONCURRENT_UPDATE"  # ABORTED: retry with the same request_id
    CALL_TIMEOUT = "CALL_TIMEOUT"  # DEADLINE_EXCEEDED on the server: retry with the same id
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"  # UNAVAILABLE: retry with the same request_id
    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"  # UNAVAILABLE: retry, elsewhere or later
    INTERNAL = "INTERNAL"  # a defect of the clearinghouse, logged on its side
    BEYOND_TERM = "BEYOND_TERM"  # OUT_OF_RANGE: an instant after the term the rules allow


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path in the request (``numbers[2].first``) and why."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a flow reports to a caller.

    `keep_effects` commits what the command wrote before failing (for instance the FLEP message
    recorded when a schedule is refused); by default a failed command changes nothing.
    """

    grpc_code = "UNKNOWN"
    default_reason: str = Reason.INTERNAL

    def __init__(
        self, message: str, *, keep_effects: bool = False, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.keep_effects = keep_effects
        # The ErrorInfo reason: the class's unless the raiser names a more precise one.
        self.reason = reason or self.default_reason


class InvalidArgument(DomainError):
    """Malformed input: one or more fields are wrong. Nothing is stored."""

    grpc_code = "INVALID_ARGUMENT"
    default_reason = Reason.INVALID_FIELDS

    def __init__(
        self,
        violations: Sequence[FieldViolation] | FieldViolation,
        message: str = "",
        *,
        reason: str | None = None,
    ) -> None:
        items = [violations] if isinstance(violations, FieldViolation) else list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in items)
        super().__init__(message or f"invalid request: {summary}", reason=reason)
        self.violations = items


class FailedPrecondition(DomainError):
    """The case is not in a state that allows the command."""

    grpc_code = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        violation_type: str = "STATE",
        subject: str = "",
        keep_effects: bool = False,
    ) -> None:
        # The reason is the violation's type: those are already stable names operators know.
        reason = Reason.WRONG_STATE if violation_type == "STATE" else violation_type
        super().__init__(message, keep_effects=keep_effects, reason=reason)
        self.violation_type = violation_type
        self.subject = subject


class OutOfRange(DomainError):
    """A value is well formed but outside the range the rules allow at this moment."""

    grpc_code = "OUT_OF_RANGE"
    default_reason = Reason.VALUE_OUT_OF_RANGE

    def __init__(
        self, field: str, message: str, *, keep_effects: bool = False, reason: str | None = None
    ) -> None:
        super().__init__(message, keep_effects=keep_effects, reason=reason)
        self.violations = [FieldViolation(field, message)]


class NotFound(DomainError):
    """The case does not exist, or the caller may not know it exists."""

    grpc_code = "NOT_FOUND"
    default_reason = Reason.NOT_FOUND

    def __init__(self, resource_type: str, resource_name: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    """A conflicting live case exists (for instance another live request for the number).

    `resource_name` is the live case's id (the message says it too); `collided` is what the
    request shares with it: the number, the key or the range.
    """

    grpc_code = "ALREADY_EXISTS"
    default_reason = Reason.LIVE_CASE_EXISTS

    def __init__(
        self, resource_type: str, resource_name: str, message: str, *, collided: str = ""
    ) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.collided = collided


class PermissionDenied(DomainError):
    """The caller is identified but may not act in this role on this case."""

    grpc_code = "PERMISSION_DENIED"
    default_reason = Reason.PERMISSION_DENIED


class Unauthenticated(DomainError):
    """The caller could not be identified."""

    grpc_code = "UNAUTHENTICATED"
    default_reason = Reason.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    """The caller went over its rate limit; it may retry after `retry_after` seconds."""

    grpc_code = "RESOURCE_EXHAUSTED"
    default_reason = Reason.RATE_LIMITED

    def __init__(self, message: str, retry_after: float, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after
