"""Durable deadlines.

Every deadline is a row in PostgreSQL (`deadlines`). A process keeps a single wake-up for the
earliest pending one. Firing runs the flow's handler and marks the row fired in the same
transaction, under a row lock taken with SKIP LOCKED: a deadline fires once across processes, and a
crash before commit leaves it pending, so it fires again after restart. Handlers must therefore be
idempotent with respect to the case's state, which the transaction makes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram

from npc.core.clock import Clock, wall_seconds_since
from npc.core.supervision import passed
from npc.store.database import Database, Txn, case_lock_key, case_lock_sql

log = logging.getLogger(__name__)

DEADLINES_FIRED = Counter("npc_deadlines_fired_total", "Deadlines fired.", ["flow", "kind"])
DEADLINE_FAILURES = Counter(
    "npc_deadline_handler_failures_total", "Deadline handlers that raised.", ["flow", "kind"]
)
DEADLINE_LATENESS = Histogram(
    "npc_deadline_lateness_seconds",
    "Delay between a deadline's due instant and its firing, in wall seconds whatever the clock.",
    ["flow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


@dataclass(frozen=True)
class Deadline:
    """A due deadline handed to its flow's handler."""

    id: int
    flow: str
    kind: str
    case_id: str
    due_at: datetime
    rule: str
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Deadline:
        """Build from a `deadlines` row."""
        return cls(
            row["id"],
            row["flow"],
            row["kind"],
            row["case_id"],
            row["due_at"],
            row["rule"],
            row["payload"],
        )


DeadlineHandler = Callable[[Txn, Deadline], Awaitable[None]]


# The earliest pending instant: the first entry of the partial index `deadlines_pending`, read
# after every scheduler pass, whatever the backlog.
NEXT_DUE_SQL = (
    "SELECT min(next_attempt_at) FROM deadlines WHERE fired_at IS NULL AND cancelled_at IS NULL"
)


async def oldest_overdue_seconds(conn: asyncpg.Connection, now: datetime) -> float:
    """How long the oldest pending deadline has been past its next attempt instant (0 when none
    is overdue): one read of the `deadlines_pending` index's first entry."""
    oldest: datetime | None = await conn.fetchval(NEXT_DUE_SQL)
    return (now - oldest).total_seconds() if oldest is not None and oldest <= now else 0.0


# What PostgreSQL going away raises in the middle of a handler. Counted as the handler's failure,
# it would postpone the deadline (further at each outage) and blame the flow.
_STORAGE_FAILURES = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


class DeadlineKindMismatch(ValueError):
    """A flow's declared deadline kinds and its registered handlers differ (see `check_kinds`)."""


# One round trip takes the case lock if it is free, then the deadline's row lock if it is still
# due and no one else holds it, and marks it fired (the transaction rolls that back if the handler
# fails). The case lock comes first, as in every command on the case: taking the deadline row
# first would deadlock with a command cancelling it (`Txn.lock_case`). The deadline's key, not
# the `deadlines_pending` predicate, serves the read (see the cancellation in npc.store.database).
# Always one row: `taken`, and the deadline's columns (NULL when nothing was taken).
_FIRED_COLUMNS = ("id", "flow", "kind", "case_id", "due_at", "rule", "payload")
_CLAIM = f"""
WITH locked AS MATERIALIZED ({case_lock_sql("$3", wait=False)} AS taken),
due AS (
    SELECT id FROM deadlines
    WHERE id = $1 AND coalesce(fired_at, cancelled_at) IS NULL AND next_attempt_at <= $2
      AND (SELECT taken FROM locked)
    FOR UPDATE SKIP LOCKED
), fired AS (
    UPDATE deadlines SET fired_at = $2 FROM due WHERE deadlines.id = due.id
    RETURNING {", ".join(f"deadlines.{c}" for c in _FIRED_COLUMNS)}
)
"""
_TAKE_DUE = _CLAIM + "SELECT locked.taken, fired.* FROM locked LEFT JOIN fired ON true"

