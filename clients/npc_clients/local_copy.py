"""An operator's local copy of the central registry, for call routing.

`LocalRegistry` keeps the numbering plan and the ported numbers in a SQLite file (WAL mode) and
answers `lookup(number)` locally. `RegistryFollower` fills it from a `StreamSnapshot` and keeps it
current from `EventService.Subscribe`: each `registry.numbers_changed` event is applied in one
SQLite transaction together with its position, so a crash at any point never applies an event
twice nor skips one; on restart it resumes from the stored position.

Command line::

    python -m npc_clients.local_copy --target HOST:PORT --token T --db PATH [--lookup NUMBER]

follows the registry into PATH until interrupted or, with ``--lookup``, answers one lookup from
the local file and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import grpc

from npc.v1 import events_pb2, registry_pb2
from npc_clients.client import OperatorClient

log = logging.getLogger("npc_clients.local_copy")

NUMBERS_CHANGED = "registry.numbers_changed"
IMPORTED = "registry.imported"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plan_ranges (
    first        INTEGER NOT NULL PRIMARY KEY,
    last         INTEGER NOT NULL,
    operator     TEXT    NOT NULL,
    routing_code TEXT    NOT NULL,
    service      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ported_numbers (
    number           TEXT NOT NULL PRIMARY KEY,
    serving_operator TEXT NOT NULL,
    routing_code     TEXT NOT NULL,
    since            TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Routing:
    """Where to route a call to `number`."""

    number: str
    serving_operator: str
    routing_code: str
    ported: bool
    range_holder: str
    service: int
    ported_since: str | None = None  # ISO 8601, UTC


def _utc_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


class LocalRegistry:
    """The registry as of one stream position, in a SQLite file.

    Writes go through one connection (the follower's); lookups use another, so they always see
    the last committed state, never a snapshot half loaded. Lookups are thread-safe.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer = self._connect(path)
        self._writer.executescript(_SCHEMA)
        self._reader = self._connect(path)
        self._read_lock = threading.Lock()

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives any process crash; only an OS crash could lose the last
        # commits (never corrupt), and the follower then just resumes from an earlier position.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        """Close the file."""
        self._writer.close()
        with self._read_lock:
            self._reader.close()

    # -- reads ---------------------------------------------------------------------------------

    def position(self) -> int | None:
        """The stream position the copy is consistent at; None before the first snapshot."""
        with self._read_lock:
            row = self._reader.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _range_of(conn: sqlite3.Connection, number: str) -> tuple | None:
        value = int(number)
        row = conn.execute(
            "SELECT first, last, operator, routing_code, service FROM plan_ranges"
            " WHERE first <= ? ORDER BY first DESC LIMIT 1",
            (value,),
        ).fetchone()
        if row is None or row[1] < value:
            return None
        return row

    def lookup(self, number: str) -> Routing | None:
        """Routing of `number`; None if no operator holds a range containing it."""
        if not number.isascii() or not number.isdigit():
            raise ValueError(f"not a number: {number!r}")
        with self._read_lock:
            self._reader.execute("BEGIN")  # both reads from one committed state
            try:
                plan = self._range_of(self._reader, number)
                ported = self._reader.execute(
                    "SELECT serving_operator, routing_code, since FROM ported_numbers"
                    " WHERE number = ?",
                    (number,),
                ).fetchone()
            finally:
                self._reader.execute("COMMIT")
        if plan is None:
            return None
        _, _, holder, holder_code, service = plan
        if ported is None:
            return Routing(number, holder, holder_code, False, holder, service)
        serving, code, since = ported
        return Routing(number, serving, code, True, holder, service, since)

    def ported(self) -> dict[str, str]:
        """Every ported number -> its serving operator."""
        with self._read_lock:
            return dict(self._reader.execute("SELECT number, serving_operator FROM ported_numbers"))

    # -- writes --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _set_position(conn: sqlite3.Connection, position: int) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('position', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(position),),
        )

    def _stored_position(self, conn: sqlite3.Connection) -> int | None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        return None if row is None else int(row[0])

    @contextlib.contextmanager
    def loading_snapshot(self, position: int) -> Iterator[SnapshotLoader]:
        """Replace the whole copy by a snapshot at `position`, in one transaction.

        Readers keep seeing the previous state until the block exits without error.
        """
        with self._transaction() as conn:
            conn.execute("DELETE FROM plan_ranges")
            conn.execute("DELETE FROM ported_numbers")
            self._set_position(conn, position)
            yield SnapshotLoader(conn)

    def apply_changes(
        self, position: int, to_operator: str, routing_code: str, since: str, numbers: Iterable[str]
    ) -> bool:
        """Apply one registry change at `position`; False (nothing done) if already applied."""
        with self._transaction() as conn:
            stored = self._stored_position(conn)
            if stored is None:
                raise RuntimeError("no snapshot loaded")
            if position <= stored:
                return False
            for number in numbers:
                plan = self._range_of(conn, number)
                if plan is None:
                    continue  # outside the plan: the clearinghouse ignores it too
                if plan[2] == to_operator:  # home to its range holder: no longer ported
                    conn.execute("DELETE FROM ported_numbers WHERE number = ?", (number,))
                else:
                    conn.execute(
                        "INSERT INTO ported_numbers (number, serving_operator, routing_code, since)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET"
                        " serving_operator = excluded.serving_operator,"
                        " routing_code = excluded.routing_code, since = excluded.since",
                        (number, to_operator, routing_code, since),
                    )
            self._set_position(conn, position)
            return True

    def advance(self, position: int) -> bool:
        """Record that every event up to `position` is processed; False if already there."""
        with self._transaction() as conn:
            stored = self._stored_position(conn)
            if stored is None:
                raise RuntimeError("no snapshot loaded")
            if position <= stored:
                return False
            self._set_position(conn, position)
            return True


