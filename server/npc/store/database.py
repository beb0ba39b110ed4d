"""PostgreSQL access: the asyncpg pool, numbered migrations, and named transactions.

Every write goes through `Database.transaction(label)`, which yields a `Txn`: the connection plus
the events and deadlines the transaction produces. They are flushed in the same transaction as the
state they describe, and the core is told about them only after the commit succeeded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import astuple, dataclass, field, fields
from datetime import date, datetime
from importlib import resources
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolAcquireContext
from asyncpg.transaction import Transaction, TransactionState
from prometheus_client import Histogram

log = logging.getLogger(__name__)

TXN_SECONDS = Histogram(
    "npc_db_transaction_seconds",
    "Duration of named database transactions.",
    ["label", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# The label of the transaction the current task runs, for query loggers (asyncpg calls them in
# the context of the statement's task): which command a statement was a round trip of.
TRANSACTION_LABEL: ContextVar[str | None] = ContextVar("npc_transaction_label", default=None)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed 64-bit key: serialises migrations across processes starting together.
_MIGRATION_LOCK = 0x6E70635F6D696772


@dataclass
class EventDraft:
    """An event a transaction emits; it gets its position from the sequencer after commit."""

    flow: str
    type: str
    case_id: str | None
    sender: str
    payload: dict[str, Any]
    code: str | None = None
    audience: tuple[str, ...] = ()
    broadcast: bool = False


@dataclass
class DeadlineDraft:
    """A durable deadline set (or moved) by a transaction."""

    flow: str
    kind: str
    case_id: str
    due_at: datetime
    rule: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class NotificationDraft:
    """A subscriber notification a transaction queues (`npc.notifications.outbox`)."""

    channel: str
    recipient: str
    subject: str | None
    body: str
    flow: str
    case_id: str | None


@dataclass(frozen=True)
class CommandAnswer:
    """The first answer to an idempotent command (`command_results`), written with its effects
    so that an acknowledged command is exactly as durable as its answer."""

    caller: str
    request_id: str
    method: str
    request_digest: bytes
    status_code: int
    response: bytes | None
    error_message: str | None
    error_details: bytes | None


class CaseBusy(Exception):
    """A transaction that may not wait for a case lock (`Txn.waits`) found it taken: the work
    is rolled back and runs again where it may wait."""


def case_lock_sql(key: str, *, wait: bool = True) -> str:
    """The statement taking the case lock (`Txn.lock_case`) named by the parameter `key` ("$1"),
    or trying to take it when not `wait`; also for statements that take it along with more."""
    take = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    return f"SELECT {take}(hashtextextended({key}, 0))"


def case_lock_key(flow: str, case_id: str) -> str:
    """The text whose hash names the advisory lock of a case."""
    return f"{flow}:{case_id}"


@dataclass
class Txn:
    """One unit of work: a connection inside a transaction plus what it emits."""

    conn: asyncpg.Connection
    now: datetime
    label: str
    events: list[EventDraft] = field(default_factory=list)
    deadlines: list[DeadlineDraft] = field(default_factory=list)
    cancelled: list[tuple[str, str, str | None]] = field(default_factory=list)
    answer: CommandAnswer | None = None
    notifications: list[NotificationDraft] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Case rows locked by a `CaseTable` whose updates wait for the commit, as those updates
    # leave them, and the updates themselves ((table, id) -> column -> SQL literal).
    case_rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    row_updates: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # Case rows already locked and read by the statement that began this work, for the next
    # `CaseTable.lock` of that row ((table, id) -> row; `preload_case_row`).
    preloaded: dict[tuple[str, str], Any] = field(default_factory=dict)
    # False for a command that shares its transaction with others before it (`npc.store.groups`):
    # it holds their case locks, so it must not wait for one (two groups could wait for each
    # other); a case lock taken elsewhere raises `CaseBusy` instead.
    waits: bool = True

    def emit(
        self,
        flow: str,
        type: str,
        *,
        case_id: str | None,
        sender: str,
        payload: dict[str, Any],
        code: str | None = None,
        audience: tuple[str, ...] | list[str] = (),
        broadcast: bool = False,
    ) -> None:
        """Append an event to the log, atomically with this transaction."""
        self.events.append(
            EventDraft(flow, type, case_id, sender, payload, code, tuple(audience), broadcast)
        )

    def set_deadline(
        self,
        flow: str,
        kind: str,
        case_id: str,
        due_at: datetime,
        rule: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Create or move the deadline `kind` of a case."""
        self.deadlines.append(DeadlineDraft(flow, kind, case_id, due_at, rule, payload or {}))

    def cancel_deadlines(self, flow: str, case_id: str, kind: str | None = None) -> None:
        """Cancel a pending deadline of a case (all of its pending deadlines when kind is None)."""
        self.cancelled.append((flow, case_id, kind))

    def preload_case_row(self, table: str, case_id: str, row: Any) -> None:
        """`row` of `table` is locked (after the case lock) and read: the next `CaseTable.lock`
        of it takes it from here instead of asking PostgreSQL (a deadline's firing reads its
        case with the deadline: `DeadlineScheduler.register`'s `case_table`)."""
        self.preloaded[(table, case_id)] = row

    def defer_update(
        self, table: str, case_id: str, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Write `changes` to the locked case row with the commit, in the flush's round trip, and
        return the row as they leave it; None (nothing deferred) when this transaction did not
        lock the row through its `CaseTable` or a value has no literal here (`update_literal`).

        The row is locked, so nothing but this transaction changes it before the commit. Reads
        of the table by this transaction would not see the change yet: the tables that defer
        (`CaseTable(deferred_updates=True)`) are read by their commands only through the row
        returned here.
        """
        row = self.case_rows.get((table, case_id))
        if row is None:
            return None
        try:
            literals = {column: update_literal(value) for column, value in changes.items()}
        except (TypeError, ValueError):
            return None
        self.row_updates.setdefault((table, case_id), {}).update(literals)
        row = {**row, **changes}
        self.case_rows[(table, case_id)] = row
        return row

    async def write_deferred(self, table: str, case_id: str) -> None:
        """Write the deferred update of a row now (before one that cannot wait)."""
        literals = self.row_updates.pop((table, case_id), None)
        if literals:
            update = _Updates(self.conn)
            update.add(table, case_id, literals)
            await self.conn.execute(update.sql())
            update.sent()

    async def lock_case(self, flow: str, case_id: str) -> None:
        """Serialise work on one case until commit.

        Every command and every deadline on a case takes this lock before any row lock, so
        their row locks are always taken in the same order and cannot deadlock. A transaction
        that may not wait (`waits`) raises `CaseBusy` when another holds it.
        """
        if not self.waits:
            if not await self.try_lock_case(flow, case_id):
                raise CaseBusy(case_lock_key(flow, case_id))
            return
        await self.conn.execute(case_lock_sql("$1"), case_lock_key(flow, case_id))

    async def try_lock_case(self, flow: str, case_id: str) -> bool:
        """Take the case lock of `lock_case` if it is free; False (and no lock) if not."""
        taken: bool = await self.conn.fetchval(
            case_lock_sql("$1", wait=False), case_lock_key(flow, case_id)
        )
        return taken

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed."""
        self._after_commit.append(callback)

    def run_after_commit(self) -> None:
        """Run the `after_commit` callbacks: the transaction has committed."""
        for callback in self._after_commit:
            callback()

    def record_answer(self, answer: CommandAnswer) -> None:
        """Store a command's answer with this transaction's effects (see `CommandAnswer`)."""
        self.answer = answer

    async def commit(self) -> None:
        """Write the buffered cancellations, deadlines, events, notifications and answer, and
        commit, in one round trip (`flush`)."""
        await self.flush("COMMIT")

    async def flush(self, then: str) -> None:
        """Write the buffered cancellations, deadlines, events, notifications and answer, and
        run `then` (COMMIT; or a savepoint's statements, for a group's member: `npc.store.groups`)
        after them: the flush's statement and `then` travel in one simple-protocol query.

        Deadlines, events, notifications and answer go in one statement: each write of its own
        would be one more round trip, and round trips are much of a command's cost. asyncpg sends
        a statement with parameters alone (extended protocol, no pipelining), so the flush is a
        statement prepared once per connection (`npc_flush`) that the query EXECUTEs with its
        arguments written as literals, followed by `then`. An error in either ends the query
        there: nothing after it runs, and the caller rolls back."""
        # Cancellations first, then settings, as the flows expect: a deadline cancelled and set
        # again in one transaction ends up set. The last cancellation rides in the statement
        # below (commands usually cancel one deadline); any others go before it.
        last = self.cancelled[-1] if self.cancelled else None
        for flow, case_id, kind in self.cancelled[:-1]:
            await self.conn.execute(_CANCEL, flow, case_id, kind, self.now)
        # Deferred case-row updates go first, in the same query.
        deferred = _Updates(self.conn)
        for (table, case_id), assignments in self.row_updates.items():
            deferred.add(table, case_id, assignments)
        updates = deferred.sql()
        self.row_updates.clear()
        if not (self.deadlines or self.events or self.answer or last or self.notifications):
            await self.conn.execute(f"{updates}{then}")
            deferred.sent()
            return
        # The last setting of a deadline wins, as it would written one after the other.
        armed = {(d.flow, d.case_id, d.kind): d for d in self.deadlines}
        answer = self.answer  # its fields are the statement's $4 to $11, in order
        cancel: tuple[Any, ...] = (None, None, None, [])
        if last is not None:
            # In one statement the cancellation and a setting of the same deadline would both
            # see it as it was: the cancellation leaves alone what this transaction sets again.
            flow, case_id, kind = last
            again = [k for f, c, k in armed if (f, c) == (flow, case_id)]
            cancel = (flow, case_id, kind, again)
        arguments = (
            self.now,
            _json(
                [
                    {
                        "flow": d.flow,
                        "kind": d.kind,
                        "case_id": d.case_id,
                        "due_at": d.due_at.isoformat(),
                        "rule": d.rule,
                        "payload": d.payload,
                    }
                    for d in armed.values()
                ]
            ),
            _json(
                [
                    {
                        "flow": e.flow,
                        "type": e.type,
                        "code": e.code,
                        "case_id": e.case_id,
                        "sender": e.sender,
                        "audience": list(e.audience),
                        "broadcast": e.broadcast,
                        "payload": e.payload,
                    }
                    for e in self.events
                ]
            ),
            *(astuple(answer) if answer else (None,) * len(fields(CommandAnswer))),
            *cancel,
            _json(
                [
                    {
                        "channel": n.channel,
                        "recipient": n.recipient,
                        "subject": n.subject,
                        "body": n.body,
                        "flow": n.flow,
                        "case_id": n.case_id,
                    }
                    for n in self.notifications
                ]
            ),
        )
        await self.conn.prepare_flush()
        literals = ", ".join(sql_literal(a) for a in arguments)
        await self.conn.execute(f"{updates}EXECUTE {_FLUSH_NAME}({literals}); {then}")
        deferred.sent()


@dataclass
class _Updates:
    """Deferred row updates as statements of one simple query: EXECUTEs of UPDATEs prepared
    on the connection (PostgreSQL neither parses nor plans them again at each command), after
    the PREPAREs of those the connection has not prepared yet."""

    conn: asyncpg.Connection
    prepares: list[str] = field(default_factory=list)
    executes: list[str] = field(default_factory=list)
    fresh: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)

    def add(self, table: str, case_id: str, literals: dict[str, str]) -> None:
        columns = tuple(literals)
        name, prepare = self.conn.update_statement(table, columns)
        if prepare is not None:
            self.prepares.append(prepare)
            self.fresh.append((table, columns, name))
        self.executes.append(
            f"EXECUTE {name}({', '.join(literals.values())}, {sql_literal(case_id)})"
        )

    def sql(self) -> str:
        """The statements, each followed by "; "."""
        return "".join(f"{statement}; " for statement in [*self.prepares, *self.executes])

    def sent(self) -> None:
        """The query holding them succeeded: the PREPAREs ran."""
        for table, columns, name in self.fresh:
            self.conn.prepared(table, columns, name)


