"""Abuse by an authenticated operator: huge fields, huge rejected requests and a flood of empty
number blocks leave the server's memory where it was and do not stall other callers.

The server runs in this process, so its memory is this process's resident set (VmRSS), read after
a collection. Margins are generous: the machine is shared and the allocator keeps some pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import types
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import grpc
import pytest
from google.type.date_pb2 import Date

import npc
from npc.api.bounds import DEFAULT_ITEMS, MAX_TEXT, Reclaimer, check_bounds
from npc.core.errors import InvalidArgument
from npc.core.validation import Violations
from npc.flows.portability.convert import number_blocks
from npc.flows.portability.rules import Service
from npc.flows.portability.validation import MAX_BLOCK_VIOLATIONS, expand_numbers
from npc.v1 import cancellations_pb2, portability_pb2
from npc_clients import OperatorClient
from tests.helpers import block, port_request, rid, stream_head

MB = 1024 * 1024
# What an abuse may leave behind once it is over (the allocator, caches warmed by the first call).
MEMORY_MARGIN = 64 * MB
# The slowest a small call may answer while another operator abuses the server (it took 3 s and
# 10 s before the bounds; a few milliseconds after, on a machine that may be 2.5x slower).
LATENCY_BOUND = 1.5
# The server gives memory back at most once a second after large requests, and once after the last.
RECLAIMED = Reclaimer.interval + 0.5


def resident() -> int:
    """This process's resident set size in bytes, after a full collection."""
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@contextlib.asynccontextmanager
async def probing(client: OperatorClient) -> AsyncIterator[list[float]]:
    """Small calls of `client`, one after the other, while the body runs; yields their latencies."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await stream_head(client)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(probe())
    try:
        yield latencies
    finally:
        done.set()
        await task


async def refused(call: Awaitable[object]) -> grpc.StatusCode:
    """The status code of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value.code()


REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def stream_huge_report(claro: OperatorClient) -> None:
    """A streamed daily report whose records carry 7.5 MB fields, chunk after chunk."""
    chunk = cancellations_pb2.DailyReportChunk(
        request_id=rid(),
        report_date=Date(year=2026, month=11, day=22),
        records=[
            cancellations_pb2.RequestRecord(request_code="BJ-1", execution_reason="x" * 7_500_000)
        ],
    )

    async def chunks() -> AsyncIterator[cancellations_pb2.DailyReportChunk]:
        for _ in range(40):
            yield chunk
            # A client writing while the server answers may see grpc's own INTERNAL instead of
            # the answer; a pause lets it read the answer (the server's side is the same).
            await asyncio.sleep(0.1)

    call = claro.cancellations.StreamDailyReport(chunks(), metadata=claro.metadata, timeout=20)
    assert await refused(call) in REFUSALS


async def submit_huge_names(claro: OperatorClient, clock) -> None:
    """Sixty port requests whose subscriber's name is 7.9 MB, each refused."""
    named = port_request(clock)
    named.subscriber.name = "y" * 7_900_000
    for _ in range(60):
        named.request_id = rid()
        assert await refused(claro.call("SubmitPortRequest", named, timeout=20)) in REFUSALS


async def submit_empty_blocks(claro: OperatorClient, clock) -> None:
    """Port requests of a million empty number blocks each (2 MB on the wire)."""
    empty = port_request(clock)
    empty.ClearField("numbers")
    empty.MergeFromString(b"\x2a\x00" * 1_000_000)  # field 5 (numbers): empty NumberBlocks
    assert len(empty.numbers) == 1_000_000
    for _ in range(3):
        empty.request_id = rid()
        assert await refused(claro.call("SubmitPortRequest", empty, timeout=20)) in REFUSALS


SERVER_CODE = str(Path(npc.__file__).parent)


