"""Returns of ported numbers to their range holders.

Disconnection: a ported number whose service ended goes back to the holder of its range at once,
and every operator learns it from the registry broadcast. (The lack-of-consent return, SR/AR/DR
with its 5-business-day deadline, plugs in here next.)
"""

from __future__ import annotations

from npc.api.identity import Caller
from npc.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from npc.flows.registry.handler import RegistryHandler
from npc.flows.registry.store import move_numbers
from npc.store.database import Txn
from npc.v1 import registry_pb2 as pb


class ReturnsHandler:
    """Commands that send numbers back to their range holders."""

    def __init__(self, registry: RegistryHandler) -> None:
        self.registry = registry

    async def report_disconnection(
        self, txn: Txn, caller: Caller, request: pb.ReportDisconnectionRequest
    ) -> pb.ReportDisconnectionResponse:
        """Send the caller's disconnected ported numbers home and broadcast the change."""
        if caller.is_regulator:
            raise PermissionDenied("the regulator's identity is read-only")
        numbers = list(request.numbers)
        self.registry.check_numbers(numbers, "numbers")
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument(FieldViolation("numbers", "a number appears twice"))
        rows = await txn.conn.fetch(
            """SELECT n.number, r.operator_id AS holder, p.serving_operator,
                      EXISTS (SELECT 1 FROM port_request_numbers q
                              WHERE q.number = n.number AND q.live) AS live_request
               FROM unnest($1::text[]) AS n(number)
               LEFT JOIN number_ranges r ON r.numbers @> n.number::bigint
               LEFT JOIN ported_numbers p ON p.number = n.number""",
            numbers,
        )
        by_holder: dict[str, list[str]] = {}
        for row in rows:
            number = row["number"]
            if row["serving_operator"] is None:
                raise FailedPrecondition(
                    f"number {number} is not ported: it is already with its range holder",
                    violation_type="NOT_PORTED",
                    subject=f"numbers:{number}",
                )
            if row["serving_operator"] != caller.operator:
                raise PermissionDenied(f"number {number} is not served by {caller.operator}")
            if row["live_request"]:
                raise FailedPrecondition(
                    f"number {number} has a live port request; it cannot be disconnected now",
                    violation_type="LIVE_PORT_REQUEST",
                    subject=f"numbers:{number}",
                )
            by_holder.setdefault(row["holder"], []).append(number)
        for holder, home in sorted(by_holder.items()):
            await move_numbers(
                txn,
                home,
                holder,
                reason="disconnection",
                case_id=f"DX:{caller.operator}:{request.request_id}",
            )
        routing = await self.registry.lookup(numbers, conn=txn.conn)
        return pb.ReportDisconnectionResponse(returned=routing)
