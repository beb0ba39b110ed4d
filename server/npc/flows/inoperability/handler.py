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

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from npc.core.compliance import Rule, record_breach
from npc.core.deadlines import Deadline
from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.instants import timestamp, to_timestamp, within
from npc.core.runtime import Core
from npc.core.validation import Violations, check_operator, printable
from npc.flows.inoperability.rules import DeadlineKind
from npc.store.database import Txn
from npc.v1 import inoperability_pb2 as pb

FLOW = "inoperability"
K = TypeVar("K")
REPORT_WITHIN_BUSINESS_DAYS = 3
HIGHLIGHT_OVER = timedelta(hours=1)
# Registration may regularise an event noted on the manual form during the outage ("Contingencia").
LATE_REGISTRATION = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)
MAX_REPORT_EVENTS = 500

POINT_CODE = re.compile(r"(?a)^[A-Za-z0-9_-]{1,20}$")
REFERENCE = re.compile(r"(?a)^[A-Za-z0-9./_-]{1,40}$")

REPORT = Rule(
    "report_inoperability",
    None,
    "seed 002: Reporte de Eventos de Inoperatividad de los Sistemas de Atención",
    "leve",
    "operator",
    "Report each inoperability event to the regulator at most 3 business days after it ended.",
)

POINT_TYPES = {
    pb.ATTENTION_POINT_TYPE_STORE: "store",
    pb.ATTENTION_POINT_TYPE_DEALER: "dealer",
    pb.ATTENTION_POINT_TYPE_CALL_CENTRE: "call_centre",
}
REQUEST_TYPES = {
    pb.REQUEST_TYPE_CLAIMS: "claims",
    pb.REQUEST_TYPE_ACTIVATIONS: "activations",
    pb.REQUEST_TYPE_CANCELLATIONS: "cancellations",
    pb.REQUEST_TYPE_INQUIRIES: "inquiries",
}
SCENARIOS = {
    pb.SCENARIO_MASS_FAILURE: "mass_failure",
    pb.SCENARIO_UNFORESEEN_EVENT: "unforeseen_event",
    pb.SCENARIO_ERROR_OR_TEST: "error_or_test",
}
CLOSING_REASONS = {
    pb.CLOSING_REASON_CONNECTIVITY: "connectivity",
    pb.CLOSING_REASON_INTERMITTENCY: "intermittency",
    pb.CLOSING_REASON_MAINTENANCE: "maintenance",
    pb.CLOSING_REASON_MASS_APPLICATION_FAILURE: "mass_application_failure",
    pb.CLOSING_REASON_POINT_INFRASTRUCTURE: "point_infrastructure",
    pb.CLOSING_REASON_NO_POWER: "no_power",
    pb.CLOSING_REASON_USER_ERROR: "user_error",
}
CRITICAL = {
    pb.CRITICAL_TRANSACTION_BLOCK_STOLEN_OR_LOST: "block_stolen_or_lost",
    pb.CRITICAL_TRANSACTION_CLAIM_FILING: "claim_filing",
}
# "Validar que los motivos de Ocurrencia de cierre sea acorde al tipo de Escenario". Any event found
# to be an error or a test is closed as "Error de Usuario", whatever its scenario.
REASONS_OF_SCENARIO = {
    "mass_failure": {
        "connectivity",
        "intermittency",
        "maintenance",
        "mass_application_failure",
        "user_error",
    },
    "unforeseen_event": {"point_infrastructure", "no_power", "user_error"},
    "error_or_test": {"user_error"},
}


def _reverse(mapping: dict[K, str]) -> dict[str, K]:
    return {name: value for value, name in mapping.items()}


POINT_TYPE_VALUES = _reverse(POINT_TYPES)
REQUEST_TYPE_VALUES = _reverse(REQUEST_TYPES)
SCENARIO_VALUES = _reverse(SCENARIOS)
CLOSING_REASON_VALUES = _reverse(CLOSING_REASONS)

