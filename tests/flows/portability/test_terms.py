"""The portability terms as the handler applies them (issue 15, items 1, 2, 5 and 8), through the
`handlers` fixture: the flow's handler on the real database with the fake clock, no gRPC.

Each test moves the clock to one second before and to each instant, and checks the request's
state, the refusal (FLEP is OUT_OF_RANGE, CNPF a kept FAILED_PRECONDITION) and the compliance
ledger's record with its evidence, or its absence. Instants are Lima wall time (UTC-5 all year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asyncpg import Record

from npc.api.event_bodies import BODIES
from npc.core.errors import FailedPrecondition, OutOfRange
from npc.flows.portability import convert as C
from npc.flows.portability import model as M
from npc.flows.portability.flow import PortabilityFlow
from npc.flows.portability.handler import PortabilityHandler
from npc.flows.portability.rules import ExecutionStep, State
from npc.v1 import common_pb2, events_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import Handlers, block, day, port_request, rid, ts

LIMA = ZoneInfo("America/Lima")
SECOND = timedelta(seconds=1)


def lima(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A Lima wall-clock instant, as UTC."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LIMA).astimezone(UTC)


class Port:
    """One recipient (claro) and one donor (movistar) driving the portability handler."""

    def __init__(self, handlers: Handlers) -> None:
        flow = handlers.flow("portability")
        assert isinstance(flow, PortabilityFlow) and flow.handler is not None
        self.handlers = handlers
        self.handler: PortabilityHandler = flow.handler
        self.claro = handlers.caller("claro")
        self.movistar = handlers.caller("movistar")

    async def at(self, instant: datetime) -> None:
        """Move the clock to `instant` and fire what fell due."""
        self.handlers.clock.set(instant)
        await self.handlers.core.settle()

    async def file(self, number: str, received_at: datetime) -> Record:
        """SP for one mobile number the subscriber presented at `received_at`, registered now."""
        wire = port_request(self.handlers.clock, numbers=[block(number)])
        wire.received_at.CopyFrom(ts(received_at))
        command = C.port_request_submission(wire)
        return await self.handlers.perform(
            "SubmitPortRequest",
            lambda txn: self.handler.submit_port_request(txn, self.claro, command),
        )

    async def answer(self, case_id: str, *, debt: bool = False) -> Record:
        """SAC, or OCC for a debt."""
        wire = pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=case_id, accept=True)
        if debt:
            wire = pb.AnswerPortRequestRequest(
                request_id=rid(),
                port_request_id=case_id,
                objection=pb.Objection(
                    reason=pb.OBJECTION_REASON_DEBT,
                    debt=pb.Debt(
                        owed=common_pb2.Money(amount="89.90", currency="PEN"),
                        due_date=day("2027-07-01"),
                        bill_number="B-1",
                    ),
                ),
            )
        command = C.port_request_answer(wire)
        return await self.handlers.perform(
            "AnswerPortRequest",
            lambda txn: self.handler.answer_port_request(txn, self.movistar, command),
        )

    async def prove(self, case_id: str, paid_at: datetime) -> Record:
        """APD: the objected debt was paid at `paid_at`."""
        command = M.SubmitDebtPaymentProof(case_id, "R-1", paid_at)
        return await self.handlers.perform(
            "SubmitDebtPaymentProof",
            lambda txn: self.handler.submit_debt_payment_proof(txn, self.claro, command),
        )

    async def schedule(self, case_id: str, instant: datetime) -> Record:
        """PP for `instant`."""
        command = M.SchedulePort(case_id, instant)
        return await self.handlers.perform(
            "SchedulePort", lambda txn: self.handler.schedule_port(txn, self.claro, command)
        )

    async def confirm(
        self, case_id: str, step: ExecutionStep, done_at: datetime | None = None
    ) -> Record:
        """A party confirms now its step, done at `done_at` (now when None)."""
        caller = self.movistar if step == ExecutionStep.DONOR_DISABLED else self.claro
        command = M.ConfirmPortExecution(case_id, step, done_at)
        return await self.handlers.perform(
            "ConfirmPortExecution",
            lambda txn: self.handler.confirm_port_execution(txn, caller, command),
        )

    async def get(self, case_id: str) -> Record:
        """The request as its recipient reads it."""
        return await self.handler.get_port_request(self.claro, M.GetPortRequest(case_id))

    async def records(self, case_id: str, rule: str) -> list[dict[str, Any]]:
        """The ledger's records of `rule` on the case."""
        async with self.handlers.core.db.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT operator_id, infraction, severity, due_at, evidence"
                " FROM compliance_records WHERE case_id = $1 AND rule = $2 ORDER BY id",
                case_id,
                rule,
            )
        return [dict(r) for r in rows]

    async def change(self, case_id: str, code: str) -> events_pb2.PortRequestChange:
        """The typed body of the case's event with ABDCP `code`, as operators receive it."""
        async with self.handlers.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT type, payload FROM events WHERE case_id = $1 AND code = $2",
                case_id,
                code,
            )
        assert row is not None, f"no {code} for {case_id}"
        field, convert = BODIES[row["type"]]
        assert field == "port_request"
        body = convert(row["payload"])
        assert isinstance(body, events_pb2.PortRequestChange)
        return body


