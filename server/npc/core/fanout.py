"""Ordered fan-out of the event log.

Writers insert events without a position. The `Sequencer` gives committed events the next gap-free
positions (and their chained hashes) in one short transaction per batch; any number of server
processes may run one, they serialise on the `event_head` row. Each process has one `EventHub` that
follows the head, keeps a window of recent events in memory, and serves subscribers from it; a
subscriber that is behind the window catches up from PostgreSQL. Redis pub/sub carries the wake-ups
between processes; polling covers the time Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import asyncpg
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from npc.core.events import LoggedEvent, chain_hash
from npc.core.supervision import passed
from npc.store.database import Database

log = logging.getLogger(__name__)

HEAD_POSITION = Gauge("npc_event_log_head_position", "Highest position assigned in the event log.")
SEQUENCED = Counter("npc_events_sequenced_total", "Events given a position by this process.")
SUBSCRIBERS = Gauge("npc_event_subscribers", "Open event stream subscriptions in this process.")
DELIVERED = Counter(
    "npc_events_delivered_total", "Events sent on operators' streams, by operator.", ["operator"]
)
CATCHUP_READS = Counter(
    "npc_event_catchup_reads_total",
    "Reads from PostgreSQL by a stream that fell behind the in-memory window, by operator.",
    ["operator"],
)


class _Subscription:
    """One open stream: whom it serves and the last position it went past."""

    __slots__ = ("label", "cursor")

    def __init__(self, label: str, cursor: int) -> None:
        self.label = label
        self.cursor = cursor


class _SubscriberLag(Collector):
    """Per operator, the largest distance between a hub's head and one of its streams' cursors,
    computed at scrape time: a stream blocked on a slow reader is seen lagging while it is
    blocked, and a closed stream leaves no stale series behind."""

    def __init__(self) -> None:
        self.hubs: weakref.WeakSet[EventHub] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag: dict[str, int] = {}
        for hub in list(self.hubs):
            for sub in list(hub.subscriptions):
                lag[sub.label] = max(lag.get(sub.label, 0), max(0, hub.head - sub.cursor))
        family = GaugeMetricFamily(
            "npc_event_subscriber_lag_events",
            "Events between the log head and the position an operator's slowest stream reached.",
            labels=["operator"],
        )
        for label in sorted(lag):
            family.add_metric([label], lag[label])
        yield family


SUBSCRIBER_LAG = _SubscriberLag()
REGISTRY.register(SUBSCRIBER_LAG)

_EVENT_COLUMNS = (
    "position, occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload, hash"
)


_ANY_WAITING = "SELECT EXISTS (SELECT 1 FROM events WHERE position IS NULL)"

# The head and the first waiting events, in one snapshot; the head alone (event columns NULL)
# when nothing waits.
_WAITING = """
SELECT h.position AS head_position, h.hash AS head_hash, e.*
FROM event_head h
LEFT JOIN LATERAL (
    SELECT id, occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload
    FROM events WHERE position IS NULL ORDER BY id LIMIT $1
) e ON true
ORDER BY e.id
"""

# Moves the head from $4 to ($5, $6) and positions the events ($1, $2, $3), or does nothing when
# the head is no longer at $4: the EXISTS is a one-time filter over the head's UPDATE, which waits
# for another writer's lock and then sees its committed position. In the same round trip, the
# next events waiting (up to $7; the statement's snapshot still shows the batch unsequenced, so
# it is left out): they count only when the head moved, and then no other sequencer can have
# positioned any of them, for it would have had to move the head from $4 first. Always one row
# at least: `moved`, and the waiting events' columns (NULL when none waits).
_POSITION = """
WITH head AS (
    UPDATE event_head SET position = $5, hash = $6 WHERE position = $4 RETURNING 1
), positioned AS (
    UPDATE events SET position = u.position, hash = u.hash
    FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u(id, position, hash)
    WHERE events.id = u.id AND EXISTS (SELECT FROM head)
    RETURNING 1
)
SELECT (SELECT EXISTS (SELECT FROM head)) AS moved, e.*
FROM (SELECT) AS one
LEFT JOIN LATERAL (
    SELECT id, occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload
    FROM events
    WHERE position IS NULL AND id NOT IN (SELECT unnest($1::bigint[]))
    ORDER BY id LIMIT $7
) e ON true
ORDER BY e.id
"""

# Another process moving the head between a pass's read and write makes the pass read again;
# this many in a row means something else is wrong.
_SEQUENCE_ATTEMPTS = 50


@dataclass(frozen=True)
class _Chained:
    """A batch given its positions and hashes, to be written if the head is still `read_at`."""

    read_at: int
    rows: list[asyncpg.Record]
    ids: list[int]
    positions: list[int]
    hashes: list[bytes]

    @property
    def head(self) -> int:
        return self.positions[-1]

    @property
    def head_hash(self) -> bytes:
        return self.hashes[-1]


@dataclass(frozen=True)
class _Batch:
    """The head as read (or as the last batch left it) and the events waiting after it."""

    position: int
    hash: bytes
    rows: list[asyncpg.Record]

    @classmethod
    def first(cls, rows: list[asyncpg.Record]) -> _Batch:
        """From `_WAITING`'s rows: the head, and the events (none when the head came alone)."""
        head = rows[0]
        waiting = rows if head["id"] is not None else []
        return cls(head["head_position"], head["head_hash"], waiting)

    def chained(self) -> _Chained:
        """The events' positions after the head, each hash chained to the previous one's."""
        position, previous = self.position, self.hash
        positions, hashes = [], []
        for row in self.rows:
            position += 1
            previous = chain_hash(previous, position, row)
            positions.append(position)
            hashes.append(previous)
        return _Chained(self.position, self.rows, [r["id"] for r in self.rows], positions, hashes)