# `_TAKE_DUE` that also locks and reads the row of the deadline's case in {table} (`register`'s
# `case_table`), as `CaseTable.lock` would right after: one round trip less a firing. The case
# lock is already held, so the row lock comes after it as in every command. The deadline's
# columns are named `fired_<column>` and the case row's keep their names (all NULL when nothing
# fired or there is no such case): a whole-row column would need asyncpg to decode the table's
# composite type in binary, which its jsonb columns, decoded as text, rule out.
_TAKE_DUE_WITH_CASE = (
    _CLAIM
    + "SELECT locked.taken, "
    + ", ".join(f"fired.{c} AS fired_{c}" for c in _FIRED_COLUMNS)
    + ", c.* FROM locked LEFT JOIN fired ON true"
    " LEFT JOIN LATERAL (SELECT * FROM {table} WHERE id = fired.case_id FOR UPDATE) AS c ON true"
)

_CASE_BUSY = -1  # what `_fire` answers when the case is locked by a command or another process


class DeadlineScheduler:
    """Fires due deadlines through the handlers flows register."""

    # Deadlines firing at once, each a transaction on a connection of its own. A firing is
    # mostly waiting (8 round trips, each a turn of a busy event loop at saturation), so the
    # change window's executions fire on time only when many wait at once.
    CONCURRENCY = 32

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        poll_seconds: float = 5.0,
        batch_size: int = 500,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.db = db
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._handlers: dict[tuple[str, str], DeadlineHandler] = {}
        # (flow, kind) -> the case table of such a deadline, and the statement taking it with
        # its case row (`register`'s `case_table`).
        self._with_case: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._next_wake: datetime | None = None
        # A pass that found only busy cases tries again after this pause (wall seconds), up to
        # this many times before it gives way to the run loop's wait.
        self.busy_pause = 0.01
        self.busy_retries = 200

    def register(
        self, flow: str, kind: str, handler: DeadlineHandler, *, case_table: str | None = None
    ) -> None:
        """Route deadlines of (`flow`, `kind`) to `handler`.

        Flows pass a member of their deadline-kind ``StrEnum``: it is stored as its plain value.
        With `case_table` (a table whose `id` is the deadline's case), the statement that takes
        the deadline also locks and reads the case's row, which the handler's
        `CaseTable.lock` then gets without a round trip (`Txn.preload_case_row`).
        """
        self._handlers[(flow, str(kind))] = handler
        if case_table is not None:
            take = _TAKE_DUE_WITH_CASE.format(table=case_table)
            self._with_case[(flow, str(kind))] = (case_table, take)

    def check_kinds(self, flow: str, declared: Iterable[str]) -> None:
        """Fail unless `flow`'s registered handlers cover exactly the kinds it `declared`.

        A declared kind without a handler would raise each time one falls due and be retried
        forever; a handler for an undeclared kind is a typo in the registration.
        """
        kinds = {str(kind) for kind in declared}
        handled = {kind for (owner, kind) in self._handlers if owner == flow}
        problems = []
        if missing := sorted(kinds - handled):
            problems.append(f"declared without a handler: {', '.join(missing)}")
        if stray := sorted(handled - kinds):
            problems.append(f"handled but not declared: {', '.join(stray)}")
        if problems:
            raise DeadlineKindMismatch(
                f"flow {flow!r} deadline kinds {'; '.join(problems)}"
                " (declare them in the flow's deadline_kinds and register a handler for each)"
            )

    def declare(self, flow: str, kinds: Iterable[str]) -> None:
        """Create `flow`'s series at zero for each kind it declares: a dashboard or a rate over
        them has a value before the first deadline fires."""
        DEADLINE_LATENESS.labels(flow)
        for kind in kinds:
            DEADLINES_FIRED.labels(flow, str(kind))
            DEADLINE_FAILURES.labels(flow, str(kind))

    def notice(self, due_at: datetime) -> None:
        """A transaction committed a deadline; wake up if it is earlier than the next wake-up."""
        if self._next_wake is None or due_at < self._next_wake:
            self._wake.set()

    async def fire_due(self) -> int:
        """Fire every deadline due at the clock's current instant; return how many fired.

        Up to `concurrency` firings run at once, and a slot that frees takes the next due
        deadline at once: no firing waits for a whole batch to finish (at saturation a batch of
        hundreds, each firing a dozen turns of a busy event loop, held the later ones back by
        seconds).
        """
        async with self._lock:
            return await _Pass(self).run()

    async def fetch_due(self, now: datetime) -> list[asyncpg.Record]:
        """The first `batch_size` deadlines due at `now`, in their order."""
        async with self.db.pool.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT id, flow, kind, case_id FROM deadlines WHERE fired_at IS NULL"
                " AND cancelled_at IS NULL AND next_attempt_at <= $1"
                " ORDER BY next_attempt_at, id LIMIT $2",
                now,
                self.batch_size,
            )
        return rows

    async def _fire_in_order(
        self, case: tuple[str, str], due: list[tuple[int, str]], passed_over: set[int]
    ) -> tuple[int, bool]:
        """Fire `case`'s deadlines (id, kind) in order; return how many fired and whether the
        case was busy. Those found taken or already done elsewhere go to `passed_over`."""
        count = 0
        for deadline_id, kind in due:
            fired = await self._fire(case, deadline_id, kind)
            if fired == _CASE_BUSY:
                return count, True  # the case's later deadlines must not fire before this one
            if not fired:
                passed_over.add(deadline_id)
            count += fired
        return count, False

    async def _fire(self, case: tuple[str, str], deadline_id: int, kind: str) -> int:
        now = self.clock.now()
        deadline: Deadline | None = None
        table, take = self._with_case.get((case[0], kind), (None, _TAKE_DUE))
        try:
            async with self.db.transaction("deadline", now) as txn:
                # A case busy with a command, or with another process firing the same
                # deadline, is left for the next pass rather than waited for: waiting would hold
                # a connection and a firing slot while other cases' deadlines are due.
                row = await txn.conn.fetchrow(take, deadline_id, now, case_lock_key(*case))
                assert row is not None  # one row, whatever was taken
                if not row["taken"]:
                    return _CASE_BUSY
                if table is None:
                    if row["id"] is None:
                        return 0
                    deadline = Deadline.from_row(row)
                else:
                    if row["fired_id"] is None:
                        return 0
                    deadline = Deadline.from_row({c: row[f"fired_{c}"] for c in _FIRED_COLUMNS})
                    if row["id"] is not None:  # the case row, after the deadline's columns
                        case_row = dict(list(row.items())[1 + len(_FIRED_COLUMNS) :])
                        txn.preload_case_row(table, deadline.case_id, case_row)
                handler = self._handlers.get((deadline.flow, deadline.kind))
                if handler is None:
                    raise LookupError(f"no handler for deadline {deadline.flow}/{deadline.kind}")
                await handler(txn, deadline)
        except _STORAGE_FAILURES:
            raise  # the storage failed, not the handler: the pass fails and is tried again
        except Exception as exc:
            if deadline is None:
                raise
            DEADLINE_FAILURES.labels(deadline.flow, deadline.kind).inc()
            log.exception("deadline %s (%s/%s) failed", deadline_id, deadline.flow, deadline.kind)
            await self._postpone(deadline_id, now, exc)
            return 0
        DEADLINES_FIRED.labels(deadline.flow, deadline.kind).inc()
        # Wall seconds: the SLO is about real delay, and an accelerated demo clock would
        # multiply it (17 ms at 60x read as a second).
        DEADLINE_LATENESS.labels(deadline.flow).observe(
            max(0.0, wall_seconds_since(self.clock, deadline.due_at))
        )
        return 1

    async def _postpone(self, deadline_id: int, now: datetime, exc: Exception) -> None:
        async with self.db.pool.acquire() as conn:
            attempts = await conn.fetchval(
                "UPDATE deadlines SET attempts = attempts + 1, last_error = $2"
                " WHERE id = $1 RETURNING attempts",
                deadline_id,
                repr(exc)[:500],
            )
            backoff = timedelta(seconds=min(300, 2 ** min(int(attempts or 1), 8)))
            await conn.execute(
                "UPDATE deadlines SET next_attempt_at = $2 WHERE id = $1",
                deadline_id,
                now + backoff,
            )

    async def next_due(self) -> datetime | None:
        """The earliest pending instant, if any."""
        async with self.db.pool.acquire() as conn:
            due: datetime | None = await conn.fetchval(NEXT_DUE_SQL)
        return due

    async def run(self) -> None:
        """Background loop: fire what is due, then sleep until the earliest pending deadline.

        The sleep is capped at `poll_seconds` so deadlines another process wrote (and cannot fire,
        having crashed) are picked up here. A failed pass raises: the supervisor
        (`npc.core.supervision`) logs it, backs off and runs the loop again.
        """
        while True:
            self._wake.clear()
            await self.fire_due()
            due = await self.next_due()
            passed()
            cap = self.clock.now() + timedelta(seconds=self.poll_seconds)
            target = cap if due is None or due > cap else due
            self._next_wake = target
            await self.clock.sleep_until(target, self._wake)


