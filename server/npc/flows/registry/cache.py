"""The registry's hot data: the numbering plan in memory, ported numbers in Redis.

PostgreSQL stays the truth; this is a cache that is never older than what this process's event
streams have shown:

- The numbering plan (a few thousand ranges at most) lives in each process's memory as sorted
  arrays searched by bisection. It is reloaded when the log says the plan changed
  (`registry.imported`), and when Redis says another process saw a newer plan.
- Each ported number is one Redis key, ``<prefix>:reg:n:<number>`` -> ``<operator>|<since ms>``.
  A meta hash records the log position the keys reflect (``pos``), the plan version (``plan``)
  and whether a full load completed (``ready``).
- Every process's event hub hands each batch of new events to `on_events` before its subscribers
  see them; a Lua script applies the batch's registry changes only if the keys are exactly at the
  batch's start, so processes racing to apply the same batch cannot reorder or double-apply it.
- A lookup reads the meta hash and the keys in one round trip and uses them only when ``pos``
  has reached this process's head; otherwise (or when Redis fails) it answers from PostgreSQL.
  A process whose changes were refused (Redis was away, or empty) repairs the keys in the
  background: it replays the missed registry events from the log, or reloads everything from a
  snapshot consistent at one position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import hiredis
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError, ResponseError

from npc.core.events import LoggedEvent
from npc.core.numbers import IMPORTED, NUMBERS_CHANGED
from npc.core.runtime import Core
from npc.core.supervision import passed
from npc.flows.registry.model import Routing, RoutingColumns
from npc.flows.registry.rules import SERVICE_SLOT, Service, service_of
from npc.flows.registry.store import (
    all_ported,
    log_position,
    plan_ranges,
    serving_before,
    unsequenced_origins,
)
from npc.store.operators import routing_codes

log = logging.getLogger(__name__)

LOOKUPS = Counter(
    "npc_registry_lookups_total",
    "Numbers looked up, by where the answer came from.",
    ["source"],
)
CACHE_READY = Gauge("npc_registry_cache_ready", "1 when this process answers lookups from Redis.")
CACHED_PORTED = Gauge(
    "npc_registry_cache_loaded_numbers", "Ported numbers written by the last full cache load."
)

# KEYS[1] = meta hash, KEYS[2..] = number keys.
# ARGV[1] = the position the batch starts after, ARGV[2] = its last position,
# ARGV[3] = the plan version it sets (0: none), then per number key i (i >= 2):
# ARGV[2i] = the change's position, ARGV[2i+1] = the new value ('' deletes: the number went home).
# Returns the position the keys reflect afterwards, or -1 when they are not at the batch's start
# (the caller repairs them).
_APPLY = """
if redis.call('HGET', KEYS[1], 'ready') ~= '1' then return -1 end
local pos = tonumber(redis.call('HGET', KEYS[1], 'pos') or '-1')
local after = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
if pos >= last then return pos end
if pos < after then return -1 end
for i = 2, #KEYS do
  if tonumber(ARGV[2 * i]) > pos then
    local value = ARGV[2 * i + 1]
    if value == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], value) end
  end
end
local plan = tonumber(ARGV[3])
if plan > pos then redis.call('HSET', KEYS[1], 'plan', plan) end
redis.call('HSET', KEYS[1], 'pos', last)
return last
"""


@dataclass
class NumberingPlan:
    """The ranges of the numbering plan as sorted arrays, and the operators' routing codes."""

    version: int = 0
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)
    services: list[Service | None] = field(default_factory=list)
    service_slots: list[int] = field(default_factory=list)  # of services, in SERVICE_SLOTS
    routing_codes: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, conn: asyncpg.Connection, version: int) -> NumberingPlan:
        """Read the plan as it is now; `version` is the log position it is known to reflect."""
        ranges = await plan_ranges(conn)
        codes = await routing_codes(conn)
        services = [service_of(r["service"]) for r in ranges]
        return cls(
            version=version,
            starts=[r["first"] for r in ranges],
            ends=[r["last"] for r in ranges],
            holders=[r["operator_id"] for r in ranges],
            services=services,
            service_slots=[SERVICE_SLOT[s] for s in services],
            routing_codes=codes,
        )

    def find(self, number: int) -> int:
        """Index of the range holding `number`, or -1."""
        index = bisect_right(self.starts, number) - 1
        if index >= 0 and number <= self.ends[index]:
            return index
        return -1


