"""Helpers shared by the flows' API layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.core.identity import Caller
from npc.store.database import Txn


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