@pytest.fixture
def port(handlers: Handlers) -> Port:
    return Port(handlers)


# ------------------------------------------------------------------ item 1: late admissibility


@dataclass(frozen=True)
class LateAdmissible:
    """A request declared admissible at or after 22:00, and the limits it must get."""

    received: datetime
    how: str  # "accepted" at `admissible`, donor "silent" until then, or "debt" lifted then
    admissible: datetime
    deadline: datetime  # 22:00 of the next day
    limit: datetime  # the end of the first change window closing after it
    next_window: datetime  # a schedule there is beyond the limit: FLEP


LATE = {
    # Ordinary Monday; the donor accepts at 22:00 exactly.
    "monday-at-2200": LateAdmissible(
        lima(2026, 11, 23, 21, 56),
        "accepted",
        lima(2026, 11, 23, 22),
        lima(2026, 11, 24, 22),
        lima(2026, 11, 25, 6),
        lima(2026, 11, 26, 0),
    ),
    # Weekend: Friday 21:58, the donor silent, admissible at 22:03; the 24 hours from the
    # presentation end Saturday 06:00, the schedule may come until Saturday 22:00.
    "friday-silent": LateAdmissible(
        lima(2026, 11, 27, 21, 58),
        "silent",
        lima(2026, 11, 27, 22, 3),
        lima(2026, 11, 28, 22),
        lima(2026, 11, 29, 6),
        lima(2026, 11, 30, 0),
    ),
    # Holiday: a debt objection lifted on Monday 26 July 2027 at 22:30; executable in the window
    # of Wednesday 28 (Independence Day).
    "debt-lifted-before-a-holiday": LateAdmissible(
        lima(2027, 7, 26, 10),
        "debt",
        lima(2027, 7, 26, 22, 30),
        lima(2027, 7, 27, 22),
        lima(2027, 7, 28, 6),
        lima(2027, 7, 29, 0),
    ),
}


async def _late_admissible(port: Port, case: LateAdmissible, *numbers: str) -> list[Record]:
    """One request per number, presented and registered at `case.received`, admissible at
    `case.admissible` as `case.how` says."""
    await port.at(case.received)
    ids = [(await port.file(number, case.received))["id"] for number in numbers]
    if case.how == "debt":
        await port.at(case.received + timedelta(minutes=1))
        for case_id in ids:
            await port.answer(case_id, debt=True)
    await port.at(case.admissible)  # "silent": the donor's 5 minutes end now
    for case_id in ids:
        if case.how == "accepted":
            await port.answer(case_id)
        elif case.how == "debt":
            await port.prove(case_id, case.admissible - timedelta(hours=1))
    rows = [await port.get(case_id) for case_id in ids]
    for row in rows:
        assert row["state"] == State.ADMISSIBLE and row["admissible_at"] == case.admissible
        assert (row["schedule_deadline"], row["execution_limit"]) == (case.deadline, case.limit)
    return rows