class RegistryCache:
    """Hot registry data for lookups; see the module docstring."""

    def __init__(
        self, core: Core, prefix: str, *, load_chunk: int = 20_000, retry_seconds: float = 1.0
    ) -> None:
        self.core = core
        self.redis: aioredis.Redis = core.redis
        self.meta_key = f"{prefix}:reg:meta"
        self.lock_key = f"{prefix}:reg:loading"
        self.number_prefix = f"{prefix}:reg:n:"
        self.plan = NumberingPlan()
        self.load_chunk = load_chunk
        self.retry_seconds = retry_seconds
        self._apply = self.redis.register_script(_APPLY)
        self._meta_command = _pack("HMGET", self.meta_key, "ready", "pos", "plan")
        self._plan_lock = asyncio.Lock()
        self._repair: asyncio.Task[None] | None = None
        self._redis_down_until = 0.0
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, background: bool = True) -> None:
        """Load the plan, follow the hub, and repair the Redis keys if they need it."""
        await self.reload_plan(self.core.hub.head)
        self.core.hub.add_hook(self.on_events)
        if background:
            self.request_repair()

    async def stop(self) -> None:
        """Cancel a repair under way."""
        self._closed = True
        if self._repair is not None:
            self._repair.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._repair

    async def reload_plan(self, version: int) -> None:
        """Read the numbering plan from PostgreSQL (it reflects at least `version`)."""
        async with self._plan_lock:
            if self.plan.version > version:
                return
            async with self.core.db.pool.acquire() as conn:
                self.plan = await NumberingPlan.load(conn, version)

    # ------------------------------------------------------------------ following the log

    def _value(self, number: str, operator: str, since_ms: int) -> str:
        index = self.plan.find(int(number))
        if index >= 0 and self.plan.holders[index] == operator:
            return ""  # home again: no key
        return f"{operator}|{since_ms}"

    async def on_events(self, events: Sequence[LoggedEvent]) -> None:
        """Apply a batch of new log events to the keys (the hub calls this before delivery)."""
        reload_all = False
        for event in events:
            if _bulk_ported(event):
                reload_all = reload_all or await self._older_than(event.position)
        if reload_all:
            # Ported numbers were bulk-loaded without per-number events: load everything again.
            await self._invalidate()
            self.request_repair()
            return
        if self._redis_suspended():
            self.request_repair()
            return
        try:
            result = await self._apply_batch(events, events[0].position - 1, events[-1].position)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            self.request_repair()
            return
        if int(result) < 0:
            self.request_repair()

    async def _apply_batch(self, events: Sequence[LoggedEvent], after: int, last: int) -> int:
        """Apply the registry changes of `events` (positions after..last) with the guarded script.

        Returns the position the keys reflect afterwards, or -1 when they were not at `after`.
        """
        keys: list[str] = [self.meta_key]
        changes: list[Any] = []
        plan_version = 0
        for event in events:
            if event.type == NUMBERS_CHANGED:
                payload = event.payload
                since_ms = _iso_ms(payload["changed_at"])
                for move in payload["moves"]:
                    for number in move["numbers"]:
                        keys.append(self.number_prefix + number)
                        changes.append(event.position)
                        changes.append(self._value(number, payload["to_operator"], since_ms))
            elif event.type == IMPORTED and not _bulk_ported(event):
                # Later changes in the batch are judged against the new plan (home or not).
                plan_version = event.position
                await self.reload_plan(event.position)
        return int(await self._apply(keys=keys, args=[after, last, plan_version, *changes]))

    async def _older_than(self, position: int) -> bool:
        """True when the keys do not reflect `position` yet (another process may have reloaded)."""
        try:
            pos = await self.redis.hget(self.meta_key, "pos")
        except (RedisError, OSError):
            return True
        return pos is None or int(pos) < position

    async def _invalidate(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(self.meta_key, mapping={"ready": "0", "pos": "-1"})

    # ------------------------------------------------------------------ lookups

    async def lookup(self, numbers: Sequence[str]) -> list[Routing] | None:
        """Routing of each number from the hot data, or None when only PostgreSQL can answer."""
        raw = await self._read(numbers)
        if raw is None:
            return None
        plan = self.plan
        starts, ends, holders, services = plan.starts, plan.ends, plan.holders, plan.services
        codes = plan.routing_codes
        out: list[Routing] = []
        append = out.append
        for number, value in zip(numbers, raw, strict=True):
            n = int(number)
            index = bisect_right(starts, n) - 1
            if index < 0 or n > ends[index]:
                append(Routing(number, False))
                continue
            holder = holders[index]
            if value is None:
                append(
                    Routing(
                        number,
                        True,
                        holder,
                        codes.get(holder, ""),
                        False,
                        0,
                        holder,
                        services[index],
                    )
                )
            else:
                operator, _, since = value.decode().partition("|")
                append(
                    Routing(
                        number,
                        True,
                        operator,
                        codes.get(operator, ""),
                        True,
                        int(since),
                        holder,
                        services[index],
                    )
                )
        LOOKUPS.labels("redis").inc(len(out))
        return out

    async def lookup_columns(self, numbers: Sequence[str]) -> RoutingColumns | None:
        """The same answers as parallel columns, or None when only PostgreSQL can answer."""
        raw = await self._read(numbers)
        if raw is None:
            return None
        plan = self.plan
        starts, ends, holders, services = plan.starts, plan.ends, plan.holders, plan.service_slots
        operators = sorted(plan.routing_codes)
        slot = {op: i + 1 for i, op in enumerate(operators)}
        slot_bytes = {op.encode(): i for op, i in slot.items()}
        serving: list[int] = []
        holder_col: list[int] = []
        since_col: list[int] = []
        service_col: list[int] = []
        holder_slots = [slot[h] for h in holders]
        for n, value in zip(map(int, numbers), raw, strict=True):
            index = bisect_right(starts, n) - 1
            if index < 0 or n > ends[index]:
                serving.append(0)
                holder_col.append(0)
                since_col.append(0)
                service_col.append(0)
                continue
            holder = holder_slots[index]
            holder_col.append(holder)
            service_col.append(services[index])
            if value is None:
                serving.append(holder)
                since_col.append(0)
            else:
                operator, _, since = value.partition(b"|")
                serving.append(slot_bytes[operator])
                since_col.append(int(since))
        LOOKUPS.labels("redis").inc(len(numbers))
        codes = [plan.routing_codes[op] for op in operators]
        return RoutingColumns(operators, codes, serving, holder_col, since_col, service_col)

    async def _read(self, numbers: Sequence[str]) -> list[bytes | None] | None:
        if self._redis_suspended():
            return None
        prefix = self.number_prefix
        # The meta hash and the keys in one round trip. The command is packed by hiredis (C):
        # redis-py's own packing of a 10,000-key MGET costs more than everything else here.
        packed = self._meta_command + _pack("MGET", *[prefix + n for n in numbers])
        pool = self.redis.connection_pool
        try:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
            try:
                await conn.send_packed_command(packed)
                meta = await conn.read_response()
                values = await conn.read_response()
            except BaseException:
                # Replies may be left unread (a cancelled call): never reuse the connection.
                await conn.disconnect()
                raise
            finally:
                await pool.release(conn)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return None
        if isinstance(meta, ResponseError) or isinstance(values, ResponseError):
            self._redis_failed(meta if isinstance(meta, ResponseError) else values)
            return None
        ready, pos, plan = meta
        if ready != b"1" or pos is None or int(pos) < self.core.hub.head:
            # Not loaded, or behind what this process's streams have shown: PostgreSQL answers.
            CACHE_READY.set(0)
            self.request_repair()
            return None
        if plan is not None and int(plan) > self.plan.version:
            await self.reload_plan(int(plan))
        CACHE_READY.set(1)
        result: list[bytes | None] = values
        return result

    def _redis_suspended(self) -> bool:
        return time.monotonic() < self._redis_down_until

    def _redis_failed(self, exc: BaseException, *, quiet: bool = False) -> None:
        # Skip Redis for a moment instead of paying a failed round trip on every lookup.
        if not quiet:  # the repair job's failures are logged by its supervisor
            log.warning("registry cache: Redis unavailable (%s); answering from PostgreSQL", exc)
        self._redis_down_until = time.monotonic() + self.retry_seconds
        CACHE_READY.set(0)

    # ------------------------------------------------------------------ repair

    def request_repair(self) -> None:
        """Start bringing the keys up to this process's head, unless that is under way."""
        if self._closed or (self._repair is not None and not self._repair.done()):
            return
        # A supervised job: a failed attempt is logged once per streak and tried again with
        # backoff until the keys are repaired.
        self._repair = self.core.supervisor.start(
            "registry-cache-repair", self._repair_loop, job=True
        )

    async def _repair_loop(self) -> None:
        while not self._closed:
            try:
                if await self.repair_once():
                    passed()
                    return
            except (RedisError, OSError) as exc:
                self._redis_failed(exc, quiet=True)
                raise
            await asyncio.sleep(self.retry_seconds)  # another process is loading: look again

    async def repair_once(self) -> bool:
        """One repair attempt; True when the keys reflect at least this process's head."""
        meta = await self.redis.hmget(self.meta_key, ["ready", "pos"])
        ready, pos = meta[0], meta[1]
        if ready == b"1" and pos is not None and int(pos) >= 0:
            return await self._replay(int(pos))
        return await self.load()

    async def _replay(self, pos: int) -> bool:
        """Apply the registry events after `pos` from the log, up to this process's head."""
        head = self.core.hub.head
        while pos < head:
            events = await self.core.hub.read(None, pos, head, ["registry"], (), 500)
            last = events[-1].position if len(events) == 500 else head
            if any(_bulk_ported(e) for e in events):
                await self._invalidate()
                return await self.load()
            result = await self._apply_batch(events, pos, last)
            if result < 0:
                return False  # reloaded meanwhile by another process; look again
            pos = result
        CACHE_READY.set(1)
        return True

    async def load(self) -> bool:
        """Load every ported number from a snapshot consistent at one log position.

        One process loads at a time (a Redis lock); the others answer from PostgreSQL meanwhile
        and find the keys ready afterwards.
        """
        token = uuid.uuid4().hex
        if not await self.redis.set(self.lock_key, token, nx=True, px=60_000):
            return False
        try:
            await self.redis.hset(self.meta_key, mapping={"ready": "0", "pos": "-1"})
            await self._delete_numbers()
            loaded = 0
            async with (
                self.core.db.pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                position = await log_position(conn)
                self.plan = await NumberingPlan.load(conn, position)
                before = await unsequenced_origins(conn)
                batch: dict[str, str] = {}
                async for row in all_ported(conn, self.load_chunk):
                    number = row["number"]
                    if number in before:
                        continue
                    batch[self.number_prefix + number] = (
                        f"{row['serving_operator']}|{_ms(row['ported_at'])}"
                    )
                    if len(batch) >= self.load_chunk:
                        loaded += await self._write(batch)
                        await self.redis.pexpire(self.lock_key, 60_000)
                if before:
                    # Committed but not yet positioned changes come after `position`: write the
                    # numbers as they were before them (the replay applies the changes).
                    for row in await serving_before(conn, before):
                        if row["serving"] != row["holder"]:
                            batch[self.number_prefix + row["number"]] = (
                                f"{row['serving']}|{_ms(row['since'])}"
                            )
                loaded += await self._write(batch)
            await self.redis.hset(
                self.meta_key,
                mapping={"ready": "1", "pos": str(position), "plan": str(position)},
            )
            CACHED_PORTED.set(loaded)
            log.info("registry cache loaded: %d ported numbers at position %d", loaded, position)
        finally:
            with contextlib.suppress(RedisError, OSError):
                if await self.redis.get(self.lock_key) == token.encode():
                    await self.redis.delete(self.lock_key)
        return await self._replay(position)

    async def _write(self, batch: dict[str, str]) -> int:
        if not batch:
            return 0
        count = len(batch)
        await self.redis.mset(batch)
        batch.clear()
        return count

    async def _delete_numbers(self) -> None:
        async for keys in _scan_batches(self.redis, self.number_prefix + "*"):
            await self.redis.unlink(*keys)


async def _scan_batches(redis: aioredis.Redis, pattern: str) -> Any:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


def _bulk_ported(event: LoggedEvent) -> bool:
    """A bulk import of ported numbers: it has no per-number changes, so the keys are reloaded."""
    return event.type == IMPORTED and event.payload.get("kind") == "ported"


def _pack(*args: str) -> bytes:
    """One Redis command in the wire protocol, packed in C."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # its stub says 1-tuple
    return packed


def _ms(instant: Any) -> int:
    return int(instant.timestamp() * 1000) if instant is not None else 0


def _iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)
