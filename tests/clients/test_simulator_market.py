"""Simulated operators driven by a traffic profile against a real clearinghouse: the hour's
arrivals are filed between the right operators, and each donor answers as its profile says."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from npc.admin import DEMO_RANGES
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc_clients import OperatorClient
from npc_clients.simulator import (
    ChangeWindow,
    Delay,
    Market,
    NumberRange,
    OperatorProfile,
    SimulatedOperator,
)
from npc_clients.traffic import (
    PERU_2024,
    OperatorTraffic,
    TrafficGenerator,
    TrafficProfile,
    arrivals,
    drive,
)
from tests.helpers import advance, settle

RANGES = [
    NumberRange(op, service, int(first), int(last)) for op, service, first, last in DEMO_RANGES
]
SPEED = 600  # the profiles' clearinghouse seconds become wall milliseconds


@contextlib.asynccontextmanager
async def simulated_market(
    app: Clearinghouse, clock: FakeClock, profile: TrafficProfile, market: Market
) -> AsyncIterator[dict[str, SimulatedOperator]]:
    """One simulated operator per operator of `profile`, following its events, filing on demand."""
    target = f"127.0.0.1:{app.grpc_port}"
    simulators: dict[str, SimulatedOperator] = {}
    for index, operator in enumerate(profile.operators):
        client = OperatorClient(
            target, f"dev-token-{operator.operator}", operator=operator.operator
        )
        simulators[operator.operator] = SimulatedOperator(
            client,
            market,
            RANGES,
            counterparts=profile.names,
            profile=operator.wall_profile(SPEED),
            window=ChangeWindow(),
            now=clock.now,
            seed=index,
            file_requests=False,
        )
    try:
        for simulator in simulators.values():
            await simulator.start()
        yield simulators
    finally:
        for simulator in simulators.values():
            await simulator.stop()
            await simulator.client.close()


async def until(app: Clearinghouse, condition: Callable[[], bool], limit: float = 20.0) -> None:
    """Let the clearinghouse deliver its events until `condition` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "the simulated market did not get there in time"
        await settle(app)
        await asyncio.sleep(0.02)


async def fetch(settings: Settings, query: str) -> list[asyncpg.Record]:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


@pytest.mark.timeout(60)
async def test_an_hour_of_traffic_is_filed_between_the_profiles_operators(
    app: Clearinghouse, clock: FakeClock, settings: Settings
) -> None:
    # No silence and no late answers: every request gets its answer while the fake clock stands.
    profile = replace(
        PERU_2024,
        operators=tuple(
            replace(o, behaviour=replace(o.behaviour, silence_rate=0.0))
            for o in PERU_2024.operators
        ),
    )
    start = clock.now()  # Monday 10:00 in Lima
    expected = list(arrivals(profile, start, start + timedelta(hours=1), seed=7, scale=0.01))
    assert 8 <= len(expected) <= 40
    market = Market()
    async with simulated_market(app, clock, profile, market) as simulators:
        generator = TrafficGenerator(profile, start, seed=7, scale=0.01)
        filing = asyncio.get_running_loop().create_task(
            drive(generator, simulators, clock.now, poll=0.01)
        )
        try:
            clock.advance(timedelta(hours=1))
            stats = market.stats
            await until(app, lambda: stats.filed == len(expected))
            await until(app, lambda: stats.accepted + stats.objected + stats.late == stats.filed)
        finally:
            filing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await filing
    assert market.stats.errors == 0
    assert market.stats.offered == len(expected) and market.stats.declined == 0
    rows = await fetch(settings, "SELECT recipient, donor FROM port_requests")
    assert Counter((r["recipient"], r["donor"]) for r in rows) == Counter(
        (a.recipient, a.donor) for a in expected
    )
    answered = await fetch(
        settings, "SELECT count(*) AS n FROM port_requests WHERE answered_at IS NOT NULL"
    )
    assert answered[0]["n"] == len(expected) - market.stats.late