async def frames_left_by_refusals(claro: OperatorClient, clock) -> int:
    """Frames only the collector could free after 20 requests refused by the handler's own
    validation (inside its transaction): an exception kept by grpc would hold each call's frames,
    and with them its request, until a full collection."""
    bad = port_request(clock)
    bad.subscriber.name = "z" * 300  # over the handler's 200 characters, under every bound
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            bad.request_id = rid()
            assert await refused(claro.call("SubmitPortRequest", bad)) in REFUSALS
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # The client's own frames (its errors, kept by pytest.raises) are not the server's.
        frames = sum(
            1
            for garbage in gc.garbage
            if isinstance(garbage, types.FrameType) and SERVER_CODE in garbage.f_code.co_filename
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return frames


@pytest.mark.slow  # starts its own PostgreSQL or server process, or measures memory
async def test_abuse_leaves_memory_and_latency_where_they_were(app, operators, clock, caplog):
    claro, movistar = operators["claro"], operators["movistar"]
    await stream_head(movistar)
    await claro.call("SubmitPortRequest", port_request(clock))  # warm every path once
    baseline = resident()
    grown: list[int] = []
    worst: list[float] = []
    for abuse in (
        lambda: stream_huge_report(claro),
        lambda: submit_huge_names(claro, clock),
        lambda: submit_empty_blocks(claro, clock),
    ):
        async with probing(movistar) as latencies:
            await abuse()
        await asyncio.sleep(RECLAIMED)
        grown.append(resident() - baseline)
        worst.append(max(latencies))
    print(f"RSS growth MB: {[round(g / MB) for g in grown]}; worst small call s: {worst}")
    assert all(g < MEMORY_MARGIN for g in grown)
    assert all(w < LATENCY_BOUND for w in worst)
    assert await frames_left_by_refusals(claro, clock) == 0
    # Every refusal was a status: no traceback, no error logged.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    # The server still serves the abuser normally.
    after = port_request(clock, numbers=[block("940000002")])
    assert (await claro.call("SubmitPortRequest", after)).id


def test_counts_and_lengths_are_read_before_any_item():
    """The bounds every request meets, and the portability validator's own count, refuse a
    million empty blocks or a long name with one violation, without reading them one by one."""
    million = portability_pb2.SubmitPortRequestRequest()
    million.MergeFromString(b"\x2a\x00" * 1_000_000)
    with pytest.raises(InvalidArgument) as refused:
        check_bounds(million)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("numbers", f"at most {DEFAULT_ITEMS} items")
    ]
    v = Violations()
    # The wire blocks themselves: refused by their count, none of them read (nor translated).
    blocks = million.numbers
    assert expand_numbers(v, "numbers", blocks, Service.MOBILE, 10_000) == []  # type: ignore[arg-type]
    assert [(x.field, x.description) for x in v.items] == [
        ("numbers", "at most 10000 numbers per request")
    ]
    # Under the count, a block per mistake is reported up to a bound, not a million of them.
    many = portability_pb2.SubmitPortRequestRequest()
    many.MergeFromString(b"\x2a\x00" * 5_000)
    v = Violations()
    expand_numbers(v, "numbers", number_blocks(many.numbers), Service.MOBILE, 10_000)
    assert len(v.items) <= MAX_BLOCK_VIOLATIONS + 1
    named = portability_pb2.SubmitPortRequestRequest()
    named.subscriber.name = "n" * (MAX_TEXT + 1)
    with pytest.raises(InvalidArgument) as long_name:
        check_bounds(named, "chunks[3].")
    assert [v.field for v in long_name.value.violations] == ["chunks[3].subscriber.name"]
    check_bounds(port_request_for_bounds())  # an ordinary request is within every bound


def port_request_for_bounds() -> portability_pb2.SubmitPortRequestRequest:
    """An ordinary port request of 10,000 single numbers, the most a request may carry."""
    request = portability_pb2.SubmitPortRequestRequest(request_id=rid(), donor="movistar")
    request.numbers.extend(block(f"9{n:08d}") for n in range(10_000))
    return request
