"""Group commit: commands that queue for a connection share one transaction and one COMMIT.

A command alone costs PostgreSQL a transaction start, a commit and a WAL flush (fsync) of its
own; at saturation most commands wait for a connection anyway. `TransactionGroups` runs commands
on at most `runners` connections: a runner takes the first waiting command and, while others are
waiting, runs them after it in the same transaction (up to `size`), then commits them together.
A command that finds no one waiting commits alone, exactly as `Database.transaction` would: no
command waits for a group to fill.

Each command keeps its own result and its own failure. Every command after the first runs in a
savepoint (`SAVEPOINT` rides with the previous command's flush, `RELEASE` with its own), so a
command's error rolls back its own work only. A command after the first holds the case locks of
those before it, so it may not wait for a case lock (`Txn.waits`): one taken elsewhere rolls it
back to its savepoint and sends it to the head of the queue, to lead a group of its own, where it
may wait holding nothing. Each command flushes its events, deadlines and answer when it ends, so
the next one on the same case reads what it wrote.

A command is acknowledged only after its group's COMMIT: an answer is exactly as durable as
alone. A caller that goes away (its deadline passed) takes its command out of the queue, or rolls
its work back while it runs; once its work has ended it waits for the group's COMMIT and is
committed (a retry of its request id gets the answer, as when an answer is lost in flight).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

import asyncpg
from asyncpg.transaction import Transaction
from prometheus_client import Histogram

from npc.store.database import (
    TRANSACTION_LABEL,
    TXN_SECONDS,
    CaseBusy,
    Database,
    Txn,
    committed,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

GROUP_MEMBERS = Histogram(
    "npc_db_commit_group_commands",
    "Commands committed together in one transaction (group commit).",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
)

_SAVEPOINT = "npc_member"
# What sends a command after the first back to the queue's head rather than failing it: a case
# lock it may not wait for, or a wait PostgreSQL broke off (it held the locks of those before it).
_RETRY_AS_LEADER = (CaseBusy, asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError)


@dataclass(eq=False)
class _Command(Generic[T]):
    """A command waiting for, or running in, a group."""

    label: str
    now: datetime
    body: Callable[[Txn], Awaitable[T]]
    future: asyncio.Future[T]
    # The caller's context, in which its body runs; and the task running it, once it runs.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    task: asyncio.Task[T] | None = None
    queued_at: float = field(default_factory=time.perf_counter)
    # It found a case lock taken after another command: it runs first in a group, where it
    # may wait for it.
    leads: bool = False


class TransactionGroups:
    """Runs commands in transactions shared by those that wait together (see the module)."""

    def __init__(self, db: Database, *, size: int, runners: int) -> None:
        if size < 1 or runners < 1:
            raise ValueError("a group holds at least one command, on at least one runner")
        self.db = db
        self.size = size
        self.runners = runners
        self._queue: deque[_Command[Any]] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, label: str, now: datetime, body: Callable[[Txn], Awaitable[T]]) -> T:
        """Run `body` in a transaction named `label` at `now`, alone or with others waiting, and
        return what it returned once its transaction committed; its exception if it failed
        (its own work is then rolled back, and no one else's)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        command = _Command(label, now, body, future)
        self._queue.append(command)
        if len(self._running) < self.runners:
            # Its own empty context: a runner serves every caller, it carries none of theirs.
            runner = asyncio.create_task(self._serve(), context=contextvars.Context())
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)
        try:
            return await future
        except asyncio.CancelledError:
            # The caller went away (its deadline passed): its work is rolled back, unless it had
            # ended already and waits for the group's COMMIT.
            if command.task is not None:
                command.task.cancel()
            raise

    @property
    def waiting(self) -> int:
        """Commands queued for a runner."""
        return len(self._queue)

    def _next(self, *, first: bool) -> _Command[Any] | None:
        """The next command to run: any for a group's first, and after the first only one that
        may follow (not one sent back to lead)."""
        while self._queue:
            command = self._queue[0]
            if command.future.done():  # its caller went away while it waited
                self._queue.popleft()
                continue
            if command.leads and not first:
                return None
            return self._queue.popleft()
        return None

    async def _serve(self) -> None:
        """A runner: groups on one connection at a time, while commands wait."""
        while self._queue:
            try:
                async with self.db.pool.acquire() as conn:
                    await self._group(conn)
            except Exception as exc:  # no connection: the next command gets the error
                command = self._next(first=True)
                if command is not None:
                    _fail(command, exc)
                log.debug("a group failed before it began: %r", exc)

    async def _group(self, conn: asyncpg.Connection) -> None:
        """One transaction: its first command, and those that wait behind it, committed once."""
        command = self._next(first=True)
        if command is None:
            return
        token = TRANSACTION_LABEL.set(command.label)
        running = command
        done: list[tuple[_Command[Any], Txn, Any]] = []
        block: Transaction = conn.transaction()
        try:
            await block.start()
            while command is not None:
                TRANSACTION_LABEL.set(command.label)
                running = command
                command = await self._member(conn, block, command, done)
        except BaseException as exc:
            # The group as a whole failed (the connection, the COMMIT): none of it is committed.
            _fail(running, exc)
            for member, _, _ in done:
                _fail(member, exc, shared=True)
            done.clear()
            await _abandon(conn, block)
            if not isinstance(exc, Exception):
                raise
        finally:
            TRANSACTION_LABEL.reset(token)
        self._deliver(done)

    async def _member(
        self,
        conn: asyncpg.Connection,
        block: Transaction,
        command: _Command[Any],
        done: list[tuple[_Command[Any], Txn, Any]],
    ) -> _Command[Any] | None:
        """Run `command` in the group's transaction; the next command to run in it, or None
        when the transaction has ended (committed, or rolled back with its only command)."""
        # The first holds no one else's work: it may wait for locks, and fails as alone.
        first = not done
        txn = Txn(conn=conn, now=command.now, label=command.label, waits=first)
        following: _Command[Any] | None = None
        try:
            result = await self._body(command, txn)
            if len(done) + 1 < self.size:
                following = self._next(first=False)
            then = "" if first else f"RELEASE SAVEPOINT {_SAVEPOINT}; "
            then += "COMMIT" if following is None else f"SAVEPOINT {_SAVEPOINT}"
            await txn.flush(then)
        except Exception as exc:
            if following is not None:
                self._queue.appendleft(following)  # it has not begun
            if first:
                # Alone in the transaction so far: all of it goes, as alone it would.
                _fail(command, exc)
                await _abandon(conn, block)
                return None
            await conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            if isinstance(exc, _RETRY_AS_LEADER):
                command.leads = True
                self._queue.appendleft(command)
            else:
                _fail(command, exc)
            if len(done) < self.size:
                following = self._next(first=False)
                if following is not None:
                    return following  # in the savepoint this one rolled back to
            await conn.execute("COMMIT")
            committed(conn, block)
            return None
        done.append((command, txn, result))
        if following is None:
            committed(conn, block)
        return following

    @staticmethod
    async def _body(command: _Command[T], txn: Txn) -> T:
        """Run the command's body in a task of its own, in its caller's context, which the caller
        cancels when it goes away; its work is then rolled back as a failure's."""
        if command.future.done():  # its caller went away as it was taken from the queue
            raise _CallerGone
        command.task = asyncio.create_task(_labelled(command, txn), context=command.context)
        try:
            result = await command.task
        except asyncio.CancelledError:
            runner = asyncio.current_task()
            if runner is not None and runner.cancelling():
                raise  # the runner itself is stopped: the whole group goes
            raise _CallerGone from None
        if command.future.cancelled():
            raise _CallerGone
        return result

    def _deliver(self, done: list[tuple[_Command[Any], Txn, Any]]) -> None:
        """After the COMMIT: each command's listeners and callbacks, then its answer."""
        if not done:
            return
        GROUP_MEMBERS.observe(len(done))
        now = time.perf_counter()
        listeners = self.db.listeners
        for command, txn, result in done:
            TXN_SECONDS.labels(command.label, "commit").observe(now - command.queued_at)
            try:
                for listener in listeners:
                    listener(txn)
                txn.run_after_commit()
            except Exception as exc:  # committed, but its caller hears of the failure
                _fail(command, exc)
                continue
            if not command.future.done():
                command.future.set_result(result)