@pytest.mark.timeout(60)
async def test_silent_donors_never_answer_and_objecting_donors_object(
    app: Clearinghouse, clock: FakeClock, settings: Settings
) -> None:
    def behaves(name: str, **rates: Any) -> OperatorTraffic:
        operator = PERU_2024.operator(name)
        return replace(operator, behaviour=replace(operator.behaviour, **rates))

    profile = replace(
        PERU_2024,
        operators=(
            behaves("claro", silence_rate=0.0),
            behaves("movistar", silence_rate=1.0, objection_rate=0.0),
            behaves("entel", silence_rate=0.0, objection_rate=1.0, debt_share=0.0),
            behaves("bitel", silence_rate=0.0, objection_rate=0.0),
        ),
    )
    market = Market()
    async with simulated_market(app, clock, profile, market) as simulators:
        claro = simulators["claro"]
        for donor in ("movistar", "entel", "bitel"):
            for _ in range(4):
                assert claro.file_to(donor)
        assert not claro.file_to("claro")  # never its own donor
        stats = market.stats
        await until(app, lambda: stats.filed == 12)
        await until(app, lambda: stats.silent == 4 and stats.objected == 4 and stats.accepted == 4)
        rows = await fetch(
            settings,
            "SELECT donor, answered_at IS NOT NULL AS answered, objection IS NOT NULL AS objected"
            " FROM port_requests",
        )
        by_donor = {
            donor: Counter((r["answered"], r["objected"]) for r in rows if r["donor"] == donor)
            for donor in ("movistar", "entel", "bitel")
        }
        assert by_donor == {
            "movistar": Counter({(False, False): 4}),
            "entel": Counter({(True, True): 4}),
            "bitel": Counter({(True, False): 4}),
        }
        # The donor's 5 minutes run out: the clearinghouse takes the silence as no objection.
        await advance(app, clock, timedelta(minutes=5))
        silent = await fetch(
            settings,
            "SELECT count(*) AS n FROM port_requests WHERE donor = 'movistar' AND donor_silent",
        )
        assert silent[0]["n"] == 4


@pytest.mark.timeout(60)
async def test_a_recipient_whose_schedules_arrive_late_aims_further_ahead(
    app: Clearinghouse, clock: FakeClock, settings: Settings
) -> None:
    """A recipient whose clock runs 90 s behind the clearinghouse's schedules a minute ahead of
    it, which the clearinghouse finds in the past: it aims two minutes ahead, and from then on
    starts there for every case, coming back closer only while it is accepted at once."""
    clock.advance(timedelta(hours=14, minutes=10))  # Tuesday 00:10 in Lima: the window is open
    behaviour = OperatorProfile(
        answer_delay=Delay(0.01),
        objection_rate=0.0,
        silence_rate=0.0,
        fixed_share=0.0,
        schedule_delay=Delay(0.0),
    )
    market = Market()

    def simulated(operator: str, counterpart: str, now: Callable[[], Any]) -> SimulatedOperator:
        return SimulatedOperator(
            OperatorClient(
                f"127.0.0.1:{app.grpc_port}", f"dev-token-{operator}", operator=operator
            ),
            market,
            RANGES,
            counterparts=[counterpart],
            profile=behaviour,
            now=now,
            seed=len(operator),
            file_requests=False,
        )

    recipient = simulated("claro", "movistar", lambda: clock.now() - timedelta(seconds=90))
    donor = simulated("movistar", "claro", clock.now)
    try:
        for simulator in (recipient, donor):
            await simulator.start()
        assert recipient.file_to("movistar")
        await until(app, lambda: market.stats.scheduled == 1)
        assert recipient.schedule_lead == timedelta(minutes=2)
        assert recipient.file_to("movistar")
        await until(app, lambda: market.stats.scheduled == 2)
        assert recipient.schedule_lead == timedelta(minutes=2) * 0.95
    finally:
        for simulator in (recipient, donor):
            await simulator.stop()
            await simulator.client.close()
    assert market.stats.errors == 0
    rows = await fetch(
        settings, "SELECT state, scheduled_at FROM port_requests ORDER BY submitted_at, id"
    )
    assert [r["state"] for r in rows] == ["scheduled", "scheduled"]
    # Each accepted instant is the recipient's clock plus the lead it had learnt by then.
    assert rows[0]["scheduled_at"] == clock.now() + timedelta(seconds=30)
    assert rows[1]["scheduled_at"] == clock.now() + timedelta(seconds=30)


async def test_a_recipient_files_no_more_than_it_is_allowed_in_flight_and_more_once_raised(
    app: Clearinghouse, clock: FakeClock
) -> None:
    """A load test's ramp-up: with nobody answering as donor, every request stays open, so what
    was filed is exactly what the limit allowed at each step."""
    market = Market()
    recipient = SimulatedOperator(
        OperatorClient(f"127.0.0.1:{app.grpc_port}", "dev-token-claro", operator="claro"),
        market,
        RANGES,
        counterparts=["movistar"],
        profile=OperatorProfile(fixed_share=0.0),
        now=clock.now,
        seed=3,
    )
    recipient.allow_in_flight(2)
    try:
        await recipient.start()
        await until(app, lambda: market.stats.filed == 2)
        await asyncio.sleep(0.2)  # room for a third filing, were the limit not kept
        await settle(app)
        assert (market.stats.filed, market.stats.in_flight) == (2, 2)
        recipient.allow_in_flight(5)
        await until(app, lambda: market.stats.filed == 5)
        await asyncio.sleep(0.2)
        await settle(app)
        assert (market.stats.filed, market.stats.in_flight) == (5, 5)
    finally:
        await recipient.stop()
        await recipient.client.close()
    assert market.stats.errors == 0