def update_literal(value: Any) -> str:
    """`value` as the literal of a deferred update (`Txn.defer_update`): an untyped literal
    takes its column's type, so a date or a JSON object is written as text. Arrays are not
    (their element type would have to be known): TypeError, and the update is not deferred."""
    if isinstance(value, list | tuple):
        raise TypeError("an array")
    if isinstance(value, dict):
        return sql_literal(_json(value))
    if isinstance(value, date) and not isinstance(value, datetime):
        return sql_literal(value.isoformat())
    return sql_literal(value)


def _json(value: Any) -> str:
    """`value` as JSON text for a jsonb column: orjson, seven times faster than `json.dumps` on a
    command's events, and like it in what it accepts (keys that are not strings become strings;
    an integer beyond 64 bits is refused, where PostgreSQL's numeric would have kept it). jsonb
    keeps no formatting, so what is stored is the same either way. Reading stays `json.loads`:
    orjson reads such an integer as a float, and the hash chain covers payloads as read."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def sql_literal(value: Any) -> str:
    """`value` as an SQL literal, for a query sent without parameters (`Txn.commit`).

    Only for connections with standard_conforming_strings on (`_Connection.prepare_flush`
    checks): a quote is then the only character a string literal escapes.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'"
    if isinstance(value, list):
        return f"ARRAY[{', '.join(sql_literal(v) for v in value)}]::text[]" if value else "'{}'"
    if isinstance(value, datetime):
        value = value.isoformat()
    if not isinstance(value, str):
        raise TypeError(f"no SQL literal for {type(value).__name__}")
    if "\0" in value:
        # PostgreSQL's text cannot hold it; sent as a parameter it is refused too.
        raise ValueError("a string with a NUL character")
    return "'" + value.replace("'", "''") + "'"