class _Pass:
    """One `fire_due`: the cases queued and firing, those busy elsewhere, and what fired.

    A case is queued or firing at most once at a time, so its deadlines fire in their order.
    """

    def __init__(self, scheduler: DeadlineScheduler) -> None:
        self.scheduler = scheduler
        self.queued: deque[tuple[tuple[str, str], list[tuple[int, str]]]] = deque()
        self.firing: dict[asyncio.Task[tuple[int, bool]], tuple[str, str]] = {}
        self.cases: set[tuple[str, str]] = set()  # queued or firing
        # Cases a command (or another process) held, and when to try them again.
        self.busy: dict[tuple[str, str], float] = {}
        # Deadlines another process took, or that are done already: not again in this pass.
        self.passed_over: set[int] = set()
        self.fired = 0
        self.busy_waits = 0

    async def run(self) -> int:
        """Fire until nothing due is left but what is held elsewhere; return how many fired."""
        try:
            return await self._fire_all()
        finally:
            # A pass that fails (the storage) or is cancelled (the server stops) takes its
            # firings with it: none outlives it, and each one not committed stays due.
            for task in self.firing:
                task.cancel()
            if self.firing:
                await asyncio.gather(*self.firing, return_exceptions=True)

    async def _fire_all(self) -> int:
        scheduler = self.scheduler
        loop = asyncio.get_running_loop()
        while True:
            if not self.queued:
                await self._fetch(loop.time())
            while self.queued and len(self.firing) < scheduler.concurrency:
                case, ids = self.queued.popleft()
                task = loop.create_task(scheduler._fire_in_order(case, ids, self.passed_over))
                self.firing[task] = case
            if not self.firing:
                # Only cases busy with a command (or another process) are left, if any: they
                # are free again within a transaction's time.
                if not self.busy or self.busy_waits >= scheduler.busy_retries:
                    return self.fired  # what is left is postponed, or held for long elsewhere
                self.busy_waits += 1
                await asyncio.sleep(max(0.0, min(self.busy.values()) - loop.time()))
                continue
            done, _ = await asyncio.wait(self.firing, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                case = self.firing.pop(task)
                self.cases.discard(case)
                fired, busy = task.result()
                self.fired += fired
                if busy:
                    self.busy[case] = loop.time() + scheduler.busy_pause

    async def _fetch(self, now: float) -> None:
        rows = await self.scheduler.fetch_due(self.scheduler.clock.now())
        for case, until in list(self.busy.items()):
            if until <= now:
                del self.busy[case]
        by_case: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for row in rows:
            case = (row["flow"], row["case_id"])
            free = case not in self.cases and case not in self.busy
            if free and row["id"] not in self.passed_over:
                by_case[case].append((row["id"], row["kind"]))
        self.cases.update(by_case)
        self.queued.extend(by_case.items())