class Sequencer:
    """Assigns gap-free positions and hash-chain links to committed events."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 2000,
        poll_seconds: float = 0.1,
        on_sequenced: Callable[[int], None] | None = None,
        on_batch: Callable[[list[LoggedEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.on_sequenced = on_sequenced
        # This process's hub takes the batch as sequenced (`EventHub.accept`) instead of reading
        # it back from PostgreSQL: one round trip less per batch.
        self.on_batch = on_batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a sequencing pass soon (events were committed)."""
        self._wake.set()

    async def sequence_once(self, *, probe: bool = False) -> int:
        """Sequence what waits; return how many events got a position.

        One statement reads the head with the waiting events (one snapshot, so they agree);
        then each round trip moves the head from the position read to the new one and positions
        a batch, only if the head was still where it was read (a compare-and-set: a sequencer
        of another process that moved it first wins, and this one reads again), and reads the
        next batch: while events keep coming, a batch costs one round trip, not two. The head's
        row lock serialises the writers of that statement.

        With `probe`, first look (one cheap indexed read) whether anything waits: a polling
        pass usually finds nothing.
        """
        if probe:
            async with self.db.pool.acquire() as conn:
                waiting = await conn.fetchval(_ANY_WAITING)
            if not waiting:
                return 0
        sequenced = 0
        for _ in range(_SEQUENCE_ATTEMPTS):
            async with self.db.pool.acquire() as conn:
                rows = await conn.fetch(_WAITING, self.batch_size)
                head = _Batch.first(rows)
                while head.rows:
                    batch = head.chained()
                    rows = await conn.fetch(
                        _POSITION,
                        batch.ids,
                        batch.positions,
                        batch.hashes,
                        batch.read_at,
                        batch.head,
                        batch.head_hash,
                        self.batch_size,
                    )
                    if not rows[0]["moved"]:
                        break  # another process moved the head: read it again
                    await self._positioned(batch)
                    sequenced += len(batch.rows)
                    passed()
                    head = _Batch(batch.head, batch.head_hash, [r for r in rows if r["id"]])
                else:
                    return sequenced
        raise RuntimeError(
            f"the event head moved under {_SEQUENCE_ATTEMPTS} sequencing passes in a row"
        )

    async def _positioned(self, batch: _Chained) -> None:
        SEQUENCED.inc(len(batch.rows))
        HEAD_POSITION.set(batch.head)
        if self.on_batch is not None:
            await self.on_batch(
                [
                    LoggedEvent(
                        position=position,
                        occurred_at=row["occurred_at"],
                        flow=row["flow"],
                        type=row["type"],
                        code=row["code"],
                        case_id=row["case_id"],
                        sender=row["sender"],
                        audience=tuple(row["audience"] or ()),
                        broadcast=row["broadcast"],
                        payload=row["payload"],
                        hash=hashed,
                    )
                    for row, position, hashed in zip(
                        batch.rows, batch.positions, batch.hashes, strict=True
                    )
                ]
            )
        if self.on_sequenced is not None:
            self.on_sequenced(batch.head)

    async def catch_up(self) -> None:
        """Sequence until nothing committed is left without a position."""
        while await self.sequence_once():
            pass

    async def run(self) -> None:
        """Background loop: sequence whenever woken, and poll as a fallback. A failed pass
        raises: the supervisor (`npc.core.supervision`) logs it, backs off and runs it again."""
        woken = True
        while True:
            self._wake.clear()
            count = await self.sequence_once(probe=not woken)
            passed()
            if count >= self.batch_size:
                continue
            # asyncio.timeout, unlike wait_for on 3.11, never swallows a cancellation.
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
                    woken = True


