"""Registry of inoperability of the sales and after-sales applications (seed 002, Peru).

    open --CloseInoperability--> closed (reportable) --SubmitInoperabilityReport--> reported
                                       \\--3 business days after the end: compliance record

Each operator registers its attention points (CAC, regulated ACD, call centres 123/135). When the
applications are down so that a regulated request cannot be registered, the operator opens one
event per attention point and request type (claims, activations, cancellations, inquiries): at
most one open event per pair, enforced by a partial unique index. Events are numbered
correlatively per operator with no gaps: the counter row is updated in the transaction that stores
the event, so a rejected registration gives its number back.

Closing an event records its end and closing reason, which must fit the scenario. Error/test
records (scenario "error or test", or closed as "user error") are never reported. Every other
closed event must be in a consolidated report submitted at most 3 business days (Peruvian
calendar) after the event ended ("remitido como máximo a los 3 días hábiles posteriores al
evento"); a missed report is a compliance record. Events over one hour are highlighted.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from asyncpg import Connection, Record

from npc.core.compliance import record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.instants import check_instant, within
from npc.core.runtime import Core
from npc.core.validation import Violations, check_operator, printable
from npc.flows.inoperability import store
from npc.flows.inoperability.events import event_payload
from npc.flows.inoperability.model import (
    AttentionPointRegistration,
    CriticalTransactionRecord,
    EventLookup,
    InoperabilityClosing,
    InoperabilityRegistration,
    NewEvent,
    ReportRow,
    ReportSubmission,
    SubmittedReport,
)
from npc.flows.inoperability.rules import (
    CLOCK_SKEW,
    FLOW,
    LATE_REGISTRATION,
    MAX_ADDRESS,
    MAX_CLOSING_NOTE,
    MAX_DETAIL,
    MAX_LOCATION,
    MAX_POINT_NAME,
    MAX_REPORT_EVENTS,
    POINT_CODE,
    REASONS_OF_SCENARIO,
    REFERENCE,
    REPORT,
    REPORT_NOTE,
    REPORT_WITHIN_BUSINESS_DAYS,
    ClosingReason,
    DeadlineKind,
    duration,
    event_id,
    is_reportable,
    over_one_hour,
    reportable,
)
from npc.store.database import Txn

__all__ = ["FLOW", "InoperabilityHandler", "ReportRow"]


def _report_row(row: Record) -> ReportRow:
    lasted = duration(row)
    return ReportRow(
        operator=row["operator_id"],
        number=row["number"],
        attention_point_code=row["attention_point_code"],
        attention_point_name=row["point_name"],
        attention_point_type=row["point_kind"],
        request_type=row["request_type"],
        scenario=row["scenario"],
        detail=row["detail"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_minutes=int(lasted.total_seconds() // 60) if lasted is not None else None,
        over_one_hour=over_one_hour(row),
        closing_reason=row["closing_reason"],
        report_due_at=row["report_due_at"],
        reported_at=row["reported_at"],
        critical_block_stolen_or_lost=row["critical_block"],
        critical_claim_filing=row["critical_claims"],
    )


def _check_number(v: Violations, field: str, value: int) -> None:
    if value <= 0:
        v.add(field, "required: the event's correlative number (1, 2, ...)")


def _optional_text(v: Violations, field: str, value: str, limit: int) -> None:
    if value and not printable(value, limit=limit):
        v.add(field, f"up to {limit} printable characters")


def _check_point(request: AttentionPointRegistration) -> None:
    v = Violations()
    if not POINT_CODE.fullmatch(request.code):
        v.add("code", "required: 1 to 20 of [A-Za-z0-9_-]")
    if not printable(request.name, limit=MAX_POINT_NAME):
        v.add("name", f"required: up to {MAX_POINT_NAME} printable characters")
    if request.type is None:
        v.add("type", "required: STORE, DEALER or CALL_CENTRE")
    if not printable(request.address, limit=MAX_ADDRESS):
        v.add("address", f"required: up to {MAX_ADDRESS} printable characters")
    if not printable(request.location, limit=MAX_LOCATION):
        v.add("location", "required: district, province and department")
    v.raise_if_any()


def _check_report(numbers: tuple[int, ...]) -> None:
    v = Violations()
    if not numbers:
        v.add("numbers", "required: the numbers of the events reported")
    elif len(numbers) > MAX_REPORT_EVENTS:
        v.add("numbers", f"at most {MAX_REPORT_EVENTS} events per report")
    elif len(set(numbers)) != len(numbers):
        v.add("numbers", "each event at most once")
    for i, number in enumerate(numbers[:MAX_REPORT_EVENTS]):
        _check_number(v, f"numbers[{i}]", number)
    v.raise_if_any()


class InoperabilityHandler:
    """Commands, deadlines and report queries of the inoperability registry."""

    def __init__(self, core: Core, jurisdiction: str) -> None:
        self.core = core
        self.calendar = core.calendar(jurisdiction)

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.REPORT, self._not_reported)

    @staticmethod
    def _operator_only(caller: Caller) -> None:
        if caller.is_regulator:
            raise PermissionDenied("only an operator keeps its inoperability registry")

    def _emit(self, txn: Txn, type_: str, row: Record, sender: str) -> None:
        txn.emit(
            FLOW,
            f"inoperability.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=(row["operator_id"],),
            payload=event_payload(row),
        )

    async def _event(self, conn: Connection, operator: str, number: int) -> Record:
        row = await store.event(conn, operator, number)
        if row is None:
            raise NotFound("inoperability_event", event_id(operator, number))
        return row

    async def _lock_event(self, txn: Txn, operator: str, number: int) -> Record:
        await txn.lock_case(FLOW, event_id(operator, number))
        await store.lock_event_row(txn.conn, operator, number)
        return await self._event(txn.conn, operator, number)

    async def register_attention_point(
        self, txn: Txn, caller: Caller, request: AttentionPointRegistration
    ) -> Record:
        """The operator registers one of its attention points (or updates its data)."""
        _check_point(request)
        assert request.type is not None
        self._operator_only(caller)
        return await store.upsert_attention_point(
            txn.conn,
            caller.operator,
            code=request.code,
            name=request.name.strip(),
            kind=request.type,
            address=request.address.strip(),
            location=request.location.strip(),
            now=txn.now,
        )

    async def register_inoperability(
        self, txn: Txn, caller: Caller, request: InoperabilityRegistration
    ) -> Record:
        """Open an event at an attention point for one request type, with the next number."""
        v = Violations()
        if not POINT_CODE.fullmatch(request.attention_point_code):
            v.add("attention_point_code", "required: the code of a registered attention point")
        if request.request_type is None:
            v.add("request_type", "required: CLAIMS, ACTIVATIONS, CANCELLATIONS or INQUIRIES")
        if request.scenario is None:
            v.add("scenario", "required: MASS_FAILURE, UNFORESEEN_EVENT or ERROR_OR_TEST")
        started = check_instant(v, "started_at", request.started_at)
        within(v, "started_at", started, txn.now, past=LATE_REGISTRATION, future=CLOCK_SKEW)
        _optional_text(v, "detail", request.detail, MAX_DETAIL)
        v.raise_if_any()
        assert started is not None and request.request_type and request.scenario
        self._operator_only(caller)
        if not await store.attention_point_exists(
            txn.conn, caller.operator, request.attention_point_code
        ):
            raise NotFound("attention_point", request.attention_point_code)
        # Numbered before the open-event check below: its refusal rolls back and returns the
        # number, so the registry has no gaps.
        number = await store.next_event_number(txn.conn, caller.operator)
        event = NewEvent(
            id=event_id(caller.operator, number),
            operator_id=caller.operator,
            number=number,
            attention_point_code=request.attention_point_code,
            request_type=request.request_type,
            scenario=request.scenario,
            detail=request.detail.strip(),
            started_at=started,
            registered_at=txn.now,
        )
        try:
            # A savepoint: the transaction must still read which event is open.
            async with txn.conn.transaction():
                await store.insert_event(txn.conn, event)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != store.ONE_OPEN:
                raise
            live = await store.open_event_of(
                txn.conn, caller.operator, request.attention_point_code, request.request_type
            )
            raise AlreadyExists(
                "inoperability_event",
                live,
                f"attention point {request.attention_point_code} already has an open"
                f" inoperability event for {request.request_type}: {live}",
                collided=f"{request.attention_point_code}/{request.request_type}",
            ) from None
        row = await self._event(txn.conn, caller.operator, number)
        self._emit(txn, "registered", row, caller.operator)
        return row

    async def close_inoperability(
        self, txn: Txn, caller: Caller, request: InoperabilityClosing
    ) -> Record:
        """Close an open event with its end and a closing reason that fits its scenario."""
        v = Violations()
        _check_number(v, "number", request.number)
        ended = check_instant(v, "ended_at", request.ended_at)
        within(v, "ended_at", ended, txn.now, past=LATE_REGISTRATION, future=CLOCK_SKEW)
        if request.closing_reason is None:
            v.add("closing_reason", "required: one of the closing reasons")
        _optional_text(v, "closing_note", request.closing_note, MAX_CLOSING_NOTE)
        v.raise_if_any()
        reason = request.closing_reason
        assert ended is not None and reason is not None
        self._operator_only(caller)
        row = await self._lock_event(txn, caller.operator, request.number)
        if row["ended_at"] is not None:
            raise FailedPrecondition(f"{row['id']} is already closed", subject=row["id"])
        self._check_closing(row, ended, reason, request.closing_note)
        due = (
            self.calendar.end_of_business_days(ended, REPORT_WITHIN_BUSINESS_DAYS)
            if reportable(row["scenario"], reason)
            else None
        )
        await store.close_event(
            txn.conn,
            row["id"],
            ended_at=ended,
            closing_reason=reason,
            closing_note=request.closing_note.strip(),
            closed_at=txn.now,
            report_due_at=due,
        )
        if due is not None:
            txn.set_deadline(FLOW, DeadlineKind.REPORT, row["id"], due, REPORT_NOTE)
        row = await self._event(txn.conn, caller.operator, request.number)
        self._emit(txn, "closed", row, caller.operator)
        return row

    @staticmethod
    def _check_closing(row: Record, ended: datetime, reason: ClosingReason, note: str) -> None:
        """The end follows the start and the reason fits the event's scenario."""
        v = Violations()
        if ended <= row["started_at"]:
            v.add("ended_at", f"must be after the start, {row['started_at'].isoformat()}")
        allowed = REASONS_OF_SCENARIO[row["scenario"]]
        if reason not in allowed:
            v.add(
                "closing_reason",
                f"{reason} does not fit the scenario {row['scenario']}; allowed: "
                + ", ".join(sorted(allowed)),
            )
        if reason == ClosingReason.USER_ERROR and not note.strip():
            # "El Jefe o Responsable del canal deberá realizar el cierre con el sustento respectivo."
            v.add("closing_note", "required when closing as an error or test: the justification")
        v.raise_if_any()

    async def record_critical_transaction(
        self, txn: Txn, caller: Caller, request: CriticalTransactionRecord
    ) -> Record:
        """A critical transaction was served at the attention point while the event is open."""
        v = Violations()
        _check_number(v, "number", request.number)
        if request.kind is None:
            v.add("kind", "required: BLOCK_STOLEN_OR_LOST or CLAIM_FILING")
        if not REFERENCE.fullmatch(request.reference):
            v.add("reference", "required: the ticket or claim code, 1 to 40 of [A-Za-z0-9./_-]")
        v.raise_if_any()
        assert request.kind is not None
        self._operator_only(caller)
        row = await self._lock_event(txn, caller.operator, request.number)
        if row["ended_at"] is not None:
            raise FailedPrecondition(
                f"{row['id']} is closed: critical transactions are recorded during the event",
                subject=row["id"],
            )
        await store.insert_critical_transaction(
            txn.conn, row["id"], request.kind, request.reference, txn.now
        )
        return await self._event(txn.conn, caller.operator, request.number)

    async def submit_report(
        self, txn: Txn, caller: Caller, request: ReportSubmission
    ) -> SubmittedReport:
        """The operator submits the consolidated report of some of its closed events."""
        numbers = request.numbers
        _check_report(numbers)
        self._operator_only(caller)
        rows = []
        # Locks in ascending order: two reports sharing events cannot deadlock.
        for number in sorted(numbers):
            row = await self._lock_event(txn, caller.operator, number)
            if row["ended_at"] is None:
                raise FailedPrecondition(f"{row['id']} is still open", subject=row["id"])
            if not is_reportable(row):
                raise FailedPrecondition(
                    f"{row['id']} is an error/test record: it is not reported",
                    violation_type="NOT_REPORTABLE",
                    subject=row["id"],
                )
            if row["report_id"] is not None:
                raise FailedPrecondition(
                    f"{row['id']} was already reported in {row['report_id']}",
                    violation_type="ALREADY_REPORTED",
                    subject=row["id"],
                )
            rows.append(row)
        report_id = await store.insert_report(txn.conn, caller.operator, txn.now)
        for row in rows:
            if txn.now >= row["report_due_at"]:
                await self._breach(txn, row, row["report_due_at"])
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.REPORT)
        await store.mark_reported(txn.conn, caller.operator, numbers, report_id, txn.now)
        reported = [await self._event(txn.conn, caller.operator, n) for n in sorted(numbers)]
        for row in reported:
            self._emit(txn, "reported", row, caller.operator)
        return SubmittedReport(report_id, caller.operator, txn.now, tuple(reported))

    async def get_inoperability(self, caller: Caller, request: EventLookup) -> Record:
        """An event, for its operator and the regulator."""
        v = Violations()
        operator = request.operator or caller.operator
        check_operator(v, "operator", operator)
        _check_number(v, "number", request.number)
        v.raise_if_any()
        if operator != caller.operator and not caller.is_regulator:
            # Another operator's event answers as a missing one: its existence is not ours to tell.
            raise NotFound("inoperability_event", event_id(operator, request.number))
        async with self.core.db.pool.acquire() as conn:
            return await self._event(conn, operator, request.number)

    async def _breach(self, txn: Txn, row: Record, due: datetime) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=REPORT,
            operator=row["operator_id"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={
                "number": row["number"],
                "ended_at": row["ended_at"].isoformat(),
                "due_at": due.isoformat(),
            },
        )

    async def _not_reported(self, txn: Txn, deadline: Deadline) -> None:
        await txn.lock_case(FLOW, deadline.case_id)
        row = await store.lock_event_by_id(txn.conn, deadline.case_id)
        if row is not None and row["report_id"] is None and is_reportable(row):
            await self._breach(txn, row, deadline.due_at)

    # -- Queries for the regulator's web report (plain rows) ------------------------------------

    def _period(self, start: date, end: date) -> tuple[datetime, datetime]:
        """UTC bounds of the local (Lima) dates start..end inclusive."""
        return (
            self.calendar.at(start, datetime.min.time()),
            self.calendar.at(end + timedelta(days=1), datetime.min.time()),
        )

    async def report(self, operator: str, start: date, end: date) -> list[ReportRow]:
        """The operator's events that started on local dates start..end (inclusive), by number.

        Error/test records are excluded; each row carries the duration (closed events), the
        over-one-hour highlight, the scenario, the closing reason and the counts of critical
        transactions served during the event.
        """
        since, until = self._period(start, end)
        async with self.core.db.pool.acquire() as conn:
            rows = await store.reportable_events(conn, operator, since, until)
        return [_report_row(row) for row in rows]

    async def summary(self, operator: str, start: date, end: date) -> dict[str, Any]:
        """Totals of `report(operator, start, end)`: events, closed, open, total and highlighted
        durations, counts per scenario, closing reason and request type."""
        rows = await self.report(operator, start, end)
        closed = [r for r in rows if r.duration_minutes is not None]

        def count(values: list[str | None]) -> dict[str, int]:
            found: dict[str, int] = {}
            for value in values:
                if value is not None:
                    found[value] = found.get(value, 0) + 1
            return found

        return {
            "operator": operator,
            "start": start,
            "end": end,
            "events": len(rows),
            "closed": len(closed),
            "open": len(rows) - len(closed),
            "total_minutes": sum(r.duration_minutes or 0 for r in closed),
            "over_one_hour": sum(1 for r in rows if r.over_one_hour),
            "by_scenario": count([r.scenario for r in rows]),
            "by_closing_reason": count([r.closing_reason for r in rows]),
            "by_request_type": count([r.request_type for r in rows]),
        }

    async def attention_points(self, operator: str) -> list[dict[str, Any]]:
        """The operator's registered attention points, by code."""
        async with self.core.db.pool.acquire() as conn:
            return await store.attention_points(conn, operator)
