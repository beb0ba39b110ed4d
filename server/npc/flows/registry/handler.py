"""Lookups and snapshots of the central registry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from npc.api.messages import to_timestamp
from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.runtime import Core
from npc.flows.registry.store import NUMBERS_CHANGED
from npc.v1 import common_pb2, registry_pb2

MAX_BATCH = 10_000
# Any national number without a leading zero: a number of another shape is simply not in the plan,
# and one odd number must not fail a whole batch. Without leading zeros, numbers of different
# lengths never compare equal, so ranges can be matched numerically.
_NUMBER = re.compile(r"(?a)[1-9]\d{0,14}")
_SERVICES = {"mobile": common_pb2.SERVICE_TYPE_MOBILE, "fixed": common_pb2.SERVICE_TYPE_FIXED}

_LOOKUP = """
    SELECT n.number, r.operator_id AS holder, r.service, p.serving_operator, p.ported_at,
           o.routing_code
    FROM unnest($1::text[]) WITH ORDINALITY AS n(number, i)
    LEFT JOIN number_ranges r ON r.numbers @> n.number::bigint
    LEFT JOIN ported_numbers p ON p.number = n.number
    LEFT JOIN operators o ON o.id = COALESCE(p.serving_operator, r.operator_id)
    ORDER BY n.i"""


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


class RegistryHandler:
    """Answers routing lookups and streams consistent snapshots."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @staticmethod
    def check_numbers(numbers: list[str], field: str) -> None:
        if not numbers:
            raise InvalidArgument(FieldViolation(field, "at least one number"))
        if len(numbers) > MAX_BATCH:
            raise InvalidArgument(FieldViolation(field, f"at most {MAX_BATCH} numbers per call"))
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
        """Serving operator and routing code of each number, in order (on `conn` when given)."""
        if conn is not None:
            rows = await conn.fetch(_LOOKUP, numbers)
        else:
            async with self.core.db.pool.acquire() as own:
                rows = await own.fetch(_LOOKUP, numbers)
        return [routing_message(r) for r in rows]

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
            pending = await conn.fetch(
                "SELECT payload FROM events WHERE position IS NULL AND type = $1 ORDER BY id",
                NUMBERS_CHANGED,
            )
            before: dict[str, str] = {}
            for event in pending:
                for move in event["payload"]["moves"]:
                    for number in move["numbers"]:
                        before.setdefault(number, move["from_operator"])
            codes = {
                r["id"]: r["routing_code"]
                for r in await conn.fetch("SELECT id, routing_code FROM operators")
            }
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
                rows = await conn.fetch(
                    """SELECT n.number, r.operator_id AS holder,
                              (SELECT max(h.changed_at) FROM number_history h
                               WHERE h.number = n.number AND h.to_operator = n.serving
                                 AND h.from_operator <> n.serving) AS since
                       FROM unnest($1::text[], $2::text[]) AS n(number, serving)
                       JOIN number_ranges r ON r.numbers @> n.number::bigint""",
                    list(before),
                    list(before.values()),
                )
                for row in rows:
                    serving = before[row["number"]]
                    if serving != row["holder"]:
                        chunk.ported.append(
                            registry_pb2.PortedNumber(
                                number=row["number"],
                                serving_operator=serving,
                                routing_code=codes[serving],
                                ported_since=to_timestamp(row["since"]),
                            )
                        )
        chunk.last = True
        yield chunk
