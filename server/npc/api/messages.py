"""Helpers shared by the flows' API layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from npc.api.commands import CommandRunner
from npc.api.identity import Caller, current_caller
from npc.store.database import Txn


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (the field stays unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class CommandServicer:
    """Base of servicers whose mutating RPCs run as idempotent commands of a handler."""

    commands: CommandRunner

    async def _command(
        self,
        method: str,
        request: Any,
        response_type: Any,
        fn: Callable[[Txn, Caller, Any], Awaitable[Any]],
    ) -> Any:
        caller = current_caller()
        return await self.commands.run(
            caller, method, request, response_type, lambda txn: fn(txn, caller, request)
        )
