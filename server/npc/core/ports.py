"""What other flows may know of a port, behind an interface the portability flow implements.

Returns for lack of consent and suspensions for debt refer to an executed port: its donor and
recipient, its numbers, when the donor disabled them. The portability flow owns its tables; it
implements `PortRecords` and registers it with the core at setup (`Core.ports`), so those flows
ask through it and never import portability or read its tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg


@dataclass(frozen=True)
class PortRecord:
    """One port request as other flows see it."""

    id: str
    donor: str
    recipient: str
    state: str
    # When the donor disabled the numbers (reported, or else the execution): None before.
    disabled_at: datetime | None


class PortRecords(Protocol):
    """The questions other flows ask the portability flow."""

    async def port(self, conn: asyncpg.Connection, port_request_id: str) -> PortRecord | None:
        """The port request `port_request_id`, or None."""
        ...

    async def numbers_of(self, conn: asyncpg.Connection, port_request_id: str) -> list[str]:
        """The numbers of the port request, in order."""
        ...

    async def includes(self, conn: asyncpg.Connection, port_request_id: str, number: str) -> bool:
        """True when `number` is one of the port request's numbers."""
        ...

    async def with_live_request(self, conn: asyncpg.Connection, numbers: Sequence[str]) -> set[str]:
        """Those of `numbers` that a live port request (one that may still port them) holds."""
        ...


class NoPortRecords:
    """Until the portability flow registers its records, a question about a port is a bug."""

    async def port(self, conn: asyncpg.Connection, port_request_id: str) -> PortRecord | None:
        """Refuse: no flow provides port records."""
        raise RuntimeError("no flow provides port records: set up the portability flow")

    async def numbers_of(self, conn: asyncpg.Connection, port_request_id: str) -> list[str]:
        """Refuse: no flow provides port records."""
        raise RuntimeError("no flow provides port records: set up the portability flow")

    async def includes(self, conn: asyncpg.Connection, port_request_id: str, number: str) -> bool:
        """Refuse: no flow provides port records."""
        raise RuntimeError("no flow provides port records: set up the portability flow")

    async def with_live_request(self, conn: asyncpg.Connection, numbers: Sequence[str]) -> set[str]:
        """Refuse: no flow provides port records."""
        raise RuntimeError("no flow provides port records: set up the portability flow")
