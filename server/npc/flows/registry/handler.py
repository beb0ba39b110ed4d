"""Lookups and snapshots of the central registry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.instants import to_timestamp
from npc.core.runtime import Core
from npc.flows.registry.cache import LOOKUPS, RegistryCache, Routing
from npc.flows.registry.store import serving_before, unsequenced_origins
from npc.store.operators import routing_codes
from npc.v1 import common_pb2, registry_pb2

MAX_BATCH = 10_000
# Any national number without a leading zero: a number of another shape is simply not in the plan,
# and one odd number must not fail a whole batch. Without leading zeros, numbers of different
# lengths never compare equal, so ranges can be matched numerically.
_NUMBER = re.compile(r"(?a)[1-9]\d{0,14}")
_BATCH = re.compile(r"(?a)(?:[1-9]\d{0,14},)*[1-9]\d{0,14}")
_SERVICES = {"mobile": common_pb2.SERVICE_TYPE_MOBILE, "fixed": common_pb2.SERVICE_TYPE_FIXED}

_LOOKUP = """
    SELECT n.number, r.operator_id AS holder, r.service, p.serving_operator, p.ported_at,
           o.routing_code, h.routing_code AS holder_code
    FROM unnest($1::text[]) WITH ORDINALITY AS n(number, i)
    LEFT JOIN number_ranges r ON r.numbers @> n.number::bigint
    LEFT JOIN ported_numbers p ON p.number = n.number
    LEFT JOIN operators o ON o.id = COALESCE(p.serving_operator, r.operator_id)
    LEFT JOIN operators h ON h.id = r.operator_id
    ORDER BY n.i"""


def _columns_from_rows(
    rows: list[Any],
) -> tuple[list[str], list[str], list[int], list[int], list[int], list[int]]:
    slots: dict[str, int] = {}
    codes: list[str] = []
    serving: list[int] = []
    holder: list[int] = []
    since: list[int] = []
    service: list[int] = []

    def slot(operator: str, code: str) -> int:
        if operator not in slots:
            slots[operator] = len(slots) + 1
            codes.append(code)
        return slots[operator]

    for row in rows:
        if row["holder"] is None:
            serving.append(0)
            holder.append(0)
            since.append(0)
            service.append(0)
            continue
        serving_operator = row["serving_operator"] or row["holder"]
        serving.append(slot(serving_operator, row["routing_code"] or ""))
        holder.append(slot(row["holder"], row["holder_code"] or ""))
        ported_at = row["ported_at"]
        since.append(int(ported_at.timestamp() * 1000) if ported_at is not None else 0)
        service.append(_SERVICES.get(row["service"], common_pb2.SERVICE_TYPE_UNSPECIFIED))
    return list(slots), codes, serving, holder, since, service


def routing_message(row: Any) -> registry_pb2.NumberRouting:
    """A lookup row as its API message."""
    if row["holder"] is None:
        return registry_pb2.NumberRouting(number=row["number"], in_plan=False)
    serving = row["serving_operator"] or row["holder"]
    return registry_pb2.NumberRouting(
        number=row["number"],
        in_plan=True,
        serving_operator=serving,
        routing_code=row["routing_code"] or "",
        ported=row["serving_operator"] is not None,
        ported_since=to_timestamp(row["ported_at"]),
        range_holder=row["holder"],
        service=_SERVICES.get(row["service"], common_pb2.SERVICE_TYPE_UNSPECIFIED),
    )


def cached_message(routing: Routing) -> registry_pb2.NumberRouting:
    """A cache answer as its API message."""
    if not routing.in_plan:
        return registry_pb2.NumberRouting(number=routing.number, in_plan=False)
    message = registry_pb2.NumberRouting(
        number=routing.number,
        in_plan=True,
        serving_operator=routing.serving_operator,
        routing_code=routing.routing_code,
        ported=routing.ported,
        range_holder=routing.range_holder,
        service=routing.service,  # type: ignore[arg-type]
    )
    if routing.ported_since_ms:
        message.ported_since.FromMilliseconds(routing.ported_since_ms)
    return message


class RegistryHandler:
    """Answers routing lookups and streams consistent snapshots."""

    def __init__(self, core: Core, cache: RegistryCache | None = None) -> None:
        self.core = core
        self.cache = cache

    @staticmethod
    def check_numbers(numbers: list[str], field: str) -> None:
        if not numbers:
            raise InvalidArgument(FieldViolation(field, "at least one number"))
        if len(numbers) > MAX_BATCH:
            raise InvalidArgument(FieldViolation(field, f"at most {MAX_BATCH} numbers per call"))
        # The cheap test first (one C-level regex pass): this runs for every batch.
        joined = ",".join(numbers)
        if joined.count(",") == len(numbers) - 1 and _BATCH.fullmatch(joined):
            return
        bad = [
            FieldViolation(f"{field}[{i}]", "digits only, no leading zero, at most 15")
            for i, n in enumerate(numbers)
            if not _NUMBER.fullmatch(n)
        ]
        if bad:
            raise InvalidArgument(bad[:20])

    async def lookup(
        self, numbers: list[str], *, conn: asyncpg.Connection | None = None
    ) -> list[registry_pb2.NumberRouting]:
        """Serving operator and routing code of each number, in order.

        From the hot data when it is current; from PostgreSQL otherwise, and always on `conn`
        when one is given (a command's own transaction must see its own state).
        """
        if conn is not None:
            rows = await conn.fetch(_LOOKUP, numbers)
            return [routing_message(r) for r in rows]
        if self.cache is not None:
            cached = await self.cache.lookup(numbers)
            if cached is not None:
                return [cached_message(r) for r in cached]
        return [routing_message(r) for r in await self._from_database(numbers)]

    async def _from_database(self, numbers: list[str]) -> list[Any]:
        LOOKUPS.labels("postgres").inc(len(numbers))
        async with self.core.db.pool.acquire() as own:
            rows: list[Any] = await own.fetch(_LOOKUP, numbers)
        return rows

    async def columns(self, numbers: list[str]) -> registry_pb2.RoutingColumns:
        """The answers for `numbers` as parallel columns."""
        answer = await self.cache.lookup_columns(numbers) if self.cache is not None else None
        if answer is None:
            answer = _columns_from_rows(await self._from_database(numbers))
        operators, codes, serving, holder, since, service = answer
        columns = registry_pb2.RoutingColumns(operators=operators, routing_codes=codes)
        columns.serving.extend(serving)
        columns.range_holder.extend(holder)
        columns.ported_since_ms.extend(since)
        columns.service.extend(service)  # type: ignore[arg-type]
        return columns

    async def lookup_one(
        self, request: registry_pb2.LookupNumberRequest
    ) -> registry_pb2.NumberRouting:
        """LookupNumber."""
        self.check_numbers([request.number], "number")
        return (await self.lookup([request.number]))[0]

    async def lookup_many(
        self, request: registry_pb2.LookupNumbersRequest
    ) -> registry_pb2.LookupNumbersResponse:
        """LookupNumbers."""
        numbers = list(request.numbers)
        self.check_numbers(numbers, "numbers")
        if request.columnar:
            return registry_pb2.LookupNumbersResponse(columns=await self.columns(numbers))
        return registry_pb2.LookupNumbersResponse(results=await self.lookup(numbers))

    async def snapshot(
        self, request: registry_pb2.StreamSnapshotRequest
    ) -> AsyncIterator[registry_pb2.SnapshotChunk]:
        """The registry as of one log position.

        Read in one REPEATABLE READ transaction. Changes already committed but not yet given a
        position belong after that position: their numbers are reported as they were before them
        (each change event says where every number came from), so a copy that applies the stream
        from the position sees each change exactly once.
        """
        if not 0 <= request.chunk_size <= 50_000:
            raise InvalidArgument(
                FieldViolation("chunk_size", "between 1 and 50000 (0 means 5000)")
            )
        size = request.chunk_size or 5000
        async with (
            self.core.db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            position = int(await conn.fetchval("SELECT position FROM event_head"))
            before = await unsequenced_origins(conn)
            codes = await routing_codes(conn)
            ranges = await conn.fetch(
                "SELECT lower(numbers) AS first, upper(numbers) - 1 AS last, operator_id,"
                " service FROM number_ranges ORDER BY lower(numbers)"
            )
            chunk = registry_pb2.SnapshotChunk(
                position=position,
                ranges=[
                    registry_pb2.PlanRange(
                        first=str(r["first"]).zfill(8),
                        last=str(r["last"]).zfill(8),
                        operator=r["operator_id"],
                        routing_code=codes[r["operator_id"]],
                        service=_SERVICES[r["service"]],
                    )
                    for r in ranges
                ],
            )
            async for row in conn.cursor(
                "SELECT number, serving_operator, ported_at FROM ported_numbers"
                " WHERE NOT (number = ANY($1::text[])) ORDER BY number",
                list(before),
                prefetch=size,
            ):
                chunk.ported.append(
                    registry_pb2.PortedNumber(
                        number=row["number"],
                        serving_operator=row["serving_operator"],
                        routing_code=codes[row["serving_operator"]],
                        ported_since=to_timestamp(row["ported_at"]),
                    )
                )
                if len(chunk.ported) >= size:
                    yield chunk
                    chunk = registry_pb2.SnapshotChunk(position=position)
            if before:
                for row in await serving_before(conn, before):
                    if row["serving"] != row["holder"]:
                        chunk.ported.append(
                            registry_pb2.PortedNumber(
                                number=row["number"],
                                serving_operator=row["serving"],
                                routing_code=codes[row["serving"]],
                                ported_since=to_timestamp(row["since"]),
                            )
                        )
        chunk.last = True
        yield chunk
