"""Ordered fan-out of the event log.

Writers insert events without a position. The `Sequencer` gives committed events the next gap-free
positions (and their chained hashes; `npc.core.sequencer`); any number of server
processes may run one, they serialise on the `event_head` row. Each process has one `EventHub` that
follows the head, keeps a window of recent events in memory, and serves subscribers from it; a
subscriber that is behind the window catches up from PostgreSQL. Redis pub/sub carries the wake-ups
between processes; polling covers the time Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from npc.core.events import LoggedEvent
from npc.core.sequencer import HEAD_POSITION
from npc.core.sequencer import Sequencer as Sequencer  # where it was before it moved
from npc.core.supervision import passed
from npc.store.database import Database

log = logging.getLogger(__name__)

SUBSCRIBERS = Gauge("npc_event_subscribers", "Open event stream subscriptions in this process.")
DELIVERED = Counter(
    "npc_events_delivered_total", "Events sent on operators' streams, by operator.", ["operator"]
)
CATCHUP_READS = Counter(
    "npc_event_catchup_reads_total",
    "Reads from PostgreSQL by a stream that fell behind the in-memory window, by operator.",
    ["operator"],
)


# A push subscription's receiver: takes a batch of events, in order, and says whether it has room
# for more (False: it is full, and the subscription waits for its `room` before reading on).
Sink = Callable[[list[LoggedEvent]], bool]


class _Subscription:
    """One open stream: whom it serves, what it wants and the last position it went past."""

    __slots__ = ("label", "cursor", "operator", "wanted", "unwanted", "sink", "paused")

    def __init__(
        self,
        label: str,
        cursor: int,
        operator: str | None = None,
        flows: Sequence[str] = (),
        excluded: Sequence[str] = (),
        sink: Sink | None = None,
    ) -> None:
        self.label = label
        self.cursor = cursor
        self.operator = operator
        self.wanted = frozenset(flows)
        self.unwanted = frozenset(excluded)
        self.sink = sink
        self.paused = asyncio.Event()  # a push subscription left the head (its sink was full)

    def wants(self, event: LoggedEvent) -> bool:
        """Whether the stream receives `event`."""
        return (
            (self.operator is None or event.addressed_to(self.operator))
            and (not self.wanted or event.flow in self.wanted)
            and event.flow not in self.unwanted
        )


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
# What follows the hub's head ($1), for `EventHub.refresh`.
_FOLLOWING = f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT 2000"


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
        # Push subscriptions at the head: `_push` hands them new events as they arrive.
        self._live: set[_Subscription] = set()
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
            self._push(events)
            async with self._changed:
                self._changed.notify_all()

    async def refresh(self) -> None:
        """Read newly sequenced events into the window and wake subscribers."""
        async with self._refresh_lock:
            moved = False
            while True:
                async with self.db.pool.acquire() as conn:
                    rows = await conn.fetch(_FOLLOWING, self.head)
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
                    self._push(fresh)
                    moved = True
                if len(fresh) == len(rows) == 2000:
                    continue
                break
            if moved:
                HEAD_POSITION.set(self.head)
                async with self._changed:
                    self._changed.notify_all()

    def _push(self, events: Sequence[LoggedEvent]) -> None:
        """Hand new events to the push subscriptions at the head, in the task that brought them
        (the sequencer's, usually): no subscriber task to wake before a stream has them."""
        for sub in list(self._live):
            if events[0].position != sub.cursor + 1:
                self._leave_head(sub)  # not contiguous (never expected): it reads on its own
                continue
            fresh = [event for event in events if sub.wants(event)]
            sub.cursor = events[-1].position
            if not fresh:
                continue
            DELIVERED.labels(sub.label).inc(len(fresh))
            try:
                more = sub.sink(fresh) if sub.sink is not None else False
            except Exception:
                log.exception("an event stream's sink failed")
                more = False
            if not more:
                self._leave_head(sub)

    def _leave_head(self, sub: _Subscription) -> None:
        self._live.discard(sub)
        sub.paused.set()

    async def push(
        self,
        operator: str | None,
        from_position: int,
        flows: Sequence[str],
        excluded: Sequence[str],
        sink: Sink,
        room: asyncio.Event,
    ) -> None:
        """Give `sink`, in batches, every event after `from_position` that `subscribe` would
        yield, until cancelled.

        At the head the hub calls `sink` itself as events arrive. Behind it, and whenever `sink`
        answered it was full, this task reads on from the window (or PostgreSQL) once `room` is
        set: a full stream holds only its own cursor back, never the hub or the other streams.
        """
        sub = _Subscription(operator or "*", from_position, operator, flows, excluded, sink)
        self.subscriptions.add(sub)
        SUBSCRIBERS.inc()
        try:
            while True:
                await room.wait()
                if sub.cursor >= self.head:
                    sub.paused.clear()
                    self._live.add(sub)
                    await sub.paused.wait()
                    continue
                batch = await self._pull(sub)
                if batch:
                    DELIVERED.labels(sub.label).inc(len(batch))
                    sink(batch)  # a full sink clears `room`: the next turn waits for it
        finally:
            self._live.discard(sub)
            self.subscriptions.discard(sub)
            SUBSCRIBERS.dec()

    async def _pull(self, sub: _Subscription, limit: int = 500) -> list[LoggedEvent]:
        """Up to `limit` events `sub` wants after its cursor, from the window or, behind it,
        from PostgreSQL; the cursor moves past what was read."""
        head = self.head
        oldest = self.window[0].position if self.window else head + 1
        if sub.cursor + 1 < oldest:
            upto = min(head, oldest - 1)
            CATCHUP_READS.labels(sub.label).inc()
            flows, excluded = sorted(sub.wanted), sorted(sub.unwanted)
            batch = await self.read(sub.operator, sub.cursor, upto, flows, excluded, limit)
            sub.cursor = batch[-1].position if len(batch) == limit else upto
            return batch
        batch = []
        # The window holds contiguous positions: the cursor's successor is at this index.
        for event in itertools.islice(self.window, sub.cursor + 1 - oldest, None):
            sub.cursor = event.position
            if sub.wants(event):
                batch.append(event)
                if len(batch) == limit:
                    break
        return batch

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
