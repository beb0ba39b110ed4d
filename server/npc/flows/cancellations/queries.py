"""Reads of the cancellations tracking: one tracked request, the subscriber's public lookup and
the daily-report compliance report."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from asyncpg import Record

from npc.core.dates import check_date
from npc.core.errors import NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.validation import Violations, check_operator
from npc.flows.cancellations import store
from npc.flows.cancellations.base import CancellationsBase
from npc.flows.cancellations.model import ComplianceQuery, TrackedRequestLookup
from npc.flows.cancellations.rules import (
    LOOKUP_DOCUMENT,
    LOOKUP_OPERATOR,
    MAX_PERIOD_DAYS,
    REQUEST_CODE,
)
from npc.store.operators import name_of


class TrackingQueries(CancellationsBase):
    """What operators, the regulator and subscribers read."""

    async def get_tracked_request(self, caller: Caller, request: TrackedRequestLookup) -> Record:
        """One request's current state, for the operator that reported it and the regulator."""
        v = Violations()
        operator = request.operator or ("" if caller.is_regulator else caller.operator)
        check_operator(v, "operator", operator)
        if not REQUEST_CODE.fullmatch(request.request_code):
            v.add("request_code", "required: the operator's request code")
        v.raise_if_any()
        if not caller.is_regulator and operator != caller.operator:
            # Another operator's request answers as a missing one: its existence is not ours to tell.
            raise NotFound("tracked_request", f"{operator}/{request.request_code}")
        async with self.core.db.pool.acquire() as conn:
            row = await store.tracked_request_by_code(conn, operator, request.request_code)
        if row is None:
            raise NotFound("tracked_request", f"{operator}/{request.request_code}")
        return row

    async def public_status(
        self, operator: str, request_code: str, document: str
    ) -> dict[str, Any] | None:
        """A subscriber's view of one request, for the regulator's public page.

        `document` is the subscriber's identity document number as reported; a request is shown
        only when it matches, so a request code alone reveals nothing. Returns None when there is
        no such request (or the document does not match). Keys: operator, operator_name,
        request_code, kind (cancellation|migration), service (fixed|mobile|internet|pay_tv),
        channel, requested_at, state (pending|executed|rejected|withdrawn), service_status,
        scheduled_date, executed_at, execution_reason, target_plan, last_report_date,
        scheduled_date_missed (a compliance record exists for it).
        """
        if not (
            REQUEST_CODE.fullmatch(request_code)
            and LOOKUP_DOCUMENT.fullmatch(document)
            and LOOKUP_OPERATOR.fullmatch(operator)
        ):
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await store.public_request(conn, operator, request_code, document)
            if row is None:
                return None
            # A tracked request's operator is registered (foreign key): its name is found.
            operator_name = await name_of(conn, row["operator_id"])
        return {
            "operator": row["operator_id"],
            "operator_name": operator_name,
            "request_code": row["request_code"],
            "kind": row["kind"],
            "service": row["service"],
            "channel": row["channel"],
            "requested_at": row["requested_at"],
            "state": row["state"],
            "service_status": row["service_status"],
            "scheduled_date": row["scheduled_date"],
            "executed_at": row["executed_at"],
            "execution_reason": row["execution_reason"],
            "target_plan": row["target_plan"],
            "last_report_date": row["last_report_date"],
            "scheduled_date_missed": row["missed"],
        }

    async def daily_report_compliance(
        self, from_date: date, to_date: date, operator: str | None = None
    ) -> list[dict[str, Any]]:
        """Daily-report compliance per reporting operator over report dates from..to (inclusive).

        Only dates the operator had to report and whose due instant has passed count. Each item:
        operator, days_due, received, on_time (first version before the due instant), late,
        missing (never received), missing_dates and late_dates (lists of dates).
        """
        now = self.core.clock.now()
        async with self.core.db.pool.acquire() as conn:
            obligations = await store.reporting_operators(conn, operator)
            reports = await store.reports_between(conn, from_date, to_date, operator)
        received = {(r["operator_id"], r["report_date"]): r for r in reports}
        result = []
        for obligation in obligations:
            item: dict[str, Any] = {
                "operator": obligation.operator,
                "days_due": 0,
                "received": 0,
                "on_time": 0,
                "late": 0,
                "missing": 0,
                "missing_dates": [],
                "late_dates": [],
            }
            day = from_date
            while day <= to_date:
                if obligation.covers(day) and self.report_due_at(day) <= now:
                    item["days_due"] += 1
                    report = received.get((obligation.operator, day))
                    if report is None:
                        item["missing"] += 1
                        item["missing_dates"].append(day)
                    else:
                        item["received"] += 1
                        if report["first_received_at"] < report["due_at"]:
                            item["on_time"] += 1
                        else:
                            item["late"] += 1
                            item["late_dates"].append(day)
                day += timedelta(days=1)
            result.append(item)
        return result

    async def get_compliance(
        self, caller: Caller, request: ComplianceQuery
    ) -> list[dict[str, Any]]:
        """The daily-report compliance report over gRPC (operators see only themselves)."""
        v = Violations()
        if request.operator:
            check_operator(v, "operator", request.operator)
        start = check_date(v, "from_date", request.from_date)
        end = check_date(v, "to_date", request.to_date)
        if start is not None and end is not None:
            if end < start:
                v.add("to_date", "must not precede from_date")
            elif (end - start).days >= MAX_PERIOD_DAYS:
                v.add("to_date", f"a period covers at most {MAX_PERIOD_DAYS} days")
        v.raise_if_any()
        assert start is not None and end is not None
        operator = request.operator or None
        if not caller.is_regulator:
            if operator not in (None, caller.operator):
                raise PermissionDenied("operators read only their own compliance")
            operator = caller.operator
        return await self.daily_report_compliance(start, end, operator)
