"""Flows plug in one way: one base class, one context, typed deadline kinds checked at start,
and servicer methods declared as a table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from enum import StrEnum

import pytest
import redis.asyncio as aioredis

from npc.api.commands import IdempotentCommandRunner
from npc.api.messages import Command, CommandServicer
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.deadlines import Deadline, DeadlineKindMismatch
from npc.core.flow import Flow, FlowContext
from npc.core.runtime import Core
from npc.flows.enabled import FLOWS
from npc.flows.portability.handler import PortabilityHandler
from npc.store.database import Database, Txn
from npc.v1 import portability_pb2 as pb
from npc.v1 import portability_pb2_grpc as pb_grpc
from npc.web.http import flow_web_routes


class Tick(StrEnum):
    REMIND = "tick.remind"
    EXPIRE = "tick.expire"


class TickFlow(Flow):
    """A flow with two declared kinds; `handled` says which get a handler."""

    name = "tick"
    deadline_kinds = Tick

    def __init__(self, context: FlowContext, handled: tuple[str, ...]) -> None:
        super().__init__(context)
        self.handled = handled
        self.fired: list[Deadline] = []

    def setup(self, core: Core) -> None:
        for kind in self.handled:
            core.deadlines.register(self.name, kind, self._fired)

    async def _fired(self, txn: Txn, deadline: Deadline) -> None:
        self.fired.append(deadline)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """A pool on the test's database."""
    db = await Database.connect(settings.database_url, min_size=1, max_size=4)
    yield db
    await db.close()


@pytest.fixture
def context(settings: Settings, clock: FakeClock, database: Database) -> FlowContext:
    """What the process builds every flow from."""
    return FlowContext(settings, IdempotentCommandRunner(database, clock))


@pytest.fixture
async def core_for(
    settings: Settings, clock: FakeClock, database: Database
) -> AsyncIterator[Callable[[list[Flow]], Awaitable[Core]]]:
    """A core on the test's database with the given flows added (not started)."""
    made: list[Core] = []

    async def make(flows: list[Flow]) -> Core:
        redis = aioredis.Redis.from_url(settings.redis_url)
        core = Core(database, redis, clock, redis_prefix="manifest")
        made.append(core)
        core.add_flows(flows)
        return core

    yield make
    for core in made:
        await core.stop()
        await core.redis.aclose()


@pytest.mark.parametrize(
    ("handled", "complaint"),
    [
        ((Tick.REMIND,), "declared without a handler: tick.expire"),
        ((Tick.REMIND, Tick.EXPIRE, "tick.expier"), "handled but not declared: tick.expier"),
    ],
)
async def test_start_fails_when_kinds_and_handlers_differ(
    core_for: Callable[[list[Flow]], Awaitable[Core]],
    context: FlowContext,
    handled: tuple[str, ...],
    complaint: str,
) -> None:
    core = await core_for([TickFlow(context, handled)])
    with pytest.raises(DeadlineKindMismatch) as failure:
        await core.start(background=False)
    assert "flow 'tick'" in str(failure.value)
    assert complaint in str(failure.value)


async def test_enum_kinds_are_stored_as_their_values_and_hooks_default_to_nothing(
    core_for: Callable[[list[Flow]], Awaitable[Core]], context: FlowContext, clock: FakeClock
) -> None:
    flow = TickFlow(context, (Tick.REMIND, Tick.EXPIRE))
    core = await core_for([flow])
    await core.start(background=False)  # the default start hook: nothing to do
    assert flow_web_routes(core) == []  # the default web_routes: no pages
    assert flow.grpc_services() == []
    async with core.db.transaction("test", clock.now()) as txn:
        txn.set_deadline("tick", Tick.REMIND, "c1", clock.now() + timedelta(minutes=1), "r")
        txn.set_deadline("tick", Tick.EXPIRE, "c2", clock.now() + timedelta(minutes=1), "r")
    async with core.db.pool.acquire() as conn:
        stored = await conn.fetch("SELECT kind FROM deadlines WHERE flow = 'tick' ORDER BY kind")
    # StrEnum members land as plain text: the rows of earlier releases keep matching.
    assert [row["kind"] for row in stored] == ["tick.expire", "tick.remind"]
    async with core.db.transaction("test", clock.now()) as txn:
        txn.cancel_deadlines("tick", "c2", Tick.EXPIRE)
    clock.advance(timedelta(minutes=2))
    await core.settle()
    assert [(d.case_id, d.kind) for d in flow.fired] == [("c1", Tick.REMIND)]


async def test_every_enabled_flow_is_built_from_one_context_and_handles_what_it_declares(
    core_for: Callable[[list[Flow]], Awaitable[Core]], context: FlowContext
) -> None:
    flows = [flow_class(context) for flow_class in FLOWS]
    core = await core_for(flows)
    assert sorted(core.flows) == sorted(f.name for f in flows)
    for flow in flows:
        assert flow.deadline_kinds is not None, flow.name
        core.deadlines.check_kinds(flow.name, flow.deadline_kinds)  # raises on a mismatch


def test_a_table_entry_for_an_rpc_the_service_lacks_fails_at_import() -> None:
    with pytest.raises((TypeError, RuntimeError)) as failure:

        class Typo(CommandServicer, pb_grpc.PortabilityServiceServicer):
            SubmitPortRequests = Command(PortabilityHandler.submit_port_request, pb.PortRequest)

    # Python 3.11 wraps what __set_name__ raises in a RuntimeError.
    said = f"{failure.value} {failure.value.__cause__}"
    assert "Typo.SubmitPortRequests is not an RPC of its service" in said
