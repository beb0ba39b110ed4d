"""Flows plug in one way: one base class, one context, typed deadline kinds and web routes checked
at start, and servicer methods declared as a table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from enum import StrEnum

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from npc.api.commands import IdempotentCommandRunner
from npc.api.messages import Command, CommandServicer
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.deadlines import Deadline, DeadlineKindMismatch
from npc.core.flow import Audience, Flow, FlowContext, WebRoute
from npc.core.runtime import Core
from npc.flows.enabled import FLOWS
from npc.flows.portability.handler import PortabilityHandler
from npc.store.database import Database, Txn
from npc.v1 import portability_pb2 as pb
from npc.v1 import portability_pb2_grpc as pb_grpc
from npc.web.http import build_app, flow_web_routes
from npc.web.site import (
    LookupPage,
    Report,
    ReportQuery,
    StatusView,
    WebRoutes,
    WebRoutesMismatch,
    check_web_routes,
)


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
    assert settings.database_url is not None
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
        assert settings.redis_url is not None
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


async def _no_status(values: dict[str, str]) -> StatusView | None:
    return None


async def _no_rows(query: ReportQuery) -> list[dict[str, str]]:
    return []


PAGE = LookupPage("/tick/consulta", "Tick", "", (), _no_status)
REPORT = Report("tick-resumen", "Tick", "", (), _no_rows, operators_see_own=True)


async def _confirm(request: web.Request) -> web.Response:
    return web.Response()


def test_served_routes_are_read_in_the_manifests_terms() -> None:
    routes = WebRoutes(
        pages=[PAGE],
        reports=[REPORT],
        routes=[web.get("/tick/confirmar", _confirm), web.post("/tick/confirmar", _confirm)],
    )
    assert set(routes.served()) == {
        WebRoute("/tick/consulta", frozenset({"GET", "POST"}), Audience.PUBLIC),
        WebRoute("/reportes/tick-resumen", frozenset({"GET"}), Audience.OPERATORS),
        WebRoute("/tick/confirmar", frozenset({"GET", "POST"}), Audience.PUBLIC),
    }
    assert WebRoute.page("/tick/confirmar") in routes.served()
    assert WebRoute.report("tick-resumen").audience == Audience.REGULATOR


def test_routes_served_and_declared_must_match_and_no_path_is_claimed_twice() -> None:
    page, report = WebRoute.page("/tick/consulta"), WebRoute.report("tick-resumen")
    check_web_routes({"tick": ([page, report], [page, report]), "tock": ([], [])})
    with pytest.raises(WebRoutesMismatch) as failure:
        check_web_routes(
            {
                # Serves a page it does not declare, declares a report it does not serve.
                "tick": ([report], [page]),
                # Declares the report for the regulator, serves it to operators too.
                "tock": (
                    [WebRoute.report("tock-resumen")],
                    [WebRoute.report("tock-resumen", operators_see_own=True)],
                ),
                # Claims tick's report and the site's home page.
                "tack": ([report, WebRoute.page("/")], [report, WebRoute.page("/")]),
            }
        )
    said = str(failure.value)
    assert "flow 'tick' serves GET POST /tick/consulta (public) without declaring it" in said
    assert (
        "flow 'tick' declares GET /reportes/tick-resumen (regulator) but does not serve it" in said
    )
    assert (
        "flow 'tock' declares GET /reportes/tock-resumen (regulator) "
        "but serves GET /reportes/tock-resumen (operators)"
    ) in said
    assert "flows 'tick' and 'tack' both claim /reportes/tick-resumen" in said
    assert "flow 'tack' claims /, one of the site's own paths" in said


class PagesFlow(TickFlow):
    """A flow serving a page and a report but declaring only the page."""

    web = (WebRoute.page("/tick/consulta"),)

    def web_routes(self) -> WebRoutes:
        return WebRoutes(pages=[PAGE], reports=[REPORT])


async def test_the_site_serves_what_the_manifests_declare_and_refuses_to_start_otherwise(
    core_for: Callable[[list[Flow]], Awaitable[Core]], context: FlowContext
) -> None:
    core = await core_for([flow_class(context) for flow_class in FLOWS])
    app = build_app(core)
    served = {resource.canonical for resource in app.router.resources()}
    for flow in core.flows.values():
        for route in flow.web:
            if route.audience == Audience.PUBLIC:
                assert route.path in served, (flow.name, route)
    declared = {route.path for flow in core.flows.values() for route in flow.web}
    assert "/portabilidad/consulta" in declared and "/reportes/sgu-operadores" in declared

    rogue = await core_for([PagesFlow(context, (Tick.REMIND, Tick.EXPIRE))])
    with pytest.raises(WebRoutesMismatch) as failure:
        build_app(rogue)
    assert "flow 'tick' serves GET /reportes/tick-resumen (operators) without declaring it" in str(
        failure.value
    )