_EVENT_COLUMNS = """e.*, p.name AS point_name, p.kind AS point_kind,
    (SELECT count(*) FROM inoperability_critical_transactions c
     WHERE c.event_id = e.id AND c.kind = 'block_stolen_or_lost') AS critical_block,
    (SELECT count(*) FROM inoperability_critical_transactions c
     WHERE c.event_id = e.id AND c.kind = 'claim_filing') AS critical_claims"""
_EVENT_FROM = """inoperability_events e
    JOIN attention_points p ON p.operator_id = e.operator_id AND p.code = e.attention_point_code"""


def event_id(operator: str, number: int) -> str:
    """The case id of an operator's event: ``claro-000012``."""
    return f"{operator}-{number:06d}"


def is_reportable(row: Any) -> bool:
    """False for error/test records: opened as such, or closed as a user error."""
    return bool(row["scenario"] != "error_or_test" and row["closing_reason"] != "user_error")


def duration(row: Any) -> timedelta | None:
    """How long a closed event lasted."""
    if row["ended_at"] is None:
        return None
    value: timedelta = row["ended_at"] - row["started_at"]
    return value


def over_one_hour(row: Any) -> bool:
    """Closed and lasted more than one hour ("Informar si el rango es mayor a 1 hora")."""
    lasted = duration(row)
    return lasted is not None and lasted > HIGHLIGHT_OVER


def point_message(row: Any) -> pb.AttentionPoint:
    """An attention_points row as its API message."""
    return pb.AttentionPoint(
        operator=row["operator_id"],
        code=row["code"],
        name=row["name"],
        type=POINT_TYPE_VALUES[row["kind"]],
        address=row["address"],
        location=row["location"],
        registered_at=to_timestamp(row["registered_at"]),
    )


def event_message(row: Any) -> pb.InoperabilityEvent:
    """An event row (with its critical transaction counts) as its API message."""
    lasted = duration(row)
    return pb.InoperabilityEvent(
        id=row["id"],
        operator=row["operator_id"],
        number=row["number"],
        attention_point_code=row["attention_point_code"],
        request_type=REQUEST_TYPE_VALUES[row["request_type"]],
        scenario=SCENARIO_VALUES[row["scenario"]],
        detail=row["detail"],
        started_at=to_timestamp(row["started_at"]),
        registered_at=to_timestamp(row["registered_at"]),
        ended_at=to_timestamp(row["ended_at"]),
        closing_reason=CLOSING_REASON_VALUES.get(
            row["closing_reason"] or "", pb.CLOSING_REASON_UNSPECIFIED
        ),
        closing_note=row["closing_note"],
        closed_at=to_timestamp(row["closed_at"]),
        reportable=is_reportable(row),
        over_one_hour=over_one_hour(row),
        duration_seconds=int(lasted.total_seconds()) if lasted is not None else 0,
        report_due_at=to_timestamp(row["report_due_at"]),
        report_id=row["report_id"] or "",
        reported_at=to_timestamp(row["reported_at"]),
        critical_block_stolen_or_lost=row["critical_block"],
        critical_claim_filing=row["critical_claims"],
    )


@dataclass(frozen=True)
class ReportRow:
    """One event as the regulator's web report shows it."""

    operator: str
    number: int
    attention_point_code: str
    attention_point_name: str
    attention_point_type: str
    request_type: str
    scenario: str
    detail: str
    started_at: datetime
    ended_at: datetime | None
    duration_minutes: int | None
    over_one_hour: bool
    closing_reason: str | None
    report_due_at: datetime | None
    reported_at: datetime | None
    critical_block_stolen_or_lost: int
    critical_claim_filing: int