class SnapshotLoader:
    """Inserts the chunks of a snapshot inside `LocalRegistry.loading_snapshot`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, chunk: registry_pb2.SnapshotChunk) -> None:
        """Insert the ranges and ported numbers of one chunk."""
        self._conn.executemany(
            "INSERT INTO plan_ranges (first, last, operator, routing_code, service)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (int(r.first), int(r.last), r.operator, r.routing_code, r.service)
                for r in chunk.ranges
            ],
        )
        self._conn.executemany(
            "INSERT INTO ported_numbers (number, serving_operator, routing_code, since)"
            " VALUES (?, ?, ?, ?)",
            [
                (
                    p.number,
                    p.serving_operator,
                    p.routing_code,
                    _utc_iso(p.ported_since.ToDatetime(tzinfo=UTC))
                    if p.HasField("ported_since")
                    else None,
                )
                for p in chunk.ported
            ],
        )


class _Reload(Exception):
    """A registry.imported event: the copy must be reloaded from a snapshot."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class RegistryFollower:
    """Keeps a `LocalRegistry` current from the clearinghouse."""

    def __init__(
        self,
        client: OperatorClient,
        registry: LocalRegistry,
        *,
        chunk_size: int = 0,
        max_backoff: float = 5.0,
    ) -> None:
        self.client = client
        self.registry = registry
        self.chunk_size = chunk_size
        self.max_backoff = max_backoff
        self.applied = 0  # registry changes applied by this follower
        self.snapshots = 0  # snapshots loaded by this follower

    async def load_snapshot(self) -> int:
        """Download the whole registry and replace the copy with it; return its position."""
        call = self.client.registry.StreamSnapshot(
            registry_pb2.StreamSnapshotRequest(chunk_size=self.chunk_size),
            metadata=self.client.metadata,
        )
        try:
            first = await call.read()
            if first is grpc.aio.EOF:
                raise RuntimeError("empty snapshot")
            position = first.position
            with self.registry.loading_snapshot(position) as loader:
                loader.add(first)
                chunk = first
                while not chunk.last:
                    chunk = await call.read()
                    if chunk is grpc.aio.EOF:
                        raise RuntimeError("snapshot ended without its last chunk")
                    if chunk.position != position:
                        raise RuntimeError("snapshot chunks at different positions")
                    loader.add(chunk)
        finally:
            call.cancel()
        self.snapshots += 1
        log.info("snapshot loaded at position %d", position)
        return position

    async def sync(self) -> None:
        """Load a snapshot if the copy has none, then apply the stream from the stored position.

        Returns only if the server ends the stream; raises on gRPC errors. Cancel it to stop:
        whatever was committed stays, and the next sync resumes after it.
        """
        while True:
            position = self.registry.position()
            if position is None:
                position = await self.load_snapshot()
            try:
                await self._follow(position)
                return
            except _Reload as reload:
                await self._reload(reload.position)

    async def _reload(self, at_least: int) -> None:
        for attempt in range(20):
            if await self.load_snapshot() >= at_least:
                return
            await asyncio.sleep(min(0.1 * 2**attempt, self.max_backoff))
        log.warning("snapshot still older than the import at %d; following anyway", at_least)

    async def _follow(self, position: int) -> None:
        call = self.client.events.Subscribe(
            events_pb2.SubscribeRequest(from_position=position), metadata=self.client.metadata
        )
        try:
            async for event in call:
                self._apply(event)
        finally:
            call.cancel()

    def _apply(self, event: events_pb2.Event) -> None:
        if event.type == NUMBERS_CHANGED:
            changed = event.numbers_changed
            since = (
                _utc_iso(changed.changed_at.ToDatetime(tzinfo=UTC))
                if changed.HasField("changed_at")
                else ""
            )
            numbers = [n for move in changed.moves for n in move.numbers]
            if self.registry.apply_changes(
                event.position, changed.to_operator, changed.routing_code, since, numbers
            ):
                self.applied += 1
                log.info(
                    "position %d: %d numbers to %s",
                    event.position,
                    len(numbers),
                    changed.to_operator,
                )
        elif event.type == IMPORTED:
            stored = self.registry.position()
            if stored is None or event.position > stored:
                raise _Reload(event.position)
        else:
            self.registry.advance(event.position)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until `stop` is set, reconnecting with backoff after any error."""
        backoff = 0.1
        while not stop.is_set():
            before = self.registry.position()
            task = asyncio.create_task(self.sync())
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if stop.is_set():
                return
            # A call cancelled locally (e.g. its channel closed) ends the task as cancelled.
            error = None if task.cancelled() else task.exception()
            if task.cancelled():
                log.warning("stream cancelled")
            elif isinstance(error, grpc.aio.AioRpcError):
                log.warning("stream failed (%s): %s", error.code().name, error.details())
            elif error is not None:
                log.warning("stream failed: %r", error)
            else:
                log.info("stream ended by the server")
            if self.registry.position() != before:
                backoff = 0.1  # progress was made: reconnect quickly
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.max_backoff)


# -- command line ------------------------------------------------------------------------------


async def _follow_forever(target: str, token: str, db: str) -> None:
    registry = LocalRegistry(db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with OperatorClient(target, token) as client:
            await RegistryFollower(client, registry).run(stop)
    finally:
        registry.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m npc_clients.local_copy``."""
    parser = argparse.ArgumentParser(
        prog="python -m npc_clients.local_copy",
        description="Keep a local copy of the number registry, or look a number up in it.",
    )
    parser.add_argument("--target", help="clearinghouse gRPC address, HOST:PORT")
    parser.add_argument("--token", help="the operator's API token")
    parser.add_argument("--db", required=True, help="the SQLite file of the local copy")
    parser.add_argument("--lookup", metavar="NUMBER", help="answer from the local copy and exit")
    args = parser.parse_args(argv)
    if args.lookup is not None:
        registry = LocalRegistry(args.db)
        try:
            if registry.position() is None:
                print("the local copy is empty: follow first", file=sys.stderr)
                return 2
            try:
                routing = registry.lookup(args.lookup)
            except ValueError as error:
                print(error, file=sys.stderr)
                return 2
        finally:
            registry.close()
        if routing is None:
            print(json.dumps({"number": args.lookup, "in_plan": False}))
        else:
            print(json.dumps({**asdict(routing), "in_plan": True}))
        return 0
    if not args.target or not args.token:
        parser.error("--target and --token are needed to follow")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_follow_forever(args.target, args.token, args.db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
