"""A regulator acts only on its own country: the SIC assigns no CUN range to a Peruvian operator,
OSIPTEL records no outage of a Colombian provider, and neither reads the other's reports or
events."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import date

import aiohttp
import grpc
import pytest
import pytest_asyncio

from npc.core import holidays
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import events_pb2, pqr_pb2, sgu_pb2
from tests.authz.harness import invoke, snapshot
from tests.flows.pqr.conftest import filing
from tests.helpers import collect, field_violations, head, port_request, rid, settle, ts


@pytest.fixture
async def channel(app, clock) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the clearinghouse, with the Colombian providers and the SIC registered."""
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as opened:
        yield opened


@pytest.fixture
async def http(app) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session on the clearinghouse's web port."""
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{app.http_port}") as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_http(module_app, module_clock) -> AsyncIterator[aiohttp.ClientSession]:
    """`http` on the module's shared clearinghouse, the Colombian identities registered (as
    `channel` does), for the cases that only read."""
    await seed_colombia(module_app.core.db, module_clock.now())
    await module_app.authenticator.load()
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{module_app.http_port}"
    ) as session:
        yield session


def basic(identity: str) -> dict[str, str]:
    """The report pages' login: any user name, the API token as password."""
    secret = base64.b64encode(f"{identity}:dev-token-{identity}".encode()).decode()
    return {"Authorization": f"Basic {secret}"}


async def test_a_regulator_names_only_operators_of_its_own_country(app, clock, channel) -> None:
    await settle(app)
    before = await snapshot(app)
    with pytest.raises(grpc.aio.AioRpcError) as peruvian:
        await invoke(
            channel,
            "PqrService/AssignCunRange",
            pqr_pb2.AssignCunRangeRequest(
                request_id=rid(), provider="claro", first="5000000000", last="5999999999"
            ),
            "sic",
        )
    assert peruvian.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as colombian:
        await invoke(
            channel,
            "SguService/RecordOutage",
            sgu_pb2.RecordOutageRequest(
                request_id=rid(),
                operator="tigo",
                starts_at=ts(clock.now().replace(hour=10)),
                ends_at=ts(clock.now().replace(hour=12)),
                reason="caída del sistema de atención",
            ),
            "osiptel",
        )
    assert colombian.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "operator" in field_violations(colombian.value)
    await settle(app)
    assert await snapshot(app) == before


@pytest.mark.parametrize(
    ("identity", "status"),
    [("osiptel", 200), ("claro", 200), ("sic", 404), ("claro-co", 404)],
)
@pytest.mark.asyncio(loop_scope="module")  # reads only: one clearinghouse for every identity
async def test_peruvian_reports_are_for_peruvian_identities(module_http, identity, status) -> None:
    http = module_http
    async with http.get(
        "/reportes/inoperatividad-eventos",
        params={"desde": "2026-11-23", "hasta": "2026-11-23"},
        headers=basic(identity),
    ) as response:
        assert response.status == status
    async with http.get("/reportes", headers=basic(identity)) as response:
        assert response.status == 200
        listed = "inoperatividad-eventos" in await response.text()
    assert listed == (status == 200)


PERUVIAN_FLOWS = {
    "portability",
    "registry",
    "suspension",
    "cancellations",
    "inoperability",
    "sgu",
    "calendar_pe",
}


async def test_each_stream_holds_only_its_countrys_flows(
    app, clock, channel, operators, restored_calendars
) -> None:
    await invoke(channel, "PortabilityService/SubmitPortRequest", port_request(clock), "claro")
    await invoke(channel, "PqrService/FilePqr", filing(), "claro-co")
    # A Peruvian decree, taken back at once (and `restored_calendars` if the test stops between).
    decreed = date(2031, 3, 3)
    await holidays.decree(app.core.db, "PE", decreed, "Feriado decretado", now=clock.now())
    await holidays.decree(app.core.db, "PE", decreed, None, now=clock.now())
    await settle(app)
    seen = {
        identity: {e.flow for e in await collect(operators[identity], 0, head(app), timeout=2)}
        for identity in ("osiptel", "claro", "sic", "claro-co")
    }
    assert {"portability", "calendar_pe"} <= seen["osiptel"] <= PERUVIAN_FLOWS
    assert {"portability", "calendar_pe"} <= seen["claro"] <= PERUVIAN_FLOWS
    assert seen["sic"] == {"pqr"}
    assert seen["claro-co"] == {"pqr"}
    for identity, flow in (("sic", "portability"), ("osiptel", "pqr"), ("tigo", "registry")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await invoke(
                channel,
                "EventService/Subscribe",
                events_pb2.SubscribeRequest(flows=[flow]),
                identity,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
