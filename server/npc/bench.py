"""`npc bench`: performance figures measured on this machine, printed, never asserted.

`npc bench lookups` builds a synthetic registry of N numbers (a numbering plan in ranges of a
million, a share of them ported) in a private PostgreSQL and Redis, imports it through the same
bulk importer operators use, starts `npc serve` in its own process, waits until its lookup cache
is loaded, then measures lookups through the real gRPC API from this process:

- single lookups: one call at a time for the latency percentiles, then many in flight for the
  throughput;
- batches of 10,000 numbers through LookupNumbers (columnar and row answers);
- the ceiling: the same keys read straight from Redis with pipelined MGETs by redis-py, in the
  same run, so the ratio says how much the clearinghouse adds on top of Redis itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis

from npc.admin import OperatorSpec, upsert_operator
from npc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from npc.flows.registry.importer import import_plan, import_ported
from npc.store.database import Database
from npc.v1 import registry_pb2, registry_pb2_grpc

OPERATORS = [("claro", "21"), ("movistar", "22"), ("entel", "23"), ("bitel", "24")]
TOKEN = "bench-token"
FIRST_NUMBER = 900_000_000
RANGE_SIZE = 1_000_000
BATCH = 10_000
PORTED_AT = "2025-06-01T03:00:00Z"


@dataclass(frozen=True)
class LookupBenchOptions:
    """What `npc bench lookups` measures."""

    numbers: int = 10_000_000
    ported_share: float = 0.3
    seconds: float = 5.0
    batch_concurrency: int = 4
    single_concurrency: int = 32
    single_samples: int = 3000


def _log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _is_ported(index: int, share: float) -> bool:
    # A multiplicative hash spreads the ported numbers evenly over every range.
    return (index * 2654435761) % 1000 < share * 1000


def write_registry(directory: Path, numbers: int, share: float) -> tuple[Path, Path, int]:
    """Write the plan and ported-number CSV files; return their paths and the ported count."""
    plan = directory / "plan.csv"
    ported = directory / "ported.csv"
    ranges = (numbers + RANGE_SIZE - 1) // RANGE_SIZE
    with plan.open("w", encoding="utf-8") as out:
        out.write("operator,service,first,last\n")
        for k in range(ranges):
            first = FIRST_NUMBER + k * RANGE_SIZE
            last = FIRST_NUMBER + min((k + 1) * RANGE_SIZE, numbers) - 1
            out.write(f"{OPERATORS[k % 4][0]},mobile,{first},{last}\n")
    count = 0
    with ported.open("w", encoding="utf-8") as out:
        out.write("number,serving_operator,ported_at\n")
        lines: list[str] = []
        for index in range(numbers):
            if not _is_ported(index, share):
                continue
            holder = (index // RANGE_SIZE) % 4
            serving = OPERATORS[(holder + 1 + index % 3) % 4][0]
            lines.append(f"{FIRST_NUMBER + index},{serving},{PORTED_AT}\n")
            count += 1
            if len(lines) >= 100_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return plan, ported, count


async def _throughput(
    call: Callable[[], Awaitable[int]], concurrency: int, seconds: float
) -> tuple[float, list[float]]:
    """Run `call` from `concurrency` tasks for `seconds`; return items/s and call latencies."""
    latencies: list[float] = []
    items = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal items
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            items += await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return items / (time.perf_counter() - started), latencies


def _percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


async def _wait_cache(redis: aioredis.Redis, db: Database, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.pool.acquire() as conn:
            head = int(await conn.fetchval("SELECT position FROM event_head"))
        ready, pos = await redis.hmget("npc:reg:meta", ["ready", "pos"])
        if ready == b"1" and pos is not None and int(pos) >= head:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the server's lookup cache was not loaded in time")


async def _wait_serving(target: str, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise RuntimeError(f"npc serve exited with {process.returncode}")
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                await asyncio.wait_for(channel.channel_ready(), 0.5)
            return
        except (TimeoutError, grpc.aio.AioRpcError):
            await asyncio.sleep(0.1)
    raise TimeoutError("npc serve did not start")


async def bench_lookups(options: LookupBenchOptions) -> dict[str, Any]:
    """Run the lookup benchmark; return its figures."""
    with tempfile.TemporaryDirectory(prefix="npc-bench-") as scratch:
        root = Path(scratch)
        pg = EmbeddedPostgres(root / "postgres")
        rd = EmbeddedRedis(root / "redis")
        pg.start()
        rd.start()
        try:
            return await _bench_lookups(options, root, pg, rd)
        finally:
            rd.stop()
            pg.stop()


async def _bench_lookups(
    options: LookupBenchOptions, root: Path, pg: EmbeddedPostgres, rd: EmbeddedRedis
) -> dict[str, Any]:
    n = options.numbers
    started = time.perf_counter()
    _log(f"writing a synthetic registry of {n:,} numbers ({options.ported_share:.0%} ported)")
    plan_csv, ported_csv, ported = write_registry(root, n, options.ported_share)
    db = await Database.connect(pg.dsn, min_size=1, max_size=4)
    redis = aioredis.Redis.from_url(rd.url)
    process: asyncio.subprocess.Process | None = None
    try:
        await db.migrate()
        for operator, code in OPERATORS:
            await upsert_operator(
                db, OperatorSpec(operator, operator.title(), code, TOKEN + operator)
            )
        _log("importing the plan and the ported numbers (PostgreSQL COPY)")
        await import_plan(db, plan_csv)
        await import_ported(db, ported_csv)
        imported = time.perf_counter()
        grpc_port = free_port()
        env = {
            **os.environ,
            "NPC_DATABASE_URL": pg.dsn,
            "NPC_REDIS_URL": rd.url,
            "NPC_GRPC_PORT": str(grpc_port),
            "NPC_HTTP_PORT": str(free_port()),
            "NPC_DEV_MODE": "1",  # a private loopback server: bearer tokens without TLS
        }
        log_file = (root / "serve.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "npc", "serve", env=env, stdout=log_file, stderr=log_file
        )
        target = f"127.0.0.1:{grpc_port}"
        _log("starting npc serve and loading its lookup cache")
        await _wait_serving(target, process)
        await _wait_cache(redis, db, timeout=max(120.0, n / 20_000))
        loaded = time.perf_counter()
        figures = await _measure(options, target, redis)
        figures = {
            "numbers": n,
            "ported": ported,
            "load_seconds": round(loaded - started, 1),
            "import_seconds": round(imported - started, 1),
            "cache_load_seconds": round(loaded - imported, 1),
            **figures,
            "processes": 1,
            "cpus": os.cpu_count(),
        }
        return figures
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        await redis.aclose()
        await db.close()


async def _measure(
    options: LookupBenchOptions, target: str, redis: aioredis.Redis
) -> dict[str, Any]:
    rng = random.Random(7)
    n = options.numbers
    batches = [[str(FIRST_NUMBER + rng.randrange(n)) for _ in range(BATCH)] for _ in range(20)]
    singles = [str(FIRST_NUMBER + rng.randrange(n)) for _ in range(10_000)]
    metadata = (("authorization", f"Bearer {TOKEN}claro"),)
    seconds = options.seconds
    async with grpc.aio.insecure_channel(
        target,
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    ) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        counter = iter(range(1 << 62))

        async def single() -> int:
            number = singles[next(counter) % len(singles)]
            await stub.LookupNumber(
                registry_pb2.LookupNumberRequest(number=number), metadata=metadata
            )
            return 1

        def batch_call(columnar: bool) -> Callable[[], Awaitable[int]]:
            async def call() -> int:
                numbers = batches[next(counter) % len(batches)]
                reply = await stub.LookupNumbers(
                    registry_pb2.LookupNumbersRequest(numbers=numbers, columnar=columnar),
                    metadata=metadata,
                )
                got = len(reply.columns.serving) if columnar else len(reply.results)
                if got != len(numbers):
                    raise RuntimeError("a batch answer is missing numbers")
                return got

            return call

        # Warm up: connections, the server's code paths, Redis.
        await _throughput(single, 4, min(1.0, seconds))
        await _throughput(batch_call(True), 2, min(1.0, seconds))

        _log("single lookups, one at a time (latency)")
        latencies: list[float] = []
        for _ in range(options.single_samples):
            t = time.perf_counter()
            await single()
            latencies.append(time.perf_counter() - t)
        _log(f"single lookups, {options.single_concurrency} in flight (throughput)")
        single_rate, loaded_latencies = await _throughput(
            single, options.single_concurrency, seconds
        )
        _log(f"batches of {BATCH:,} (columnar), {options.batch_concurrency} in flight")
        batch_rate, batch_latencies = await _throughput(
            batch_call(True), options.batch_concurrency, seconds
        )
        _log(f"batches of {BATCH:,} (rows), {options.batch_concurrency} in flight")
        rows_rate, _ = await _throughput(batch_call(False), options.batch_concurrency, seconds)

    _log("ceiling: pipelined MGET of the same keys straight from redis-py")
    key_batches = [[f"npc:reg:n:{number}" for number in numbers] for numbers in batches]

    async def mget() -> int:
        keys = key_batches[next(counter) % len(key_batches)]
        async with redis.pipeline(transaction=False) as pipe:
            pipe.mget(keys)
            (values,) = await pipe.execute()
        return len(values)

    await _throughput(mget, 2, min(1.0, seconds))
    ceiling, _ = await _throughput(mget, options.batch_concurrency, seconds)
    return {
        "single_lookups_per_s": round(single_rate),
        "single_p50_ms": round(_percentile(latencies, 0.5) * 1000, 3),
        "single_p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "single_p99_ms_at_throughput": round(_percentile(loaded_latencies, 0.99) * 1000, 3),
        "single_concurrency": options.single_concurrency,
        "batch_size": BATCH,
        "batch_lookups_per_s": round(batch_rate),
        "batch_p99_ms": round(_percentile(batch_latencies, 0.99) * 1000, 3),
        "batch_rows_lookups_per_s": round(rows_rate),
        "batch_concurrency": options.batch_concurrency,
        "redis_mget_ceiling_per_s": round(ceiling),
        "ratio_batch_vs_ceiling": round(batch_rate / ceiling, 3) if ceiling else None,
    }


def run_lookups(options: LookupBenchOptions, as_json: bool) -> int:
    """`npc bench lookups`: print the figures (one JSON object with --json)."""
    figures = asyncio.run(bench_lookups(options))
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    return 0
