"""The sequencer: gap-free positions and hash-chain links for committed events.

Writers insert events without a position; any number of server processes may run a `Sequencer`,
they serialise on the `event_head` row (see `npc.core.fanout` for the hub that follows it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import asyncpg
from prometheus_client import Counter, Gauge

from npc.core.events import LoggedEvent, chain_hash
from npc.core.supervision import passed
from npc.store.database import Database

HEAD_POSITION = Gauge("npc_event_log_head_position", "Highest position assigned in the event log.")
SEQUENCED = Counter("npc_events_sequenced_total", "Events given a position by this process.")

_ANY_WAITING = "SELECT EXISTS (SELECT 1 FROM events WHERE position IS NULL AND id > $1)"

# What a read of waiting events tells the floor (`Floor`): its snapshot's xmin, a transaction id
# above every one assigned before the read began (its own: a snapshot's xmax is only the last
# completed one plus one, and a transaction assigned an id earlier may still run above it), and
# the last event id drawn by then. An uncorrelated subquery: evaluated once, not per row.
_SEEN = """
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
           pg_current_xact_id()::text::bigint AS xid,
           coalesce(pg_sequence_last_value('events_id_seq'), 0) AS last_id
"""

# The head and the first waiting events above the floor ($2), in one snapshot; the head alone
# (event columns NULL) when nothing waits.
_WAITING = f"""
SELECT h.position AS head_position, h.hash AS head_hash, seen.*, e.*
FROM event_head h
CROSS JOIN ({_SEEN}) AS seen
LEFT JOIN LATERAL (
    SELECT id, occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload
    FROM events WHERE position IS NULL AND id > $2 ORDER BY id LIMIT $1
) e ON true
ORDER BY e.id
"""

# Moves the head from $4 to ($5, $6) and positions the events ($1, $2, $3), or does nothing when
# the head is no longer at $4: the EXISTS is a one-time filter over the head's UPDATE, which waits
# for another writer's lock and then sees its committed position. In the same round trip, the
# next events waiting above the floor $8 (up to $7; the statement's snapshot still shows the batch
# unsequenced, so it is left out): they count only when the head moved, and then no other
# sequencer can have positioned any of them, for it would have had to move the head from $4
# first. Always one row at least: `moved`, what the floor learns, and the waiting events' columns
# (NULL when none waits).
_POSITION = f"""
WITH head AS (
    UPDATE event_head SET position = $5, hash = $6 WHERE position = $4 RETURNING 1
), positioned AS (
    UPDATE events SET position = u.position, hash = u.hash
    FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u(id, position, hash)
    WHERE events.id = u.id AND EXISTS (SELECT FROM head)
    RETURNING 1
)
SELECT (SELECT EXISTS (SELECT FROM head)) AS moved, seen.*, e.*
FROM ({_SEEN}) AS seen
LEFT JOIN LATERAL (
    SELECT id, occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload
    FROM events
    WHERE position IS NULL AND id > $8 AND id NOT IN (SELECT unnest($1::bigint[]))
    ORDER BY id LIMIT $7
) e ON true
ORDER BY e.id
"""


@dataclass
class Floor:
    """The id at or below which no event waits for a position, nor ever will: the sequencer
    reads waiting events above it, and so never walks the index entries that events positioned
    before it leave behind until VACUUM.

    Events commit out of id order, so an id is settled only once every transaction that could
    still commit an event at or below it has ended. Each read tells the floor its snapshot's
    xmin, its own transaction id and the last id drawn (`observe`). An id drawn before a read
    began was drawn by a transaction that already had its transaction id (the column's default
    takes it first), so below that read's own; once a later snapshot's xmin reaches it, every
    such transaction has committed or aborted, and that snapshot shows all their events. If the read
    returned every event waiting above the floor, then once they are positioned everything up
    to the id is settled. The floor only rises, and lags the log by a few reads. Reads may
    overlap (passes of one sequencer on several connections): `begin` numbers them.
    """

    PENDING_KEPT: ClassVar[int] = 64

    settled: int = 0
    _completed: int = 0
    # (the read's number, the last id drawn when it ran): paired with the transaction id of a
    # read that began after it completed, which exceeds the transaction id of whoever drew it.
    _drawn: list[tuple[int, int]] = field(default_factory=list)
    # (id, xid): the id is settled once a snapshot's xmin reaches xid.
    _pending: list[tuple[int, int]] = field(default_factory=list)

    def begin(self) -> int:
        """Call as a read is sent; hand the result to `observe`."""
        return self._completed

    def observe(
        self, begun: int, seen: asyncpg.Record | dict[str, int], ids: list[int], limit: int
    ) -> int | None:
        """Learn from a read of waiting events (its snapshot's `xmin`, its own `xid` and the
        `last_id` drawn in `seen`; the ids it returned, of at most `limit`); return the floor to
        adopt once those events are positioned (`rise`), or None."""
        xmin, xid = seen["xmin"], seen["xid"]
        before = [drawn for number, drawn in self._drawn if number < begun]
        if before:
            self._pending.append((max(before), xid))
            # A transaction left open holds every xmin: keep the newest, the ones with the
            # highest ids, and let the floor lag rather than this list grow with each read.
            del self._pending[: -self.PENDING_KEPT]
            self._drawn = [(n, d) for n, d in self._drawn if n >= begun]
        self._drawn.append((self._completed, seen["last_id"]))
        self._completed += 1
        ready = [drawn for drawn, above in self._pending if above <= xmin]
        if not ready:
            return None
        self._pending = [(drawn, above) for drawn, above in self._pending if above > xmin]
        rise = max(ready)
        if len(ids) >= limit:
            # More may wait above the last one read: settled only up to it.
            rise = min(rise, ids[-1])
        return rise if rise > self.settled else None

    def rise(self, to: int | None) -> None:
        """The events of the read that proposed `to` are positioned (`observe`)."""
        if to is not None and to > self.settled:
            self.settled = to


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

    @property
    def ids(self) -> list[int]:
        """The waiting events' ids, in order."""
        return [r["id"] for r in self.rows]

    def chained(self) -> _Chained:
        """The events' positions after the head, each hash chained to the previous one's."""
        position, previous = self.position, self.hash
        positions, hashes = [], []
        for row in self.rows:
            position += 1
            previous = chain_hash(previous, position, row)
            positions.append(position)
            hashes.append(previous)
        return _Chained(self.position, self.rows, self.ids, positions, hashes)


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
        self.floor = Floor()
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
        floor = self.floor
        if probe:
            async with self.db.pool.acquire() as conn:
                waiting = await conn.fetchval(_ANY_WAITING, floor.settled)
            if not waiting:
                return 0
        sequenced = 0
        for _ in range(_SEQUENCE_ATTEMPTS):
            async with self.db.pool.acquire() as conn:
                begun = floor.begin()
                rows = await conn.fetch(_WAITING, self.batch_size, floor.settled)
                head = _Batch.first(rows)
                rise = floor.observe(begun, rows[0], head.ids, self.batch_size)
                while head.rows:
                    batch = head.chained()
                    begun = floor.begin()
                    rows = await conn.fetch(
                        _POSITION,
                        batch.ids,
                        batch.positions,
                        batch.hashes,
                        batch.read_at,
                        batch.head,
                        batch.head_hash,
                        self.batch_size,
                        floor.settled,
                    )
                    if not rows[0]["moved"]:
                        break  # another process moved the head: read it again
                    floor.rise(rise)  # the events of the read that proposed it are positioned
                    await self._positioned(batch)
                    sequenced += len(batch.rows)
                    passed()
                    head = _Batch(batch.head, batch.head_hash, [r for r in rows if r["id"]])
                    rise = floor.observe(begun, rows[0], head.ids, self.batch_size)
                else:
                    floor.rise(rise)  # the last read found nothing waiting above the floor
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
                    LoggedEvent.from_row(row, position=position, hash=hashed)
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