# `coalesce(...) IS NULL` rather than `fired_at IS NULL AND cancelled_at IS NULL`: the latter is the
# predicate of the partial index `deadlines_pending`, which the planner then may pick (statistics
# of a table growing fast say it is tiny) and walk through every pending deadline. Here only the
# (flow, case_id, kind) key can serve.
_CANCEL = """
UPDATE deadlines SET cancelled_at = $4 WHERE flow = $1 AND case_id = $2
   AND ($3::text IS NULL OR kind = $3) AND coalesce(fired_at, cancelled_at) IS NULL
"""

# One cancellation rides in this statement as scalars ($12 to $15), which the (flow, case_id,
# kind) key serves; several, given as arrays, would be joined by a cached generic plan to a
# parameter of unknown size by a sequential scan, so the others are statements of their own.
_FLUSH = """
WITH cancelled AS (
    UPDATE deadlines SET cancelled_at = $1
    WHERE $12::text IS NOT NULL AND flow = $12 AND case_id = $13
      AND ($14::text IS NULL OR kind = $14) AND NOT (kind = ANY($15::text[]))
      AND coalesce(fired_at, cancelled_at) IS NULL
    RETURNING 1
), armed AS (
    INSERT INTO deadlines (flow, kind, case_id, due_at, next_attempt_at, rule, payload, created_at)
    SELECT s.flow, s.kind, s.case_id, s.due_at, s.due_at, s.rule, s.payload, $1
    FROM jsonb_to_recordset($2::jsonb)
         AS s(flow text, kind text, case_id text, due_at timestamptz, rule text, payload jsonb)
    ON CONFLICT (flow, case_id, kind) DO UPDATE
    SET due_at = EXCLUDED.due_at, next_attempt_at = EXCLUDED.due_at, rule = EXCLUDED.rule,
        payload = EXCLUDED.payload, attempts = 0, fired_at = NULL, cancelled_at = NULL
    RETURNING 1
), logged AS (
    INSERT INTO events (occurred_at, flow, type, code, case_id, sender, audience, broadcast,
                        payload)
    SELECT $1, e.flow, e.type, e.code, e.case_id, e.sender, COALESCE(e.audience, '{}'),
           e.broadcast, e.payload
    FROM jsonb_to_recordset($3::jsonb) AS e(flow text, type text, code text, case_id text,
         sender text, audience text[], broadcast boolean, payload jsonb)
    RETURNING 1
), answered AS (
    INSERT INTO command_results (caller, request_id, method, request_digest, status_code,
                                 response, error_message, error_details, created_at)
    SELECT $4, $5, $6, $7, $8, $9, $10, $11, $1 WHERE $4::text IS NOT NULL
    RETURNING 1
), notified AS (
    INSERT INTO notifications (channel, recipient, subject, body, flow, case_id, created_at,
                               next_attempt_at)
    SELECT n.channel, n.recipient, n.subject, n.body, n.flow, n.case_id, $1, $1
    FROM jsonb_to_recordset($16::jsonb) AS n(channel text, recipient text, subject text,
         body text, flow text, case_id text)
    RETURNING 1
)
SELECT 1  -- each data-modifying WITH runs to completion, read or not
"""