@pytest.mark.parametrize("case", LATE.values(), ids=LATE.keys())
async def test_late_evening_admissibility_can_be_scheduled_until_its_deadline(
    port: Port, case: LateAdmissible
) -> None:
    """One second before the scheduling limit, a schedule beyond the execution limit is refused
    (FLEP, OUT_OF_RANGE) and one inside it accepted; an unscheduled request is cancelled (CNPF)
    at the limit, the recipient booked for infraction 24, not a second earlier. SPR carries the
    donor's answer (item 8)."""
    scheduled, unscheduled = await _late_admissible(port, case, "940000801", "940000802")
    # Item 8: SPR says whether the donor was silent and when it answered (OCC for a debt).
    spr = (await port.change(scheduled["id"], "SPR")).port_request
    assert spr.donor_silent == (case.how == "silent")
    answered = spr.answered_at.ToDatetime(tzinfo=UTC) if spr.HasField("answered_at") else None
    assert answered == scheduled["answered_at"]
    assert (
        answered
        == {
            "accepted": case.admissible,
            "silent": None,
            "debt": case.received + timedelta(minutes=1),
        }[case.how]
    )
    assert spr.received_at.ToDatetime(tzinfo=UTC) == case.received

    await port.at(case.deadline - SECOND)
    with pytest.raises(OutOfRange):
        await port.schedule(scheduled["id"], case.next_window)
    assert (await port.schedule(scheduled["id"], case.limit - SECOND))["state"] == State.SCHEDULED
    assert (await port.get(unscheduled["id"]))["state"] == State.ADMISSIBLE
    assert await port.records(unscheduled["id"], "mobile_schedule") == []

    await port.at(case.deadline)
    assert (await port.get(unscheduled["id"]))["state"] == State.CANCELLED
    [record] = await port.records(unscheduled["id"], "mobile_schedule")
    assert (record["operator_id"], record["infraction"]) == ("claro", 24)
    assert record["due_at"] == case.deadline
    assert record["evidence"] == {
        "admissible_at": case.admissible.isoformat(),
        "deadline": case.deadline.isoformat(),
    }
    assert await port.records(scheduled["id"], "mobile_schedule") == []
    with pytest.raises(FailedPrecondition):  # too late: CNPF stands
        await port.schedule(unscheduled["id"], case.limit - SECOND)


# ------------------------------------------------------------------ item 2: from the presentation


async def test_late_registration_is_infraction_20_from_the_instant_its_grace_ends(
    port: Port,
) -> None:
    """Registered 15 minutes (the clearinghouse's grace for "inmediata") after the presentation
    less one second: no record; at 15 minutes: infraction 20 with its evidence."""
    received = lima(2026, 11, 23, 10)
    due = received + timedelta(minutes=15)
    await port.at(due - SECOND)
    in_time = await port.file("940000821", received)
    assert await port.records(in_time["id"], "registration") == []

    await port.at(due)
    late = await port.file("940000822", received)
    [record] = await port.records(late["id"], "registration")
    assert (record["operator_id"], record["infraction"], record["severity"]) == (
        "claro",
        20,
        "leve",
    )
    assert record["due_at"] == due
    assert record["evidence"] == {
        "received_at": received.isoformat(),
        "registered_at": due.isoformat(),
    }


PRESENTED = {
    # Presented Friday 23:50, registered Saturday 00:10 (the day before a Sunday): counted from the
    # registration the limit was Tuesday 06:00; from the presentation, Saturday 06:00, and once
    # admissible (schedule by Saturday 22:00) Sunday 06:00.
    "weekend": (
        lima(2026, 11, 27, 23, 50),
        lima(2026, 11, 28, 0, 10),
        lima(2026, 11, 28, 6),
        lima(2026, 11, 29, 6),
        lima(2026, 11, 30, 1),
    ),
    # Presented Monday 26 July 2027 23:55, registered Tuesday 00:20 (the day before Independence
    # Day): from the registration, Saturday 31 July 06:00; from the presentation, Tuesday 06:00,
    # then Wednesday 06:00 once admissible.
    "holiday": (
        lima(2027, 7, 26, 23, 55),
        lima(2027, 7, 27, 0, 20),
        lima(2027, 7, 27, 6),
        lima(2027, 7, 28, 6),
        lima(2027, 7, 30, 1),
    ),
}


@pytest.mark.parametrize(
    ("received", "registered", "limit", "admissible_limit", "beyond"),
    PRESENTED.values(),
    ids=PRESENTED.keys(),
)
async def test_a_late_registration_does_not_lengthen_the_subscribers_wait(
    port: Port,
    received: datetime,
    registered: datetime,
    limit: datetime,
    admissible_limit: datetime,
    beyond: datetime,
) -> None:
    await port.at(registered)
    filed = await port.file("940000831", received)
    assert filed["execution_limit"] == limit
    [record] = await port.records(filed["id"], "registration")
    assert record["infraction"] == 20
    await port.at(registered + timedelta(minutes=1))
    admissible = await port.answer(filed["id"])
    assert admissible["execution_limit"] == admissible_limit
    with pytest.raises(OutOfRange):  # what counting from the registration allowed: FLEP
        await port.schedule(filed["id"], beyond)
    scheduled = await port.schedule(filed["id"], admissible_limit - timedelta(hours=1))
    assert scheduled["state"] == State.SCHEDULED


# ------------------------------------------------------------------ item 5: execution timing


