"""Idempotent commands: every mutating RPC carries a request id, and a retry gets the first answer.

The answer is stored in the same transaction as the command's effects, so an acknowledged command is
exactly as durable as its answer. A refusal is an answer too: it is stored in a short transaction of
its own once the command's rolled back, so a retry is refused the same way even after the state
that caused the refusal changed. Only the statuses that say "not now" (`NOT_ANSWERS`) are never
stored: retrying those runs the command. Answers are kept for good (nothing deletes
`command_results`), so a request id is never reusable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from npc.api.errors import RpcFailure, to_status
from npc.core.clock import Clock
from npc.core.errors import DomainError, FieldViolation, InvalidArgument, Reason
from npc.core.flow import CommandRunner as CommandRunner
from npc.core.identity import Caller
from npc.store.database import CommandAnswer, Database, Txn
from npc.store.groups import TransactionGroups

M = TypeVar("M", bound=Message)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

# Statuses that answer nothing about the request: the same request may succeed when retried.
NOT_ANSWERS = frozenset(
    {
        code_pb2.UNAVAILABLE,
        code_pb2.ABORTED,
        code_pb2.DEADLINE_EXCEEDED,
        code_pb2.RESOURCE_EXHAUSTED,
        code_pb2.INTERNAL,
        code_pb2.UNKNOWN,
    }
)

_STORE_REFUSAL = """
INSERT INTO command_results (caller, request_id, method, request_digest, status_code,
                             response, error_message, error_details, created_at)
VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)
ON CONFLICT (caller, request_id) DO NOTHING
RETURNING true
"""


class _Discard(Exception):
    """Rolls back a command run only to learn what else its request gets wrong."""


class IdempotentCommandRunner:
    """Runs a command in one transaction, exactly once per (caller, request id).

    The process's `CommandRunner` (the core's protocol, which servicers are typed against).
    """

    def __init__(self, db: Database, clock: Clock, *, group_size: int = 1) -> None:
        self.db = db
        self.clock = clock
        # Commands waiting for a connection commit together, up to `group_size` a transaction,
        # on as many connections as the pool has (`npc.store.groups`).
        self.groups = TransactionGroups(db, size=group_size, runners=db.pool.get_max_size())

    async def run(
        self,
        caller: Caller,
        method: str,
        request: Message,
        response_type: type[M],
        command: Callable[[Txn], Awaitable[M]],
    ) -> M:
        """Run `command` for `request` unless the caller already sent this request id."""
        request_id: str = getattr(request, "request_id", "")
        if not _REQUEST_ID.fullmatch(request_id):
            missing = FieldViolation(
                "request_id", "required: 1 to 64 characters of [A-Za-z0-9._:-]"
            )
            raise InvalidArgument([missing, *await self._other_violations(method, command)])
        digest = hashlib.sha256(
            method.encode() + b"\0" + request.SerializeToString(deterministic=True)
        ).digest()

        async def answered(txn: Txn) -> tuple[M | None, DomainError | None]:
            try:
                response = await command(txn)
            except DomainError as error:
                if not error.keep_effects:
                    raise
                # Commit what the command recorded (e.g. FLEP, a donor's silence) with the
                # error as the stored answer, then report the error.
                self._store(txn, caller, request_id, method, digest, error=error)
                return None, error
            self._store(txn, caller, request_id, method, digest, response=response)
            return response, None

        try:
            response, kept = await self.groups.run(method, self.clock.now(), answered)
        except (DomainError, asyncpg.UniqueViolationError) as failure:
            status = to_status(failure) if isinstance(failure, DomainError) else None
            if (
                status is not None
                and status.code not in NOT_ANSWERS
                and await self._store_refusal(caller, request_id, method, digest, status)
            ):
                # Stored as the answer: a retry gets this very status.
                raise RpcFailure(status) from failure
            # An answer stored first (a retry whose first attempt committed meanwhile, or
            # another attempt racing this one): everyone answers with that.
            stored = await self._stored(caller, request_id, method, digest, response_type)
            if stored is not None:
                return stored
            raise
        if kept is not None:
            raise kept
        assert response is not None
        return response

    async def _other_violations(
        self, method: str, command: Callable[[Txn], Awaitable[M]]
    ) -> list[FieldViolation]:
        """The request's other invalid fields, so that one answer lists them all: the command
        runs in a transaction that is always rolled back (nothing of it is kept or published)."""
        try:
            async with self.db.transaction(method, self.clock.now()) as txn:
                await command(txn)
                raise _Discard
        except InvalidArgument as invalid:
            return invalid.violations
        except Exception:  # a trial's other failure (a conflict, the storage) must not replace
            return []  # the answer: the request_id is wrong whatever else happens

    @staticmethod
    def _store(
        txn: Txn,
        caller: Caller,
        request_id: str,
        method: str,
        digest: bytes,
        *,
        response: Message | None = None,
        error: DomainError | None = None,
    ) -> None:
        status = to_status(error) if error is not None else None
        txn.record_answer(
            CommandAnswer(
                caller=caller.operator,
                request_id=request_id,
                method=method,
                request_digest=digest,
                status_code=status.code if status else code_pb2.OK,
                response=response.SerializeToString() if response is not None else None,
                error_message=status.message if status else None,
                error_details=status.SerializeToString() if status else None,
            )
        )

    async def _store_refusal(
        self,
        caller: Caller,
        request_id: str,
        method: str,
        digest: bytes,
        status: status_pb2.Status,
    ) -> bool:
        """Store `status` as the answer; False when an answer was stored already (a retry's first
        attempt, or two attempts racing: the loser reads the winner's)."""
        async with self.db.pool.acquire() as conn:
            stored = await conn.fetchval(
                _STORE_REFUSAL,
                caller.operator,
                request_id,
                method,
                digest,
                status.code,
                status.message,
                status.SerializeToString(),
                self.clock.now(),
            )
        return stored is not None

    async def _stored(
        self, caller: Caller, request_id: str, method: str, digest: bytes, response_type: type[M]
    ) -> M | None:
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT method, request_digest, status_code, response, error_details"
                " FROM command_results WHERE caller = $1 AND request_id = $2",
                caller.operator,
                request_id,
            )
        if row is None:
            return None
        if row["method"] != method or bytes(row["request_digest"]) != digest:
            raise InvalidArgument(
                FieldViolation(
                    "request_id", "already used for a different request; use a new request id"
                ),
                reason=Reason.REQUEST_ID_REUSED,
            )
        if row["status_code"] != code_pb2.OK:
            status = status_pb2.Status()
            status.ParseFromString(row["error_details"])
            raise RpcFailure(status)
        response = response_type()
        response.ParseFromString(row["response"])
        return response

    async def replay(
        self, caller: Caller, method: str, request: Message, response_type: type[M]
    ) -> M | None:
        """The stored answer of an earlier identical request, if any (fast path for retries)."""
        request_id: str = getattr(request, "request_id", "")
        digest = hashlib.sha256(
            method.encode() + b"\0" + request.SerializeToString(deterministic=True)
        ).digest()
        return await self._stored(caller, request_id, method, digest, response_type)