class _CallerGone(Exception):
    """The caller of a command went away before its work was flushed: it is rolled back."""


def _detached(exc: BaseException) -> BaseException:
    """`exc`, and the exceptions it chains, without the runner's frames in their tracebacks.

    A caller may clear the frames of what it was raised (`npc.api.interceptors` does, so that
    they free the request): clearing the frame of a coroutine that is suspended, not finished,
    closes it. The runner goes on after it hands an exception over; its frames must not be
    there. What the command's own code raised keeps every frame of its own."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        kept: list[TracebackType] = []
        tb = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename != __file__:
                kept.append(tb)
            tb = tb.tb_next
        for outer, inner in zip(kept, kept[1:], strict=False):
            outer.tb_next = inner
        if kept:
            kept[-1].tb_next = None
        current.__traceback__ = kept[0] if kept else None
        current = current.__cause__ or current.__context__
        seen += 1
    return exc


def _twin(exc: BaseException) -> BaseException:
    """A copy of `exc` that says it was raised from it (`exc` itself when it cannot be copied)."""
    _detached(exc)
    try:
        twin = copy.copy(exc)
    except Exception:  # its class is built otherwise: the original, detached
        return exc
    twin.__cause__ = exc
    return twin


async def _labelled(command: _Command[T], txn: Txn) -> T:
    # Query loggers read the label in the statement's task (`TRANSACTION_LABEL`).
    TRANSACTION_LABEL.set(command.label)
    return await command.body(txn)


async def _abandon(conn: asyncpg.Connection, block: Transaction) -> None:
    """Roll back what is left of a failed group; a connection that cannot is closed (the pool
    opens another), never handed on in a transaction."""
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await block.rollback()
    except Exception:  # its state is unknown
        conn.terminate()


def _fail(command: _Command[Any], exc: BaseException, *, shared: bool = False) -> None:
    """Give `command`'s caller `exc` (a copy of its own when the group's other callers get it
    too, as each will add its own frames to what it raises)."""
    if command.future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        command.future.cancel()
    else:
        command.future.set_exception(_twin(exc) if shared else _detached(exc))
    TXN_SECONDS.labels(command.label, "error").observe(time.perf_counter() - command.queued_at)