EventsHook = Callable[[Sequence[LoggedEvent]], Awaitable[None]]


class EventHub:
    """Follows the log head in this process and serves subscribers in position order.

    Hooks (`add_hook`) see every new batch of events, in order, before any subscriber of this
    process does: a cache a hook keeps current is never older than what the streams have shown.
    """

    def __init__(self, db: Database, *, window: int = 20000, poll_seconds: float = 0.25) -> None:
        self.db = db
        self.window: deque[LoggedEvent] = deque(maxlen=window)
        self.head = 0
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._refresh_lock = asyncio.Lock()
        self._hooks: list[EventsHook] = []
        self.subscriptions: set[_Subscription] = set()
        SUBSCRIBER_LAG.hubs.add(self)

    def add_hook(self, hook: EventsHook) -> None:
        """Call `hook` with each new batch of contiguous events before they are delivered.

        A hook must not raise (failures are logged and delivery goes on: a stream never waits for
        a cache); it is awaited, so it must be quick.
        """
        self._hooks.append(hook)

    async def _run_hooks(self, events: Sequence[LoggedEvent]) -> None:
        for hook in self._hooks:
            try:
                await hook(events)
            except Exception:
                log.exception("event hook %r failed", hook)

    def wake(self, head: int | None = None) -> None:
        """Tell the hub the head may have moved (to `head` when known)."""
        if head is None or head > self.head:
            self._wake.set()

    async def start(self) -> None:
        """Position the hub at the current head."""
        async with self.db.pool.acquire() as conn:
            head = await conn.fetchval("SELECT position FROM event_head")
        self.head = int(head)
        HEAD_POSITION.set(self.head)

    async def accept(self, events: list[LoggedEvent]) -> None:
        """Take events this process just sequenced, when they follow the head; otherwise leave
        them to `refresh`, which reads from PostgreSQL whatever the hub is missing."""
        async with self._refresh_lock:
            if not events or events[0].position != self.head + 1:
                self._wake.set()
                return
            await self._run_hooks(events)
            self.window.extend(events)
            self.head = events[-1].position
            HEAD_POSITION.set(self.head)
            async with self._changed:
                self._changed.notify_all()

    async def refresh(self) -> None:
        """Read newly sequenced events into the window and wake subscribers."""
        async with self._refresh_lock:
            moved = False
            while True:
                async with self.db.pool.acquire() as conn:
                    rows = await conn.fetch(
                        f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > $1"
                        " ORDER BY position LIMIT 2000",
                        self.head,
                    )
                if not rows:
                    break
                fresh: list[LoggedEvent] = []
                expected = self.head + 1
                for row in rows:
                    event = LoggedEvent.from_row(row)
                    if event.position != expected:
                        # A position is only visible once its whole batch committed; stop at a gap.
                        break
                    fresh.append(event)
                    expected += 1
                if fresh:
                    await self._run_hooks(fresh)
                    self.window.extend(fresh)
                    self.head = fresh[-1].position
                    moved = True
                if len(fresh) == len(rows) == 2000:
                    continue
                break
            if moved:
                HEAD_POSITION.set(self.head)
                async with self._changed:
                    self._changed.notify_all()

    async def run(self) -> None:
        """Background loop: refresh when woken, and poll as a fallback. A failed refresh raises
        to the supervisor, as the sequencer's passes do."""
        while True:
            self._wake.clear()
            await self.refresh()
            passed()
            # asyncio.timeout, unlike wait_for on 3.11, never swallows a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()

    async def _wait_beyond(self, position: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.head > position)

    async def read(
        self,
        operator: str | None,
        after: int,
        upto: int,
        flows: Sequence[str],
        excluded: Sequence[str],
        limit: int,
    ) -> list[LoggedEvent]:
        """Up to `limit` positioned events in (after, upto], from PostgreSQL: those addressed to
        `operator` (all when None), of `flows` (all when empty), none of `excluded`."""
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > $1 AND position <= $2"
                " AND ($3::text IS NULL OR broadcast OR $3 = ANY(audience))"
                " AND (cardinality($4::text[]) = 0 OR flow = ANY($4))"
                " AND NOT (flow = ANY($5::text[]))"
                " ORDER BY position LIMIT $6",
                after,
                upto,
                operator,
                list(flows),
                list(excluded),
                limit,
            )
        return [LoggedEvent.from_row(r) for r in rows]

    async def subscribe(
        self,
        operator: str | None,
        from_position: int,
        flows: Sequence[str] = (),
        excluded: Sequence[str] = (),
    ) -> AsyncGenerator[LoggedEvent, None]:
        """Yield every event after `from_position` addressed to `operator` (all when None), of
        `flows` (every flow when empty) but never of the `excluded` flows.

        The cursor is the only per-subscriber state, so a slow subscriber costs nothing to the
        others: when it falls out of the in-memory window it reads from PostgreSQL.
        """
        cursor = from_position
        wanted = set(flows)
        unwanted = set(excluded)
        label = operator or "*"
        sub = _Subscription(label, cursor)
        delivered = DELIVERED.labels(label)
        self.subscriptions.add(sub)
        SUBSCRIBERS.inc()
        try:
            while True:
                sub.cursor = cursor
                head = self.head
                oldest = self.window[0].position if self.window else head + 1
                if cursor >= head:
                    await self._wait_beyond(cursor)
                    continue
                if cursor + 1 < oldest:
                    upto = min(head, oldest - 1)
                    CATCHUP_READS.labels(label).inc()
                    batch = await self.read(operator, cursor, upto, flows, excluded, 500)
                    for event in batch:
                        yield event
                        delivered.inc()
                        cursor = sub.cursor = event.position
                    if len(batch) < 500:
                        cursor = upto
                    continue
                start = cursor + 1 - oldest
                for index in range(start, start + (head - cursor)):
                    if index >= len(self.window):
                        break
                    event = self.window[index]
                    if event.position != cursor + 1:
                        break  # the window moved under us; recompute from the cursor
                    cursor = event.position
                    if (
                        (operator is None or event.addressed_to(operator))
                        and (not wanted or event.flow in wanted)
                        and event.flow not in unwanted
                    ):
                        yield event
                        delivered.inc()
                        sub.cursor = cursor
        finally:
            self.subscriptions.discard(sub)
            SUBSCRIBERS.dec()