# `_FLUSH` prepared on each connection, with its parameters' types, for `Txn.commit`; a prepared
# statement belongs to the session and outlives a transaction that rolls back.
_FLUSH_NAME = "npc_flush"
_PREPARE_FLUSH = f"""
PREPARE {_FLUSH_NAME} (timestamptz, jsonb, jsonb, text, text, text, bytea, integer, bytea, text,
                       bytea, text, text, text, text[], jsonb) AS {_FLUSH}"""


class _Connection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection that knows what its session prepared: the flush, and the UPDATEs
    of deferred case rows."""

    __slots__ = ("_flush_prepared", "_updates_prepared", "_update_names")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flush_prepared = False
        # (table, columns) -> the name of its prepared UPDATE (`update_statement`).
        self._updates_prepared: dict[tuple[str, tuple[str, ...]], str] = {}
        self._update_names = 0

    async def prepare_flush(self) -> None:
        """PREPARE the flush on this session, once (see `Txn.commit`)."""
        if self._flush_prepared:
            return
        # `sql_literal` escapes for standard strings only; a backslash must not escape anything.
        if self.get_settings().standard_conforming_strings != "on":
            raise RuntimeError("the flush needs standard_conforming_strings on")
        await self.execute(_PREPARE_FLUSH)
        self._flush_prepared = True

    def update_statement(self, table: str, columns: tuple[str, ...]) -> tuple[str, str | None]:
        """The name of `UPDATE table SET <columns> WHERE id = ...` prepared on this session, and
        the PREPARE to send first in the same query when it is not prepared yet (`Txn.commit`
        then calls `prepared`). A deferred update's columns are a handful per table.

        PREPARE is not undone by a rollback: a query that fails may or may not have prepared
        it, so each unconfirmed attempt takes a new name and never collides with a leftover.
        Parameters take their columns' types, as the untyped literals of `update_literal` did
        in the statement written out; table and column names are the flows' own identifiers,
        never a caller's input."""
        name = self._updates_prepared.get((table, columns))
        if name is not None:
            return name, None
        self._update_names += 1
        name = f"npc_update_{self._update_names}"
        assignments = ", ".join(f"{column} = ${k}" for k, column in enumerate(columns, 1))
        return name, (
            f"PREPARE {name} AS UPDATE {table} SET {assignments} WHERE id = ${len(columns) + 1}"
        )

    def prepared(self, table: str, columns: tuple[str, ...], name: str) -> None:
        """A query with the PREPARE of `update_statement` succeeded: use `name` from now on."""
        self._updates_prepared[(table, columns)] = name


