"""Fixtures of the operations tests: a clearinghouse that has seen traffic, and its /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from npc.app import Clearinghouse
from npc.core.clock import FakeClock
from npc.v1 import events_pb2, portability_pb2, registry_pb2
from tests.conftest import Operators
from tests.helpers import advance, block, port_end_to_end, port_request, rid

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(app: Clearinghouse) -> tuple[Samples, set[str]]:
    """Every sample of the app's /metrics by sample name (``_bucket`` etc. kept), and the names
    of every metric declared there (samples or not), counters with their ``_total``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.http_port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared.add(f"{family.name}_total" if family.type == "counter" else family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples, declared


@dataclass
class Traffic:
    """/metrics before and after the traffic: counters are process-wide, so tests compare."""

    before: Samples
    after: Samples
    families: set[str]

    def values(self, name: str, **labels: str) -> list[float]:
        """Values, after the traffic, of the samples named `name` whose labels include `labels`."""
        return select(self.after, name, labels)

    def delta(self, name: str, **labels: str) -> float:
        """How much the samples named `name` with `labels` grew during the traffic."""
        return sum(select(self.after, name, labels)) - sum(select(self.before, name, labels))


def select(samples: Samples, name: str, labels: dict[str, str]) -> list[float]:
    """Values of the samples named `name` whose labels include `labels`."""
    return [
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    ]


@contextlib.asynccontextmanager
async def driven(
    app: Clearinghouse, operators: Operators, clock: FakeClock
) -> AsyncIterator[Traffic]:
    """Drive the traffic every dashboard shows, with a stream open, and scrape /metrics.

    A port is answered by its donor, scheduled and executed; another donor stays silent past its
    5 minutes (a breach); one call is malformed; numbers are looked up; claro's stream is open and
    has not read the last events (a lagging subscriber).
    """
    before, _ = await scrape(app)
    claro, movistar = operators["claro"], operators["movistar"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000001")])
    await claro.call(
        "SubmitPortRequest", port_request(clock, donor="entel", numbers=[block("960000001")])
    )
    await advance(app, clock, timedelta(minutes=5))
    with pytest.raises(grpc.aio.AioRpcError):
        await claro.call(
            "SubmitPortRequest", portability_pb2.SubmitPortRequestRequest(request_id=rid())
        )
    await claro.registry.LookupNumbers(
        registry_pb2.LookupNumbersRequest(numbers=["940000001", "960000001"]),
        metadata=claro.metadata,
    )
    call = claro.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=0), metadata=claro.metadata
    )
    await call.read()  # the stream is open and has delivered one event, far behind the head
    try:
        assert app.core is not None
        await app.core.sampler.sample()
        after, families = await scrape(app)
        yield Traffic(before, after, families)
    finally:
        call.cancel()
        await asyncio.sleep(0)


@pytest.fixture
async def traffic(
    app: Clearinghouse, operators: Operators, clock: FakeClock
) -> AsyncIterator[Traffic]:
    """The test's clearinghouse after the traffic of `driven`, with its stream still open."""
    async with driven(app, operators, clock) as seen:
        yield seen
