"""Lookups and snapshots of the central registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg
from asyncpg import Record

from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.runtime import Core
from npc.flows.registry.cache import LOOKUPS, RegistryCache
from npc.flows.registry.model import (
    Lookup,
    LookupNumber,
    LookupNumbers,
    PlanRange,
    Routing,
    RoutingColumns,
    SnapshotChunk,
    StreamSnapshot,
)
from npc.flows.registry.rules import (
    MAX_SNAPSHOT_CHUNK,
    SERVICE_SLOT,
    SNAPSHOT_CHUNK,
    check_numbers,
    service_of,
)
from npc.flows.registry.store import (
    log_position,
    plan_ranges,
    ported_in_order,
    routing_rows,
    serving_before,
    unsequenced_origins,
)
from npc.store.operators import routing_codes


def _ms(row: Record) -> int:
    ported_at = row["ported_at"]
    return int(ported_at.timestamp() * 1000) if ported_at is not None else 0


def routing_of(row: Record, codes: dict[str, str]) -> Routing:
    """A row of `store.routing_rows` as the routing of its number."""
    if row["holder"] is None:
        return Routing(row["number"], False)
    serving = row["serving_operator"] or row["holder"]
    return Routing(
        number=row["number"],
        in_plan=True,
        serving_operator=serving,
        routing_code=codes.get(serving) or "",
        ported=row["serving_operator"] is not None,
        ported_since_ms=_ms(row),
        range_holder=row["holder"],
        service=service_of(row["service"]),
        ported_at=row["ported_at"],
    )


def columns_of(rows: Sequence[Record], codes: dict[str, str]) -> RoutingColumns:
    """Rows of `store.routing_rows` as parallel columns, operators numbered as they appear."""
    slots: dict[str, int] = {}
    operator_codes: list[str] = []
    columns = RoutingColumns([], operator_codes, [], [], [], [])

    def slot(operator: str) -> int:
        if operator not in slots:
            slots[operator] = len(slots) + 1
            operator_codes.append(codes.get(operator) or "")
        return slots[operator]

    for row in rows:
        if row["holder"] is None:
            columns.serving.append(0)
            columns.range_holder.append(0)
            columns.ported_since_ms.append(0)
            columns.service.append(0)
            continue
        columns.serving.append(slot(row["serving_operator"] or row["holder"]))
        columns.range_holder.append(slot(row["holder"]))
        columns.ported_since_ms.append(_ms(row))
        columns.service.append(SERVICE_SLOT[service_of(row["service"])])
    columns.operators.extend(slots)
    return columns


class RegistryHandler:
    """Answers routing lookups and streams consistent snapshots."""

    def __init__(self, core: Core, cache: RegistryCache | None = None) -> None:
        self.core = core
        self.cache = cache

    async def lookup(
        self, numbers: Sequence[str], *, conn: asyncpg.Connection | None = None
    ) -> list[Routing]:
        """Serving operator and routing code of each number, in order.

        From the hot data when it is current; from PostgreSQL otherwise, and always on `conn`
        when one is given (a command's own transaction must see its own state).
        """
        if conn is not None:
            rows = await routing_rows(conn, numbers)
            codes = await routing_codes(conn)
            return [routing_of(r, codes) for r in rows]
        if self.cache is not None:
            cached = await self.cache.lookup(numbers)
            if cached is not None:
                return cached
        rows, codes = await self._from_database(numbers)
        return [routing_of(r, codes) for r in rows]

    async def _from_database(self, numbers: Sequence[str]) -> tuple[list[Record], dict[str, str]]:
        LOOKUPS.labels("postgres").inc(len(numbers))
        async with self.core.db.pool.acquire() as own:
            return await routing_rows(own, numbers), await routing_codes(own)

    async def columns(self, numbers: Sequence[str]) -> RoutingColumns:
        """The answers for `numbers` as parallel columns."""
        answer = await self.cache.lookup_columns(numbers) if self.cache is not None else None
        if answer is None:
            answer = columns_of(*await self._from_database(numbers))
        return answer

    async def lookup_one(self, command: LookupNumber) -> Routing:
        """LookupNumber."""
        check_numbers([command.number], "number")
        return (await self.lookup([command.number]))[0]

    async def lookup_many(self, command: LookupNumbers) -> Lookup:
        """LookupNumbers."""
        numbers = command.numbers
        check_numbers(numbers, "numbers")
        if command.columnar:
            return Lookup(columns=await self.columns(numbers))
        return Lookup(rows=await self.lookup(numbers))

    async def snapshot(self, command: StreamSnapshot) -> AsyncIterator[SnapshotChunk]:
        """The registry as of one log position.

        Read in one REPEATABLE READ transaction. Changes already committed but not yet given a
        position belong after that position: their numbers are reported as they were before them
        (each change event says where every number came from), so a copy that applies the stream
        from the position sees each change exactly once.
        """
        if not 0 <= command.chunk_size <= MAX_SNAPSHOT_CHUNK:
            raise InvalidArgument(
                FieldViolation(
                    "chunk_size", f"between 1 and {MAX_SNAPSHOT_CHUNK} (0 means {SNAPSHOT_CHUNK})"
                )
            )
        size = command.chunk_size or SNAPSHOT_CHUNK
        async with (
            self.core.db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            position = await log_position(conn)
            before = await unsequenced_origins(conn)
            codes = await routing_codes(conn)
            plan = [
                PlanRange(
                    r["first"],
                    r["last"],
                    r["operator_id"],
                    codes[r["operator_id"]],
                    service_of(r["service"]),
                )
                for r in await plan_ranges(conn)
            ]
            chunk = SnapshotChunk(position, plan, [])
            async for row in ported_in_order(conn, list(before), size):
                serving = row["serving_operator"]
                chunk.ported.append((row["number"], serving, codes[serving], row["ported_at"]))
                if len(chunk.ported) >= size:
                    yield chunk
                    chunk = SnapshotChunk(position, [], [])
            if before:
                # Served as before the changes not yet positioned (they come after `position`).
                chunk.ported.extend(
                    (r["number"], r["serving"], codes[r["serving"]], r["since"])
                    for r in await serving_before(conn, before)
                    if r["serving"] != r["holder"]
                )
        chunk.last = True
        yield chunk