TxnListener = Callable[[Txn], None]
# Called with asyncpg's `LoggedQuery` (query, args, timeout, elapsed, exception, conn_addr, ...).
QueryLogger = Callable[[Any], None]


class _AcquireContext(PoolAcquireContext):  # type: ignore[misc]  # asyncpg is untyped
    """`Pool.acquire()`'s context, terminating a connection whose protocol state is unknown."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        if self.connection is not None and _protocol_broken(exc_val):
            # The pool's reset sends nothing (`keep_session`), so nothing would notice: the next
            # caller would get the same connection and the same error.
            self.connection.terminate()
        await super().__aexit__(exc_type, exc_val, exc_tb)


class _Pool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg is untyped
    """asyncpg's pool, except that a connection that raised InternalClientError is not reused."""

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        """Acquire a connection (as `asyncpg.Pool.acquire`)."""
        return _AcquireContext(self, timeout)


def _protocol_broken(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from or while handling) is asyncpg's
    InternalClientError: the client's protocol state machine is not where the server is.

    PostgreSQL terminating a session (pg_terminate_backend, a fast shutdown) sends a FATAL error
    and only then closes the socket; a connection idle in the pool reads the error first and is
    stuck in the "error consume" state until the close arrives, while `is_closed()` still says
    False. A caller that acquires it in between gets "cannot switch to state 12; another
    operation (2) is in progress".
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, asyncpg.InternalClientError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class Database:
    """The asyncpg pool and the transaction helper."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str | None = None,
        query_loggers: list[QueryLogger] | None = None,
    ) -> None:
        self.pool = pool
        # Kept for connections of their own outside the pool (the health probe).
        self.dsn = dsn
        self._listeners: list[TxnListener] = []
        # The pool's `init` gives each new connection these (see `add_query_logger`).
        self._query_loggers = query_loggers if query_loggers is not None else []
        # See `background`, `sequencing` and `log_reads`; None: they share `pool`.
        self._background: Database | None = None
        self._sequencing: Database | None = None
        self._log_reads: Database | None = None

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 20,
        background: int = 0,
        sequencing: int = 0,
        log_reads: int = 0,
    ) -> Database:
        """Open a pool on `dsn`, and pools of `background`, `sequencing` and `log_reads`
        connections for `background()`, `sequencing()` and `log_reads()`."""
        loggers: list[QueryLogger] = []
        db = cls(await _open_pool(dsn, min_size, max_size, loggers), dsn, loggers)

        async def reserve(size: int, settings: dict[str, str]) -> Database | None:
            if not size:
                return None
            reserved = cls(await _open_pool(dsn, 1, size, loggers, settings), dsn, loggers)
            # Their commits wake the same sequencer and scheduler as the commands' do.
            reserved._listeners = db._listeners
            return reserved

        db._background = await reserve(background, SESSION_SETTINGS)
        db._sequencing = await reserve(sequencing, LOG_SETTINGS)
        db._log_reads = await reserve(log_reads, LOG_SETTINGS)
        return db

    def background(self) -> Database:
        """The database of the background loops that deliver what commands committed (the
        sequencer, the event hub, the deadline scheduler): connections of their own, so that
        a deadline or a broadcast never waits in the pool's queue behind hundreds of commands
        (at saturation that queue was most of the deadlines' lateness). Transactions and
        listeners are the same as this one's."""
        return self._background if self._background is not None else self

    def sequencing(self) -> Database:
        """The database of the sequencer (`npc.core.sequencer`): connections of its own, on
        which PostgreSQL plans each statement for its arguments and the log as it is
        (`LOG_SETTINGS`). Transactions and listeners are the same as this one's."""
        return self._sequencing if self._sequencing is not None else self.background()

    def log_reads(self) -> Database:
        """The database of the event hub's reads of the log (`npc.core.fanout`), planned as the
        sequencer's are (`LOG_SETTINGS`), on connections of their own, so that a stream reading
        back never keeps the sequencer waiting for one."""
        return self._log_reads if self._log_reads is not None else self.background()

    def _reserved(self) -> list[Database]:
        return [
            db for db in (self._background, self._sequencing, self._log_reads) if db is not None
        ]

    async def close(self) -> None:
        """Close the pool (and the background loops', the sequencer's and the hub's own)."""
        for reserved in self._reserved():
            await reserved.pool.close()
        await self.pool.close()

    async def add_query_logger(self, callback: QueryLogger) -> None:
        """Call `callback(asyncpg.connection.LoggedQuery)` after every statement any connection of
        the pool runs from now on (the round trips a command costs, for tests and diagnosis)."""
        self._query_loggers.append(callback)
        # Connections open now get it on their next acquire: the pool replaces them.
        await self.pool.expire_connections()
        for reserved in self._reserved():
            await reserved.pool.expire_connections()

    def on_commit(self, listener: TxnListener) -> None:
        """Call `listener(txn)` after every committed transaction (fan-out and deadline wake-ups)."""
        self._listeners.append(listener)

    @property
    def listeners(self) -> tuple[TxnListener, ...]:
        """What `on_commit` registered, for those who commit transactions themselves."""
        return tuple(self._listeners)

    @asynccontextmanager
    async def transaction(self, label: str, now: datetime) -> AsyncIterator[Txn]:
        """Run a named transaction; events and deadlines are flushed just before commit."""
        started = time.perf_counter()
        outcome = "error"
        token = TRANSACTION_LABEL.set(label)
        async with self.pool.acquire() as conn:
            txn = Txn(conn=conn, now=now, label=label)
            try:
                # asyncpg's transaction object, so that the flows' nested `conn.transaction()`
                # blocks are savepoints; its COMMIT is `Txn.commit`'s, sent with the flush.
                block = conn.transaction()
                await block.start()
                try:
                    yield txn
                    await txn.commit()
                except BaseException:
                    await block.rollback()
                    raise
                committed(conn, block)
                outcome = "commit"
            finally:
                TRANSACTION_LABEL.reset(token)
                TXN_SECONDS.labels(label, outcome).observe(time.perf_counter() - started)
        for listener in self._listeners:
            listener(txn)
        txn.run_after_commit()

    async def migrate(self, *, grant_to: str | None = None) -> list[str]:
        """Apply the numbered SQL migrations not applied yet; return the names applied.

        With `grant_to`, this connection's role is the tables' owner and `grant_to` the
        application role: it gets the application's privileges (`grant_application_role`).
        """
        applied: list[str] = []
        async with self.pool.acquire() as conn:
            if grant_to is None and await _up_to_date(conn):
                # The application role cannot create tables: when the owner already migrated,
                # its start must not try.
                return applied
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version integer PRIMARY KEY, name text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now())"""
                )
                done = {
                    r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")
                }
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            version,
                            name,
                        )
                    log.info("applied migration %04d_%s", version, name)
                    applied.append(f"{version:04d}_{name}")
                if grant_to is not None:
                    await grant_application_role(conn, grant_to)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        return applied


# Every connection of the server's pools runs with these. JIT compilation is off: the planner
# compiles any statement whose estimated cost passes `jit_above_cost`, and the estimates of small,
# hot statements can (the sequencer's read of the head with the waiting events was estimated at
# 590,000 rows for 26 and paid 10 ms of compilation to run 0.2 ms). A clearinghouse runs short
# statements; its backlog-wide counts run once a minute and gain little from it.
SESSION_SETTINGS = {"jit": "off"}

# The connections of the sequencer and of the hub's reads also plan every statement for the
# arguments it runs with. A statement asyncpg prepared is planned for its arguments five times,
# and then PostgreSQL may keep a generic plan for good, costed with the tables as they were then;
# the log grows from nothing at a clearinghouse's start, so the positioning statement's generic
# plan joined a batch to a sequential scan of the whole log (a fifth of a core at 73,000 events,
# growing with the log), and the hub's read of what follows its head sorted a sequential scan
# (48 ms a read), until an ANALYZE happened to invalidate them. Planning these few statements
# each time costs a fraction of a millisecond.
LOG_SETTINGS = {**SESSION_SETTINGS, "plan_cache_mode": "force_custom_plan"}


async def _open_pool(
    dsn: str,
    min_size: int,
    max_size: int,
    loggers: list[QueryLogger],
    settings: dict[str, str] = SESSION_SETTINGS,
) -> asyncpg.Pool:
    async def init(conn: _Connection) -> None:
        await _init_connection(conn)
        # Here rather than in a command's transaction, one round trip less on its first use;
        # before the first migration there is nothing to prepare yet.
        with contextlib.suppress(asyncpg.UndefinedTableError):
            await conn.prepare_flush()
        for logger in loggers:
            conn.add_query_logger(logger)

    pool = _Pool(
        dsn,
        server_settings=settings,
        connection_class=_Connection,
        record_class=asyncpg.Record,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,  # asyncpg.create_pool's defaults
        max_inactive_connection_lifetime=300.0,
        init=init,
        reset=keep_session,
        loop=None,
    )
    await pool
    return pool


def committed(conn: asyncpg.Connection, block: Transaction) -> None:
    """Tell asyncpg that `block` ended with the COMMIT `Txn.commit` (or a group's last flush,
    `npc.store.groups`) sent: it has no public way, its own commit would send another."""
    # The query ended idle, so PostgreSQL committed; asyncpg's bookkeeping is all that is left.
    assert not conn.is_in_transaction()
    block._state = TransactionState.COMMITTED
    block._connection._top_xact = None  # the connection itself, not the pool's proxy


async def _up_to_date(conn: asyncpg.Connection) -> bool:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return False
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return all(version in done for version, _, _ in _migrations())


# The audit trail: rows the application appends and never changes (the sequencer only fills in
# a new event's position and hash; the head only moves forward, by trigger).
APPEND_ONLY_TABLES = ("events", "compliance_records", "anchors")


async def grant_application_role(conn: asyncpg.Connection, role: str) -> None:
    """Give `role` what the server needs and no more: read and write the tables, but only
    append to the audit trail, never TRUNCATE, and own nothing (only an owner or a superuser
    may disable a trigger or alter a table)."""
    quoted = '"' + role.replace('"', '""') + '"'
    append_only = ", ".join(APPEND_ONLY_TABLES)
    async with conn.transaction():
        await conn.execute(
            f"""
            GRANT USAGE ON SCHEMA public TO {quoted};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted};
            REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {quoted};
            REVOKE UPDATE, DELETE ON {append_only}, schema_migrations FROM {quoted};
            REVOKE INSERT ON schema_migrations FROM {quoted};
            REVOKE DELETE ON event_head FROM {quoted};
            GRANT UPDATE (position, hash) ON events TO {quoted};
            """
        )


async def role_can_bypass_audit(conn: asyncpg.Connection) -> bool:
    """True when this connection's role is a superuser or owns the event log: it could disable
    the audit trail's triggers."""
    bypass: bool = await conn.fetchval(
        """SELECT r.rolsuper OR pg_has_role(current_user, c.relowner, 'USAGE')
           FROM pg_roles r, pg_class c
           WHERE r.rolname = current_user AND c.oid = 'events'::regclass"""
    )
    return bypass


async def migrate_as_owner(dsn: str, application_role: str) -> list[str]:
    """Migrate on `dsn` (the owner's) and grant the application privileges to
    `application_role` (nothing to grant when it is the owner itself)."""
    owner = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        async with owner.pool.acquire() as conn:
            same = await conn.fetchval("SELECT current_user = $1", application_role)
        return await owner.migrate(grant_to=None if same else application_role)
    finally:
        await owner.close()


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("npc.store.schema").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share a number")
    return found


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset that sends nothing: asyncpg still rolls back a transaction left open.

    asyncpg's default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is one more round
    trip on every release, a tenth of a command's. The clearinghouse leaves no session state
    behind: locks are transaction-scoped (the migration lock is released in a `finally`),
    cursors live inside transactions, settings are `SET LOCAL`, and nothing LISTENs.

    Without a reset query nothing exercises the connection on release, so one whose protocol
    state broke is only caught by the pool's acquire context (`_AcquireContext`).
    """


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_json, decoder=json.loads, schema="pg_catalog")
