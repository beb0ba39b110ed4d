"""Domain errors. Errors are data: each maps to a precise gRPC status with google.rpc details."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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

    def __init__(self, message: str, *, keep_effects: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.keep_effects = keep_effects


class InvalidArgument(DomainError):
    """Malformed input: one or more fields are wrong. Nothing is stored."""

    grpc_code = "INVALID_ARGUMENT"

    def __init__(
        self, violations: Sequence[FieldViolation] | FieldViolation, message: str = ""
    ) -> None:
        items = [violations] if isinstance(violations, FieldViolation) else list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in items)
        super().__init__(message or f"invalid request: {summary}")
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
        super().__init__(message, keep_effects=keep_effects)
        self.violation_type = violation_type
        self.subject = subject


class OutOfRange(DomainError):
    """A value is well formed but outside the range the rules allow at this moment."""

    grpc_code = "OUT_OF_RANGE"

    def __init__(self, field: str, message: str, *, keep_effects: bool = False) -> None:
        super().__init__(message, keep_effects=keep_effects)
        self.violations = [FieldViolation(field, message)]


class NotFound(DomainError):
    """The case does not exist, or the caller may not know it exists."""

    grpc_code = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    """A conflicting live case exists (for instance another live request for the number)."""

    grpc_code = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str, message: str) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name


class PermissionDenied(DomainError):
    """The caller is identified but may not act in this role on this case."""

    grpc_code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """The caller could not be identified."""

    grpc_code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """The caller went over its rate limit; it may retry after `retry_after` seconds."""

    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
