"""A fixed request waiting for its line's installation: cancelled at the installation limit (15
business days from its presentation unless configured), both operators told, its numbers freed,
and no infraction recorded (infraction 5 is not observable: see `installation`). The clock starts
Monday 23 November 2026, 10:00 in Lima; the limit crosses 8 and 9 December, holidays in Peru.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asyncpg import Record

from npc.config import PortabilitySettings
from npc.core.calendar import PERU
from npc.core.errors import FailedPrecondition
from npc.flows.portability import convert as C
from npc.flows.portability import rules as R
from npc.flows.portability.flow import PortabilityFlow
from npc.flows.portability.handler import PortabilityHandler
from npc.store.database import Txn
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import Handlers, block, day, port_request

LIMA = ZoneInfo("America/Lima")
SECOND = timedelta(seconds=1)


def lima(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A Lima wall-clock instant, as UTC."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LIMA).astimezone(UTC)


# From Monday 23 November: 24-27 Nov (4), 30 Nov-4 Dec (9), 7 Dec (10), 10-11 Dec (12, after the
# holidays of 8 and 9 December), 14-16 Dec (15): the limit is the end of Wednesday 16 December.
LIMIT = lima(2026, 12, 17)


def test_installation_limit_counts_business_days_from_the_presentation():
    timeline = R.Timeline(PERU, PortabilitySettings())
    assert timeline.installation_limit(lima(2026, 11, 23, 10)) == LIMIT
    # Presented at Monday's last second, with 5 days: 24-27 and 30 November.
    five = R.Timeline(PERU, replace(PortabilitySettings(), fixed_installation_business_days=5))
    assert five.installation_limit(lima(2026, 11, 23, 23, 59, 59)) == lima(2026, 12, 1)


def _portability(handlers: Handlers) -> PortabilityHandler:
    flow = handlers.flow("portability")
    assert isinstance(flow, PortabilityFlow) and flow.handler is not None
    return flow.handler


async def _fixed_answered(
    handlers: Handlers, number: str, objection: pb.Objection | None = None
) -> Record:
    """A fixed request filed now without its installation date, answered a minute later:
    accepted, or objected with `objection`."""
    portability = _portability(handlers)
    message = port_request(
        handlers.clock, numbers=[block(number)], service=common_pb2.SERVICE_TYPE_FIXED
    )
    submission = C.port_request_submission(message)

    async def submit(txn: Txn) -> Record:
        return await portability.submit_port_request(txn, handlers.caller("claro"), submission)

    filed = await handlers.perform("test.submit", submit)
    await handlers.advance(timedelta(minutes=1))
    answer = C.port_request_answer(
        pb.AnswerPortRequestRequest(
            port_request_id=filed["id"], accept=objection is None, objection=objection
        )
    )

    async def respond(txn: Txn) -> Record:
        return await portability.answer_port_request(txn, handlers.caller("movistar"), answer)

    return await handlers.perform("test.answer", respond)


async def _fixed_admissible(handlers: Handlers, number: str) -> Record:
    accepted = await _fixed_answered(handlers, number)
    assert accepted["state"] == R.State.ADMISSIBLE and accepted["schedule_deadline"] is None
    return accepted


async def _case(handlers: Handlers, case_id: str) -> dict[str, Any]:
    """The request's state, its live numbers, its events and its compliance records."""
    async with handlers.core.db.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT state, closed_at, rejection_reason FROM port_requests WHERE id = $1", case_id
        )
        live = await conn.fetchval(
            "SELECT count(*) FROM port_request_numbers WHERE port_request_id = $1 AND live",
            case_id,
        )
        events = await conn.fetch(
            "SELECT type, code, audience, payload FROM events WHERE case_id = $1"
            " AND type = 'portability.request.cancelled'",
            case_id,
        )
        records = await conn.fetchval(
            "SELECT count(*) FROM compliance_records WHERE case_id = $1", case_id
        )
    assert row is not None
    return {**dict(row), "live": live, "cancelled": [dict(e) for e in events], "records": records}


async def _report_installation(handlers: Handlers, case_id: str, installed: str) -> Record:
    report = C.installation_report(
        pb.ReportInstallationRequest(port_request_id=case_id, installation_date=day(installed))
    )

    async def install(txn: Txn) -> Record:
        return await _portability(handlers).report_installation(
            txn, handlers.caller("claro"), report
        )

    return await handlers.perform("test.install", install)


async def _pending_limits(handlers: Handlers, case_id: str) -> int:
    async with handlers.core.db.pool.acquire() as conn:
        pending: int = await conn.fetchval(
            "SELECT count(*) FROM deadlines WHERE case_id = $1 AND kind = $2"
            " AND coalesce(fired_at, cancelled_at) IS NULL",
            case_id,
            R.DeadlineKind.INSTALLATION.value,
        )
    return pending


async def test_fixed_line_not_installed_by_the_limit_is_cancelled(handlers):
    waiting = await _fixed_admissible(handlers, "12000011")
    installed = await _fixed_admissible(handlers, "12000012")
    assert await _pending_limits(handlers, installed["id"]) == 1
    await _report_installation(handlers, installed["id"], "2026-11-23")
    assert await _pending_limits(handlers, installed["id"]) == 0  # reported: no limit left
    mismatch = pb.Objection(reason=pb.OBJECTION_REASON_DOCUMENT_MISMATCH)
    rejected = await _fixed_answered(handlers, "12000013", mismatch)
    assert rejected["state"] == R.State.REJECTED
    assert await _pending_limits(handlers, rejected["id"]) == 0  # rejected: no limit left

    await handlers.advance(LIMIT - SECOND - handlers.clock.now())
    case = await _case(handlers, waiting["id"])
    assert (case["state"], case["live"], case["cancelled"]) == ("admissible", 1, [])

    await handlers.advance(SECOND)
    case = await _case(handlers, waiting["id"])
    assert case["records"] == 0  # infraction 5 is not observable: never recorded
    assert (case["state"], case["live"], case["closed_at"]) == ("cancelled", 0, LIMIT)
    assert LIMIT.isoformat() in case["rejection_reason"]
    [event] = case["cancelled"]
    assert event["code"] is None
    assert sorted(event["audience"]) == ["claro", "movistar"]
    assert event["payload"]["installation_limit"] == LIMIT.isoformat()


async def test_an_installation_reported_at_the_limit_is_late(handlers):
    """At the limit's instant the report is late, even when it comes before the deadline fires;
    one second earlier it is in time."""
    in_time = await _fixed_admissible(handlers, "12000021")
    late = await _fixed_admissible(handlers, "12000022")
    handlers.clock.set(LIMIT - SECOND)
    reported = await _report_installation(handlers, in_time["id"], "2026-12-16")
    assert reported["installation_date"] is not None and reported["state"] == "admissible"

    # The report races the limit's timer: whichever comes first, the report is refused and the
    # request cancelled once at the limit (before, a report that won the race kept the request).
    handlers.clock.set(LIMIT)
    with pytest.raises(FailedPrecondition):
        await _report_installation(handlers, late["id"], "2026-12-16")
    case = await _case(handlers, late["id"])
    assert (case["state"], case["live"], case["closed_at"]) == ("cancelled", 0, LIMIT)
    [event] = case["cancelled"]  # once: the deadline, firing after, finds it cancelled
    assert sorted(event["audience"]) == ["claro", "movistar"]
    assert await _pending_limits(handlers, late["id"]) == 0
    assert (await _case(handlers, in_time["id"]))["state"] == "admissible"
