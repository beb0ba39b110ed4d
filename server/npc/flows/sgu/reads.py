"""Reads: a problem for its operator and the regulator, the catalogue, the subscriber's public
status and the regulator's statistics."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from asyncpg import Record

from npc.core.errors import NotFound
from npc.core.identity import Caller
from npc.core.instants import check_instant
from npc.core.validation import Violations, check_case_id
from npc.flows.sgu import store
from npc.flows.sgu.base import SguBase, public_status
from npc.flows.sgu.model import (
    GetProblem,
    GetReport,
    OperatorStats,
    ProblemCount,
    Report,
    ResolutionTime,
    Satisfaction,
)
from npc.flows.sgu.rules import MAX_REPORT_PERIOD, PROBLEM_CODE, PROBLEM_PREFIX, State
from npc.flows.sgu.store import CASES


class Reads(SguBase):
    """Queries of the user management system."""

    async def get_problem(self, caller: Caller, command: GetProblem) -> Record:
        """A problem, for its operator and the regulator."""
        v = Violations()
        check_case_id(v, "problem_id", command.problem_id, PROBLEM_PREFIX)
        v.raise_if_any()
        row = await CASES.read_for(
            self.core.db, command.problem_id, caller.operator, sees_all=caller.is_regulator
        )
        if row["state"] == State.AWAITING_CONFIRMATION and not caller.is_regulator:
            raise NotFound("problem", command.problem_id)
        return row

    async def catalogue(self, *, include_inactive: bool = False) -> list[Record]:
        """The subcategories, by category and code (for the registration form)."""
        async with self.core.db.pool.acquire() as conn:
            return await store.subcategories(conn, include_inactive=include_inactive)

    async def public_status(self, problem_code: str, document: str) -> dict[str, Any] | None:
        """For the subscriber's page: the problem's status, or None (unknown code or document).

        A wrong document and an unknown code answer the same, so the page reveals nothing.
        """
        if not PROBLEM_CODE.fullmatch(problem_code) or not document:
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await store.problem(conn, problem_code)
        if row is None or not secrets.compare_digest(
            row["document_number"].encode(), document.encode()
        ):
            return None
        return public_status(row)

    async def report(
        self, start: datetime, end: datetime, *, operator: str | None = None
    ) -> Report:
        """Statistics of the problems transferred to operators and registered in [start, end),
        of every operator or only of `operator`."""
        async with self.core.db.pool.acquire() as conn:
            frequent = await store.most_frequent(conn, start, end, operator)
            times = await store.resolution_times(conn, start, end, operator)
            operators = await store.operator_answers(
                conn, start, end, self.core.clock.now(), operator
            )
            ratings = await store.ratings(conn, start, end, operator)
        return Report(
            most_frequent=[
                ProblemCount(r["subcategory"], r["name"], r["problems"]) for r in frequent
            ],
            resolution_times=[
                ResolutionTime(
                    r["subcategory"], r["answered"], float(r["average"]), float(r["longest"])
                )
                for r in times
            ],
            operators=[
                OperatorStats(
                    r["operator"], r["problems"], r["in_time"], r["late"], r["overdue"], r["claims"]
                )
                for r in operators
            ],
            satisfaction=[
                Satisfaction(r["operator"], r["rated"], r["satisfied"], r["average"])
                for r in ratings
            ],
        )

    async def get_report(self, caller: Caller, command: GetReport) -> Report:
        """The regulator's statistics report."""
        self._check_caller_is_regulator(caller, "reads the SGU report")
        v = Violations()
        start = check_instant(v, "from", command.from_)
        end = check_instant(v, "to", command.to)
        if start is not None and end is not None:
            if end <= start:
                v.add("to", "must be after from")
            elif end - start > MAX_REPORT_PERIOD:
                v.add("to", f"a report covers at most {MAX_REPORT_PERIOD.days} days")
        v.raise_if_any()
        assert start is not None and end is not None
        return await self.report(start, end)