async def _executed(port: Port, number: str, scheduled_at: datetime) -> str:
    """Filed and accepted now (Monday 23 Nov 2026, 10:00), scheduled for `scheduled_at`."""
    filed = await port.file(number, port.handlers.clock.now())
    await port.answer(filed["id"])
    await port.schedule(filed["id"], scheduled_at)
    return str(filed["id"])


async def test_donor_disables_at_the_scheduled_instant_within_its_tolerance(port: Port) -> None:
    """Infraction 27 is due 15 minutes (the default tolerance) after the scheduled instant, not
    at the end of the window: a confirmation one second before is in time, none is a record."""
    scheduled_at = lima(2026, 11, 24, 1)
    due = scheduled_at + timedelta(minutes=15)
    in_time = await _executed(port, "940000841", scheduled_at)
    silent = await _executed(port, "940000842", scheduled_at)

    await port.at(due - SECOND)
    assert (await port.get(silent))["state"] == State.EXECUTED
    await port.confirm(in_time, ExecutionStep.DONOR_DISABLED)
    assert await port.records(silent, "donor_disable") == []

    await port.at(due)
    [record] = await port.records(silent, "donor_disable")
    assert (record["operator_id"], record["infraction"], record["due_at"]) == ("movistar", 27, due)
    assert record["evidence"] == {
        "scheduled_at": scheduled_at.isoformat(),
        "deadline": due.isoformat(),
        "confirmed_at": None,
    }
    await port.at(lima(2026, 11, 24, 7))
    assert await port.records(in_time, "donor_disable") == []


async def test_recipient_outage_never_runs_past_the_end_of_the_window(port: Port) -> None:
    """Scheduled at 05:00 in the 00:00-06:00 window, the recipient's 3 hours end at 06:00 (not
    08:00): infraction 28 at 06:00, nothing at 05:59:59."""
    scheduled_at = lima(2026, 11, 24, 5)
    case = await _executed(port, "940000851", scheduled_at)
    await port.at(scheduled_at + timedelta(minutes=5))
    await port.confirm(case, ExecutionStep.DONOR_DISABLED)

    await port.at(lima(2026, 11, 24, 5, 59, 59))
    assert await port.records(case, "recipient_enable") == []

    await port.at(lima(2026, 11, 24, 6))
    [record] = await port.records(case, "recipient_enable")
    assert (record["operator_id"], record["infraction"]) == ("claro", 28)
    assert record["due_at"] == lima(2026, 11, 24, 6)
    assert record["evidence"]["deadline"] == lima(2026, 11, 24, 6).isoformat()
    assert await port.records(case, "donor_disable") == []


async def test_a_step_done_or_confirmed_at_its_deadline_is_late(port: Port) -> None:
    """A step done and confirmed one second before its deadline is in time; one the party says
    it did at the deadline's instant is late (infraction 27), and so is one confirmed at that
    instant, whether its timer fired first or not (infraction 28): one record each."""
    scheduled_at = lima(2026, 11, 24, 1)
    cases = [await _executed(port, f"94000086{i}", scheduled_at) for i in range(4)]
    disable_due = scheduled_at + timedelta(minutes=15)
    enable_due = scheduled_at + timedelta(hours=3)
    await port.at(disable_due - SECOND)
    for case in (cases[0], cases[2], cases[3]):
        await port.confirm(case, ExecutionStep.DONOR_DISABLED)
    await port.confirm(cases[1], ExecutionStep.DONOR_DISABLED, done_at=disable_due)
    await port.at(enable_due - SECOND)
    await port.confirm(cases[2], ExecutionStep.RECIPIENT_ENABLED)
    port.handlers.clock.set(enable_due)  # the confirmation races the deadline's timer
    await port.confirm(cases[3], ExecutionStep.RECIPIENT_ENABLED)
    await port.at(lima(2026, 11, 24, 7))

    assert await port.records(cases[0], "donor_disable") == []
    assert await port.records(cases[2], "recipient_enable") == []
    [disabled] = await port.records(cases[1], "donor_disable")
    assert (disabled["operator_id"], disabled["infraction"], disabled["due_at"]) == (
        "movistar",
        27,
        disable_due,
    )
    assert disabled["evidence"]["done_at"] == disable_due.isoformat()
    assert disabled["evidence"]["confirmed_at"] == (disable_due - SECOND).isoformat()
    [enabled] = await port.records(cases[3], "recipient_enable")
    assert (enabled["operator_id"], enabled["infraction"], enabled["due_at"]) == (
        "claro",
        28,
        enable_due,
    )