def _report_row(row: Any) -> ReportRow:
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

    def _emit(self, txn: Txn, type_: str, row: Any, sender: str) -> None:
        txn.emit(
            FLOW,
            f"inoperability.{type_}",
            case_id=row["id"],
            sender=sender,
            audience=(row["operator_id"],),
            payload={
                "event_id": row["id"],
                "operator": row["operator_id"],
                "number": row["number"],
                "attention_point_code": row["attention_point_code"],
                "request_type": row["request_type"],
                "scenario": row["scenario"],
                "started_at": row["started_at"].isoformat(),
                "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
                "closing_reason": row["closing_reason"],
            },
        )

    async def _event(self, conn: Any, operator: str, number: int) -> Any:
        row = await conn.fetchrow(
            f"SELECT {_EVENT_COLUMNS} FROM {_EVENT_FROM} WHERE e.operator_id = $1 AND e.number = $2",
            operator,
            number,
        )
        if row is None:
            raise NotFound("inoperability_event", event_id(operator, number))
        return row

    async def _lock_event(self, txn: Txn, operator: str, number: int) -> Any:
        await txn.lock_case(FLOW, event_id(operator, number))
        await txn.conn.execute(
            "SELECT 1 FROM inoperability_events WHERE operator_id = $1 AND number = $2 FOR UPDATE",
            operator,
            number,
        )
        return await self._event(txn.conn, operator, number)

    async def register_attention_point(
        self, txn: Txn, caller: Caller, request: pb.RegisterAttentionPointRequest
    ) -> pb.AttentionPoint:
        """The operator registers one of its attention points (or updates its data)."""
        v = Violations()
        if not POINT_CODE.fullmatch(request.code):
            v.add("code", "required: 1 to 20 of [A-Za-z0-9_-]")
        if not printable(request.name, limit=120):
            v.add("name", "required: up to 120 printable characters")
        if request.type not in POINT_TYPES:
            v.add("type", "required: STORE, DEALER or CALL_CENTRE")
        if not printable(request.address, limit=200):
            v.add("address", "required: up to 200 printable characters")
        if not printable(request.location, limit=120):
            v.add("location", "required: district, province and department")
        v.raise_if_any()
        self._operator_only(caller)
        row = await txn.conn.fetchrow(
            """INSERT INTO attention_points (operator_id, code, name, kind, address, location,
                                             registered_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (operator_id, code) DO UPDATE
               SET name = EXCLUDED.name, kind = EXCLUDED.kind, address = EXCLUDED.address,
                   location = EXCLUDED.location
               RETURNING *""",
            caller.operator,
            request.code,
            request.name.strip(),
            POINT_TYPES[request.type],
            request.address.strip(),
            request.location.strip(),
            txn.now,
        )
        return point_message(row)

    async def register_inoperability(
        self, txn: Txn, caller: Caller, request: pb.RegisterInoperabilityRequest
    ) -> pb.InoperabilityEvent:
        """Open an event at an attention point for one request type, with the next number."""
        v = Violations()
        if not POINT_CODE.fullmatch(request.attention_point_code):
            v.add("attention_point_code", "required: the code of a registered attention point")
        if request.request_type not in REQUEST_TYPES:
            v.add("request_type", "required: CLAIMS, ACTIVATIONS, CANCELLATIONS or INQUIRIES")
        if request.scenario not in SCENARIOS:
            v.add("scenario", "required: MASS_FAILURE, UNFORESEEN_EVENT or ERROR_OR_TEST")
        started = timestamp(v, "started_at", request, "started_at")
        within(v, "started_at", started, txn.now, past=LATE_REGISTRATION, future=CLOCK_SKEW)
        _optional_text(v, "detail", request.detail, 500)
        v.raise_if_any()
        assert started is not None
        self._operator_only(caller)
        known = await txn.conn.fetchval(
            "SELECT 1 FROM attention_points WHERE operator_id = $1 AND code = $2",
            caller.operator,
            request.attention_point_code,
        )
        if known is None:
            raise NotFound("attention_point", request.attention_point_code)
        # The counter row stays locked until commit: concurrent registrations of the operator take
        # numbers one after the other, and a rollback (e.g. the open-event conflict below) returns
        # the number, so the registry has no gaps.
        number = await txn.conn.fetchval(
            """INSERT INTO inoperability_counters (operator_id, last_number) VALUES ($1, 1)
               ON CONFLICT (operator_id) DO UPDATE
               SET last_number = inoperability_counters.last_number + 1
               RETURNING last_number""",
            caller.operator,
        )
        case_id = event_id(caller.operator, number)
        try:
            await txn.conn.execute(
                """INSERT INTO inoperability_events (id, operator_id, number, attention_point_code,
                       request_type, scenario, detail, started_at, registered_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                case_id,
                caller.operator,
                number,
                request.attention_point_code,
                REQUEST_TYPES[request.request_type],
                SCENARIOS[request.scenario],
                request.detail.strip(),
                started,
                txn.now,
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "inoperability_one_open":
                raise
            raise AlreadyExists(
                "inoperability_event",
                f"{request.attention_point_code}/{REQUEST_TYPES[request.request_type]}",
                f"attention point {request.attention_point_code} already has an open"
                f" inoperability event for {REQUEST_TYPES[request.request_type]}",
            ) from None
        row = await self._event(txn.conn, caller.operator, number)
        self._emit(txn, "registered", row, caller.operator)
        return event_message(row)

    async def close_inoperability(
        self, txn: Txn, caller: Caller, request: pb.CloseInoperabilityRequest
    ) -> pb.InoperabilityEvent:
        """Close an open event with its end and a closing reason that fits its scenario."""
        v = Violations()
        _check_number(v, "number", request.number)
        ended = timestamp(v, "ended_at", request, "ended_at")
        within(v, "ended_at", ended, txn.now, past=LATE_REGISTRATION, future=CLOCK_SKEW)
        if request.closing_reason not in CLOSING_REASONS:
            v.add("closing_reason", "required: one of the closing reasons")
        _optional_text(v, "closing_note", request.closing_note, 500)
        v.raise_if_any()
        assert ended is not None
        self._operator_only(caller)
        row = await self._lock_event(txn, caller.operator, request.number)
        if row["ended_at"] is not None:
            raise FailedPrecondition(f"{row['id']} is already closed", subject=row["id"])
        reason = CLOSING_REASONS[request.closing_reason]
        v = Violations()
        if ended <= row["started_at"]:
            v.add("ended_at", f"must be after the start, {row['started_at'].isoformat()}")
        if reason not in REASONS_OF_SCENARIO[row["scenario"]]:
            v.add(
                "closing_reason",
                f"{reason} does not fit the scenario {row['scenario']}; allowed: "
                + ", ".join(sorted(REASONS_OF_SCENARIO[row["scenario"]])),
            )
        if reason == "user_error" and not request.closing_note.strip():
            # "El Jefe o Responsable del canal deberá realizar el cierre con el sustento respectivo."
            v.add("closing_note", "required when closing as an error or test: the justification")
        v.raise_if_any()
        reportable = row["scenario"] != "error_or_test" and reason != "user_error"
        due = (
            self.calendar.end_of_business_days(ended, REPORT_WITHIN_BUSINESS_DAYS)
            if reportable
            else None
        )
        await txn.conn.execute(
            """UPDATE inoperability_events
               SET ended_at = $2, closing_reason = $3, closing_note = $4, closed_at = $5,
                   report_due_at = $6
               WHERE id = $1""",
            row["id"],
            ended,
            reason,
            request.closing_note.strip(),
            txn.now,
            due,
        )
        if due is not None:
            txn.set_deadline(
                FLOW,
                DeadlineKind.REPORT,
                row["id"],
                due,
                "report the event within 3 business days after it (seed 002)",
            )
        row = await self._event(txn.conn, caller.operator, request.number)
        self._emit(txn, "closed", row, caller.operator)
        return event_message(row)

    async def record_critical_transaction(
        self, txn: Txn, caller: Caller, request: pb.RecordCriticalTransactionRequest
    ) -> pb.InoperabilityEvent:
        """A critical transaction was served at the attention point while the event is open."""
        v = Violations()
        _check_number(v, "number", request.number)
        if request.kind not in CRITICAL:
            v.add("kind", "required: BLOCK_STOLEN_OR_LOST or CLAIM_FILING")
        if not REFERENCE.fullmatch(request.reference):
            v.add("reference", "required: the ticket or claim code, 1 to 40 of [A-Za-z0-9./_-]")
        v.raise_if_any()
        self._operator_only(caller)
        row = await self._lock_event(txn, caller.operator, request.number)
        if row["ended_at"] is not None:
            raise FailedPrecondition(
                f"{row['id']} is closed: critical transactions are recorded during the event",
                subject=row["id"],
            )
        await txn.conn.execute(
            """INSERT INTO inoperability_critical_transactions (event_id, kind, reference,
                                                                served_at)
               VALUES ($1, $2, $3, $4)""",
            row["id"],
            CRITICAL[request.kind],
            request.reference,
            txn.now,
        )
        return event_message(await self._event(txn.conn, caller.operator, request.number))

    async def submit_report(
        self, txn: Txn, caller: Caller, request: pb.SubmitInoperabilityReportRequest
    ) -> pb.InoperabilityReport:
        """The operator submits the consolidated report of some of its closed events."""
        v = Violations()
        numbers = list(request.numbers)
        if not numbers:
            v.add("numbers", "required: the numbers of the events reported")
        elif len(numbers) > MAX_REPORT_EVENTS:
            v.add("numbers", f"at most {MAX_REPORT_EVENTS} events per report")
        elif len(set(numbers)) != len(numbers):
            v.add("numbers", "each event at most once")
        for i, number in enumerate(numbers[:MAX_REPORT_EVENTS]):
            _check_number(v, f"numbers[{i}]", number)
        v.raise_if_any()
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
        seq = await txn.conn.fetchval("SELECT nextval('inoperability_report_seq')")
        report_id = f"IR{seq:010d}"
        await txn.conn.execute(
            "INSERT INTO inoperability_reports (id, operator_id, submitted_at) VALUES ($1, $2, $3)",
            report_id,
            caller.operator,
            txn.now,
        )
        for row in rows:
            if txn.now >= row["report_due_at"]:
                await self._breach(txn, row, row["report_due_at"])
            txn.cancel_deadlines(FLOW, row["id"], DeadlineKind.REPORT)
        await txn.conn.execute(
            """UPDATE inoperability_events SET report_id = $3, reported_at = $4
               WHERE operator_id = $1 AND number = ANY($2::bigint[])""",
            caller.operator,
            numbers,
            report_id,
            txn.now,
        )
        reported = [await self._event(txn.conn, caller.operator, n) for n in sorted(numbers)]
        for row in reported:
            self._emit(txn, "reported", row, caller.operator)
        return pb.InoperabilityReport(
            id=report_id,
            operator=caller.operator,
            submitted_at=to_timestamp(txn.now),
            events=[event_message(row) for row in reported],
            over_one_hour_count=sum(1 for row in reported if over_one_hour(row)),
        )

    async def get_inoperability(
        self, caller: Caller, request: pb.GetInoperabilityRequest
    ) -> pb.InoperabilityEvent:
        """An event, for its operator and the regulator."""
        v = Violations()
        operator = request.operator or caller.operator
        check_operator(v, "operator", operator)
        _check_number(v, "number", request.number)
        v.raise_if_any()
        if operator != caller.operator and not caller.is_regulator:
            raise PermissionDenied("an operator reads only its own inoperability registry")
        async with self.core.db.pool.acquire() as conn:
            row = await self._event(conn, operator, request.number)
        return event_message(row)

    async def _breach(self, txn: Txn, row: Any, due: datetime) -> None:
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
        row = await txn.conn.fetchrow(
            "SELECT * FROM inoperability_events WHERE id = $1 FOR UPDATE", deadline.case_id
        )
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
            rows = await conn.fetch(
                f"""SELECT {_EVENT_COLUMNS} FROM {_EVENT_FROM}
                    WHERE e.operator_id = $1 AND e.started_at >= $2 AND e.started_at < $3
                      AND e.scenario <> 'error_or_test'
                      AND e.closing_reason IS DISTINCT FROM 'user_error'
                    ORDER BY e.number""",
                operator,
                since,
                until,
            )
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
            rows = await conn.fetch(
                "SELECT code, name, kind, address, location FROM attention_points"
                " WHERE operator_id = $1 ORDER BY code",
                operator,
            )
        return [dict(row) for row in rows]
