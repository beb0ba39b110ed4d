"""Reads of the portability cases: by their parties and the regulator, pages of requests, the
subscriber's public status and the regulator's counts."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from asyncpg import Record

from npc.core.identity import Caller
from npc.core.instants import UNREADABLE
from npc.core.validation import Violations, check_case_id
from npc.flows.portability import notices, store
from npc.flows.portability.base import PortabilityBase
from npc.flows.portability.model import (
    GetPortRequest,
    GetPriorConsultation,
    ListPortRequests,
    PortRequestPage,
    PublicStatus,
)
from npc.store import operators

# Requests per page of ListPortRequests: when not asked, and at most.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Numbers the public status page shows of a request (it says how many more there are).
PUBLIC_NUMBERS = 20


class Reads(PortabilityBase):
    """Queries of the portability cases."""

    async def get_prior_consultation(self, caller: Caller, request: GetPriorConsultation) -> Record:
        """A prior consultation, for its recipient, its donor or the regulator."""
        return await self._read_case(
            caller, "prior_consultation", "consultation_id", request.consultation_id
        )

    async def get_port_request(self, caller: Caller, request: GetPortRequest) -> Record:
        """A port request, for its recipient, its donor or the regulator."""
        return await self._read_case(
            caller, "port_request", "port_request_id", request.port_request_id
        )

    async def _read_case(self, caller: Caller, kind: str, field: str, case_id: str) -> Record:
        """A case row, readable by its two parties and the regulator."""
        prefix, table = (
            ("CP", store.CONSULTATIONS) if kind == "prior_consultation" else ("SP", store.REQUESTS)
        )
        v = Violations()
        check_case_id(v, field, case_id, prefix)
        v.raise_if_any()
        return await table.read_for(
            self.core.db, case_id, caller.operator, sees_all=caller.is_regulator
        )

    async def list_port_requests(
        self, caller: Caller, request: ListPortRequests
    ) -> PortRequestPage:
        """Requests where the caller is a party (all of them for the regulator), newest first."""
        v = Violations()
        if request.state is UNREADABLE:
            v.add("state", "unknown state")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            v.add("page_size", f"between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
        cursor: tuple[datetime, str] | None = None
        if request.page_token:
            try:
                stamp, _, last_id = (
                    base64.urlsafe_b64decode(request.page_token.encode()).decode().partition("|")
                )
                cursor = (datetime.fromisoformat(stamp), last_id)
            except (ValueError, UnicodeDecodeError):
                v.add("page_token", "not a token returned by this method")
        v.raise_if_any()
        size = request.page_size or DEFAULT_PAGE_SIZE
        state = None if request.state is UNREADABLE else request.state
        async with self.core.db.pool.acquire() as conn:
            rows = await store.list_requests(
                conn, None if caller.is_regulator else caller.operator, state, cursor, size + 1
            )
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = base64.urlsafe_b64encode(
                f"{last['submitted_at'].isoformat()}|{last['id']}".encode()
            ).decode()
        return PortRequestPage(tuple(rows[:size]), token)

    async def public_status(self, case_id: str, document: str) -> PublicStatus | None:
        """A port request as its subscriber may see it, or None.

        Found only when `document` is the subscriber's document number (compared without case):
        code and document are matched by one and the same query, so a wrong code and a wrong
        document cost the same and both answer None.
        """
        async with self.core.db.pool.acquire() as conn:
            row = await store.public_status_row(conn, case_id, document, PUBLIC_NUMBERS)
            if row is None:
                return None
            # Both parties are registered operators (foreign keys): both names are found.
            names = await operators.names(conn, [row["recipient"], row["donor"]])
        window = (
            self.timeline.window_containing(row["scheduled_at"]) if row["scheduled_at"] else None
        )
        return PublicStatus(
            id=row["id"],
            state=row["state"],
            service=row["service"],
            recipient=names[row["recipient"]],
            donor=names[row["donor"]],
            numbers=tuple(row["first_numbers"]),
            number_count=row["number_count"],
            submitted_at=row["submitted_at"],
            execution_limit=row["execution_limit"],
            scheduled_at=row["scheduled_at"],
            window_end=window[1] if window else None,
            executed_at=row["executed_at"],
            closed_at=row["closed_at"],
            objection_reason=(row["objection"] or {}).get("reason"),
            schedulable=row["schedule_deadline"] is not None,
            notified_to=notices.masked_contact(row["subscriber"] or {}),
        )

    async def request_counts(
        self, start: datetime, end: datetime, operator: str | None
    ) -> list[dict[str, Any]]:
        """Port requests submitted in [start, end), counted by recipient, donor, service and
        state; with `operator`, only those where it is the recipient or the donor."""
        async with self.core.db.pool.acquire() as conn:
            return await store.request_counts(conn, start, end, operator)

    async def donor_answer_times(
        self, start: datetime, end: datetime, operator: str | None
    ) -> list[dict[str, Any]]:
        """Per donor, its answers to the CP and SP submitted in [start, end) against its term
        (`rules.DONOR_ANSWER_TERM`, or the configured one), in the clock's seconds."""
        term = self.settings.donor_answer.total_seconds()
        async with self.core.db.pool.acquire() as conn:
            return await store.donor_answer_times(conn, start, end, operator, term)

    async def daily_ports(
        self, start: datetime, end: datetime, operator: str | None
    ) -> list[dict[str, Any]]:
        """Ports executed in [start, end) per local day, donor and recipient."""
        zone = self.timeline.calendar.timezone
        async with self.core.db.pool.acquire() as conn:
            return await store.daily_ports(conn, start, end, operator, zone)
