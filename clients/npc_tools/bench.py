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
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import redis.asyncio as aioredis

from npc.admin import DEMO_OPERATORS, DEMO_RANGES, OperatorSpec, seed_demo, upsert_operator
from npc.config import DEFAULT_DB_POOL_SIZE, PortabilitySettings
from npc.core.calendar import calendar_for
from npc.core.clock import SharedClock
from npc.core.deadlines import NEXT_DUE_SQL
from npc.core.numbers import NUMBERS_CHANGED
from npc.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from npc.flows.portability.handler import FLOW as PORTABILITY_FLOW
from npc.flows.portability.handler import REQUEST_ANSWER
from npc.flows.registry.importer import import_plan, import_ported
from npc.store.database import Database, keep_session
from npc.v1 import (
    events_pb2,
    events_pb2_grpc,
    portability_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
)
from npc_clients.client import OperatorClient
from npc_clients.positions import PositionStore
from npc_clients.session import Session
from npc_clients.simulator import (
    ChangeWindow,
    Market,
    NumberRange,
    OperatorProfile,
    SimulatedOperator,
)
from npc_tools.demo import demo_start, scaled_profile
from npc_tools.empty_server import EMPTY_METHOD

CALLS_PER_PORT = 5  # SubmitPortRequest, AnswerPortRequest, SchedulePort, 2 x ConfirmPortExecution
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
    # `_is_ported` depends on the index modulo 1000 only: the ported offsets of one block of a
    # thousand numbers, computed once, repeat in every block (ten million numbers in seconds).
    offsets = [r for r in range(1000) if _is_ported(r, share)]
    count = 0
    with ported.open("w", encoding="utf-8") as out:
        out.write("number,serving_operator,ported_at\n")
        for k in range(ranges):
            holder = k % 4
            serving = [OPERATORS[(holder + 1 + m) % 4][0] for m in range(3)]
            for base in range(k * RANGE_SIZE, min((k + 1) * RANGE_SIZE, numbers), 1000):
                indices = [base + r for r in offsets if base + r < numbers]
                out.writelines(
                    f"{FIRST_NUMBER + i},{serving[i % 3]},{PORTED_AT}\n" for i in indices
                )
                count += len(indices)
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
            # Not `items += await call()`: that reads `items` before the await and loses the
            # other workers' counts made meanwhile.
            got = await call()
            items += got
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return items / (time.perf_counter() - started), latencies


def _percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


def lookup_batches(
    stubs: list[registry_pb2_grpc.RegistryServiceStub],
    batches: list[list[str]],
    metadata: tuple[tuple[str, str], ...],
    *,
    columnar: bool,
) -> Callable[[], Awaitable[int]]:
    """One LookupNumbers call per invocation, over `stubs` in turn; returns the numbers answered."""
    counter = iter(range(1 << 62))

    async def call() -> int:
        turn = next(counter)
        numbers = batches[turn % len(batches)]
        reply = await stubs[turn % len(stubs)].LookupNumbers(
            registry_pb2.LookupNumbersRequest(numbers=numbers, columnar=columnar),
            metadata=metadata,
        )
        got = len(reply.columns.serving) if columnar else len(reply.results)
        if got != len(numbers):
            raise RuntimeError("a batch answer is missing numbers")
        return got

    return call


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


BenchBody = Callable[[Path, EmbeddedPostgres, EmbeddedRedis], Awaitable[dict[str, Any]]]


async def _in_scratch(prefix: str, body: BenchBody) -> dict[str, Any]:
    """Run `body` with a private PostgreSQL and Redis in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        root = Path(scratch)
        pg = EmbeddedPostgres(root / "postgres")
        rd = EmbeddedRedis(root / "redis")
        pg.start()
        rd.start()
        try:
            return await body(root, pg, rd)
        finally:
            rd.stop()
            pg.stop()


async def bench_lookups(options: LookupBenchOptions) -> dict[str, Any]:
    """Run the lookup benchmark; return its figures."""
    return await _in_scratch(
        "npc-bench-", lambda root, pg, rd: _bench_lookups(options, root, pg, rd)
    )


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
            "NPC_RATE_LIMIT": "0",  # measure capacity, not the per-operator limit
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
        # Memory once the cache is loaded, before the measurements: a regression shows here.
        memory = await redis.info("memory")
        rss = _rss_mb(process.pid)
        figures = await _measure(options, target, redis)
        figures = {
            "numbers": n,
            "ported": ported,
            "load_seconds": round(loaded - started, 1),
            "import_seconds": round(imported - started, 1),
            "cache_load_seconds": round(loaded - imported, 1),
            "server_rss_mb_after_load": rss,
            "redis_used_memory_mb_after_load": round(memory["used_memory"] / 2**20, 1),
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


def _rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` in MiB (Linux /proc), None where there is none."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


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
            return lookup_batches([stub], batches, metadata, columnar=columnar)

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


# ------------------------------------------------------------------------------ npc bench all

OBSERVER_TOKEN = "bench-observer-token-"
BACKLOG_DUE = datetime(2100, 1, 1, tzinfo=UTC)  # far beyond any run: the backlog never fires


@dataclass(frozen=True)
class AllBenchOptions:
    """What `npc bench all` measures."""

    workers: int = 1  # npc serve --workers
    seconds: float = 60.0  # wall seconds of port filing
    ceiling_seconds: float = 5.0  # wall seconds of each ceiling measurement
    pending_deadlines: int = 1_000_000  # far-future deadlines sitting in the table meanwhile
    numbers: int = 1_000_000  # synthetic registry for the batch lookups (0: the demo ranges)
    observers: int = 20  # operators whose streams receive the execution broadcasts
    speed: float = 60.0  # simulated seconds per wall second (the demo's pace)
    in_flight: int = 128  # own requests in flight per simulated operator
    channels: int = 0  # client channels per simulated operator (0: two per worker)
    rate: float = 0.0  # filings per second, all operators together; 0: as fast as they can
    drain: float = 20.0  # wall seconds to let ports under way finish after filing stops
    # Wall seconds over which each operator's requests in flight rise to `in_flight`: as load
    # arrives in service, not as `in_flight` x 4 filings in one instant whose executions would
    # all fall due together. Throughput and CPU per port are read once it is over.
    ramp: float = 10.0
    db_pool_size: int = DEFAULT_DB_POOL_SIZE  # NPC_DB_POOL_SIZE, per server process
    seed: int = 7
    # How the simulated operators send commands: "session" (SessionService) or "unary". The
    # figures are this mode's; `by_api` compares both, the other one measured after it.
    api: str = "session"
    compare: bool = True  # also measure the other mode, for `by_api`


def _channel(target: str) -> grpc.aio.Channel:
    # A local subchannel pool gives every channel its own connection: channels with the same
    # arguments otherwise share one, and SO_REUSEPORT would see a single client.
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ],
    )


class _Calls:
    """Completion instants of the portability calls the simulated operators make."""

    def __init__(self) -> None:
        self.done: list[float] = []
        self.by_method: dict[str, int] = {}

    def count_between(self, start: float, end: float) -> int:
        """Calls completed in [start, end] (monotonic seconds)."""
        return sum(1 for instant in self.done if start <= instant <= end)


class _SpreadStub:
    """A service stub whose calls go to several channels in turn, each completion counted."""

    def __init__(self, stubs: list[Any], calls: _Calls) -> None:
        self._stubs = stubs
        self._calls = calls
        self._turn = 0

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, **kwargs: Any) -> Any:
            self._turn += 1
            stub = self._stubs[self._turn % len(self._stubs)]
            try:
                return await getattr(stub, method)(request, **kwargs)
            finally:
                self._calls.done.append(time.monotonic())
                self._calls.by_method[method] = self._calls.by_method.get(method, 0) + 1

        return call


class _BenchClient(OperatorClient):
    """An operator client over several channels (one connection each), its calls counted."""

    def __init__(  # noqa: PLW0231 (the channels are built here, not by OperatorClient)
        self, target: str, token: str, operator: str, channels: int, calls: _Calls
    ) -> None:
        self.operator = operator
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),)
        self.channels = [_channel(target) for _ in range(max(1, channels))]
        self.channel = self.channels[0]
        self.portability = _SpreadStub(  # type: ignore[assignment]
            [portability_pb2_grpc.PortabilityServiceStub(c) for c in self.channels], calls
        )
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.retry_for = 20.0
        self._calls = calls

    def session(  # type: ignore[override]
        self,
        store: PositionStore | None = None,
        flows: list[str] | None = None,
        *,
        from_position: int | None = None,
    ) -> _SpreadSession:
        """One session per channel, as the unary calls spread over them."""
        return _SpreadSession(self, self._calls, from_position, flows)

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels:
            await channel.close()


class _SpreadSession:
    """An operator's sessions, one per channel (connection, so SO_REUSEPORT spreads them over
    the workers): commands go to each in turn, each answer counted as the unary calls are; the
    events come on the first."""

    def __init__(
        self,
        client: _BenchClient,
        calls: _Calls,
        from_position: int | None,
        flows: list[str] | None,
    ) -> None:
        self.sessions = [
            Session(
                client,
                from_position=from_position if k == 0 else None,
                flows=flows,
                channel=channel,
            )
            for k, channel in enumerate(client.channels)
        ]
        self._calls = calls
        self._turn = 0

    async def __aenter__(self) -> _SpreadSession:
        for session in self.sessions:
            await session.__aenter__()
        return self

    async def close(self) -> None:
        """Close every session."""
        for session in self.sessions:
            await session.close()

    async def send(self, request: Any) -> Any:
        """Send on the next session."""
        self._turn += 1
        method = request.DESCRIPTOR.name.removesuffix("Request")
        try:
            return await self.sessions[self._turn % len(self.sessions)].send(request)
        finally:
            self._calls.done.append(time.monotonic())
            self._calls.by_method[method] = self._calls.by_method.get(method, 0) + 1

    def events(self) -> AsyncIterator[events_pb2.Event]:
        """The first session's events."""
        return self.sessions[0].events()


async def _subscription(
    subscribe: events_pb2.SubscribeRequest,
) -> AsyncIterator[session_pb2.SessionRequest]:
    """A session's requests that only subscribe: open until the observer stops."""
    yield session_pb2.SessionRequest(subscribe=subscribe)
    await asyncio.Event().wait()


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc), oldest first."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append((int(fields[19]), int(entry)))  # start time, pid
    return [child for _, child in sorted(found)]


def _tree_cpu(roots: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds used by each root process and its live descendants (Linux /proc).

    User and system time, reaped children included; empty when there is no /proc.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parent[int(entry)] = int(fields[1])
        used[int(entry)] = sum(int(value) for value in fields[11:15])
    # Each process counts for the nearest root above it: the servers and the databases are
    # children of the client process, but not part of it.
    names = {pid: name for name, pid in roots.items() if pid is not None}
    totals = dict.fromkeys(names.values(), 0.0)
    for pid, ticks_used in used.items():
        ancestor: int | None = pid
        while ancestor and ancestor not in names:
            ancestor = parent.get(ancestor)
        if ancestor:
            totals[names[ancestor]] += ticks_used / ticks
    return totals


def machine_cpu(stat: str | None = None) -> dict[str, float]:
    """Seconds the machine's CPUs spent busy, idle and stolen by the hypervisor since boot, from
    the "cpu" line of /proc/stat (`stat`: its text; read from /proc when None); empty when
    there is no /proc.

    Busy is user, nice, system, irq and softirq time (guest time is inside user and nice);
    idle counts iowait, which is idle with a write outstanding. A run whose cores are busy is
    bound by CPU: a cheaper port gives more ports. Idle cores while filing say the closed
    loop is bound by latency instead; stolen time says the machine was slower than it looked.
    """
    if stat is None:
        try:
            with open("/proc/stat", encoding="ascii") as source:
                stat = source.read()
        except OSError:
            return {}
    for line in stat.splitlines():
        fields = line.split()
        if not fields or fields[0] != "cpu":
            continue
        ticks = [int(value) for value in fields[1:9]]
        ticks += [0] * (8 - len(ticks))  # an older kernel's line is shorter
        user, nice, system, idle, iowait, irq, softirq, steal = ticks
        per_second = os.sysconf("SC_CLK_TCK")
        return {
            "busy": (user + nice + system + irq + softirq) / per_second,
            "idle": (idle + iowait) / per_second,
            "steal": steal / per_second,
        }
    return {}


def _cores(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """CPU seconds read `wall` seconds apart (`_tree_cpu`, `machine_cpu`) as cores: CPU seconds
    per wall second (2.0: two cores' worth)."""
    return {key: round((after[key] - before.get(key, 0.0)) / wall, 2) for key in after}


def _channels_per_operator(options: AllBenchOptions) -> int:
    # Each channel is one connection, and SO_REUSEPORT spreads connections, not calls.
    return options.channels or 2 * options.workers


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def _rpc_ceiling(options: AllBenchOptions, root: Path) -> dict[str, Any]:
    """Empty unary calls per second against bare grpc.aio servers, with the ports phase's client."""
    port = free_port()
    log_file = (root / "empty.log").open("wb")
    servers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc_tools.empty_server",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        for _ in range(options.workers)
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            line = await asyncio.wait_for(server.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError("the bare gRPC server did not start")
        target = f"127.0.0.1:{port}"
        channels = [_channel(target) for _ in range(4 * _channels_per_operator(options))]
        try:
            methods = [c.unary_unary(EMPTY_METHOD) for c in channels]
            counter = iter(range(1 << 62))

            async def call() -> int:
                await methods[next(counter) % len(methods)](
                    b"", metadata=(("authorization", "Bearer dev-token-claro"),), timeout=10
                )
                return 1

            concurrency = 4 * OperatorProfile().max_concurrent_calls
            await _throughput(call, concurrency, min(1.0, options.ceiling_seconds))
            rate, _ = await _throughput(call, concurrency, options.ceiling_seconds)
        finally:
            for channel in channels:
                await channel.close()
        return {"rpc_ceiling_per_s": round(rate), "rpc_ceiling_concurrency": concurrency}
    finally:
        for server in servers:
            if server.returncode is None:
                server.terminate()
            await server.wait()
        log_file.close()


async def _commit_ceiling(options: AllBenchOptions, dsn: str) -> dict[str, Any]:
    """One-row INSERT + COMMIT per transaction, from as many connections as the server pools."""
    connections = options.db_pool_size * options.workers
    # Released connections are not reset, as in the server's pool (`keep_session`).
    pool = await asyncpg.create_pool(
        dsn, min_size=connections, max_size=connections, reset=keep_session
    )
    try:
        async with pool.acquire() as conn:
            fsync = await conn.fetchval("SHOW fsync")
            synchronous = await conn.fetchval("SHOW synchronous_commit")
            await conn.execute(
                "CREATE TABLE bench_commit_ceiling (id bigserial PRIMARY KEY,"
                " at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)"
            )

        async def commit() -> int:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO bench_commit_ceiling (note) VALUES ('x')")
            return 1

        await _throughput(commit, connections, min(1.0, options.ceiling_seconds))
        rate, _ = await _throughput(commit, connections, options.ceiling_seconds)
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE bench_commit_ceiling")
    finally:
        await pool.close()
    return {
        "commit_ceiling_per_s": round(rate),
        "commit_ceiling_connections": connections,
        "durability": f"fsync={fsync} synchronous_commit={synchronous}",
    }


async def _insert_backlog(db: Database, count: int) -> None:
    """`count` pending donor-answer deadlines due in 2100, of cases that need not exist."""
    async with db.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO deadlines (flow, kind, case_id, due_at, rule, created_at,
                                      next_attempt_at)
               SELECT $1, $2, 'BENCH-BACKLOG-' || g, t.due, 'bench backlog', now(), t.due
               FROM generate_series(1, $3::int) AS g,
                    LATERAL (SELECT $4::timestamptz + g * interval '1 second') AS t(due)""",
            PORTABILITY_FLOW,
            REQUEST_ANSWER,
            count,
            BACKLOG_DUE,
        )
        await conn.execute("ANALYZE deadlines")


async def _wait_workers(log_path: Path, workers: int, process: asyncio.subprocess.Process) -> int:
    """Wait until every worker logged that it serves; return how many did."""
    for _ in range(1200):
        if process.returncode is not None:
            raise RuntimeError(f"npc serve exited with {process.returncode}")
        serving = (await asyncio.to_thread(log_path.read_bytes)).count(b"npc serving: gRPC")
        if serving >= workers:
            return serving
        await asyncio.sleep(0.1)
    raise TimeoutError("the npc serve workers did not start")


class _Observers:
    """Operators following the broadcasts: when each execution's broadcast reaches each stream."""

    def __init__(self, clock: SharedClock) -> None:
        self.clock = clock
        self.latencies: list[float] = []  # wall seconds, execution -> arrival, every stream
        self.arrivals: list[float] = []  # monotonic instants, first stream only
        self.tasks: list[asyncio.Task[None]] = []
        self.channels: list[grpc.aio.Channel] = []

    def start(
        self, target: str, operators: list[str], from_position: int, api: str = "unary"
    ) -> None:
        """Open one stream per operator, from `from_position`: a session stream's subscription
        with `api` "session" (events ready together come in one message), else Subscribe."""
        for index, operator in enumerate(operators):
            channel = _channel(target)
            self.channels.append(channel)
            self.tasks.append(
                asyncio.get_running_loop().create_task(
                    self._follow(channel, operator, from_position, api, first=index == 0)
                )
            )

    def _arrived(self, event: events_pb2.Event, first: bool) -> None:
        if event.type != NUMBERS_CHANGED:
            return
        arrived = self.clock.now()
        occurred = event.occurred_at.ToDatetime(tzinfo=UTC)
        self.latencies.append(self.clock.to_wall(arrived - occurred))
        if first:
            self.arrivals.append(time.monotonic())

    async def _follow(
        self, channel: grpc.aio.Channel, operator: str, position: int, api: str, *, first: bool
    ) -> None:
        metadata = (("authorization", f"Bearer {OBSERVER_TOKEN}{operator}"),)
        while True:
            subscribe = events_pb2.SubscribeRequest(from_position=position, flows=["registry"])
            session = api == "session"
            call: Any = (
                session_pb2_grpc.SessionServiceStub(channel).Session(
                    _subscription(subscribe), metadata=metadata
                )
                if session
                else events_pb2_grpc.EventServiceStub(channel).Subscribe(
                    subscribe, metadata=metadata
                )
            )
            try:
                async for message in call:
                    for event in message.events if session else (message,):
                        position = event.position
                        self._arrived(event, first)
            except grpc.aio.AioRpcError as error:
                _log(f"observer {operator}: stream lost ({error.code().name}); resubscribing")
            finally:
                call.cancel()
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Close the streams."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


async def bench_all(options: AllBenchOptions) -> dict[str, Any]:
    """Run every measurement of `npc bench all`; return the figures."""
    return await _in_scratch(
        "npc-bench-all-", lambda root, pg, rd: _bench_all(options, root, pg, rd)
    )


async def _bench_all(
    options: AllBenchOptions, root: Path, pg: EmbeddedPostgres, rd: EmbeddedRedis
) -> dict[str, Any]:
    started = time.perf_counter()
    observers = [f"watch{k:02d}" for k in range(1, options.observers + 1)]
    db = await Database.connect(pg.dsn, min_size=1, max_size=4)
    redis = aioredis.Redis.from_url(rd.url)
    process: asyncio.subprocess.Process | None = None
    figures: dict[str, Any] = {}
    try:
        await db.migrate()
        await seed_demo(db)
        for k, operator in enumerate(observers):
            await upsert_operator(
                db,
                OperatorSpec(operator, operator.title(), f"W{k:03d}", OBSERVER_TOKEN + operator),
            )
        if options.numbers:
            _log(f"importing a synthetic registry of {options.numbers:,} numbers for the lookups")
            plan_csv, ported_csv, _ = write_registry(root, options.numbers, 0.3)
            await import_plan(db, plan_csv)
            await import_ported(db, ported_csv)
        _log(f"inserting {options.pending_deadlines:,} pending far-future deadlines")
        await _insert_backlog(db, options.pending_deadlines)

        _log(f"ceiling: empty grpc.aio calls, {options.workers} bare server process(es)")
        figures.update(await _rpc_ceiling(options, root))
        _log(
            f"ceiling: one-row INSERT + COMMIT from {options.db_pool_size * options.workers}"
            " connections"
        )
        figures.update(await _commit_ceiling(options, pg.dsn))

        portability = PortabilitySettings.from_env()
        window = ChangeWindow(
            portability.change_window_start,
            portability.change_window_end,
            calendar_for(portability.jurisdiction).timezone,
        )
        clock = SharedClock(demo_start(datetime.now(UTC), window), time.time(), options.speed)
        grpc_port = free_port()
        env = {
            **os.environ,
            "NPC_DATABASE_URL": pg.dsn,
            "NPC_REDIS_URL": rd.url,
            "NPC_GRPC_PORT": str(grpc_port),
            "NPC_HTTP_PORT": str(free_port()),
            "NPC_VAR_DIR": str(root / "var"),
            "NPC_DB_POOL_SIZE": str(options.db_pool_size),
            "NPC_CLOCK": clock.spec,
            "NPC_DEV_MODE": "1",  # private loopback servers: bearer tokens without TLS
            "NPC_RATE_LIMIT": "0",  # measure capacity, not the per-operator limit
        }
        log_path = root / "serve.log"
        log_file = log_path.open("wb")
        _log(f"starting npc serve --workers {options.workers} on the shared clock {clock.spec}")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc",
            "serve",
            "--workers",
            str(options.workers),
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        target = f"127.0.0.1:{grpc_port}"
        processes = await _wait_workers(log_path, options.workers, process)
        await _wait_serving(target, process)
        await _wait_cache(redis, db, timeout=max(120.0, options.numbers / 20_000))
        # With --workers N the supervisor's children are the servers: each counted apart shows
        # how the connections spread over them.
        workers = await asyncio.to_thread(_children, process.pid)
        roots: dict[str, int | None] = {
            "client": os.getpid(),
            **{f"server_{k + 1}": pid for k, pid in enumerate(workers or [process.pid])},
            "postgres": pg._pidfile_pid(),
            "redis": rd.pid,
        }
        figures["api"] = options.api
        phases = {options.api: await _ports_phase(options, target, clock, db, observers, roots)}
        if options.compare:
            other = "unary" if options.api == "session" else "session"
            phases[other] = await _ports_phase(
                replace(options, api=other), target, clock, db, observers, roots
            )
        figures.update(phases[options.api])
        figures["ratio_messages_vs_rpc_ceiling"] = (
            round(figures["messages_per_s"] / figures["rpc_ceiling_per_s"], 3)
            if figures["rpc_ceiling_per_s"]
            else None
        )
        # A complete port takes at least five calls (SP, the donor's answer, PP, two
        # confirmations): were everything else free, ports/s could not pass a fifth of the empty
        # call's rate on this machine.
        figures["ports_ceiling_per_s"] = round(figures["rpc_ceiling_per_s"] / CALLS_PER_PORT, 1)
        figures["ratio_ports_vs_ceiling"] = (
            round(figures["ports_per_s"] / figures["ports_ceiling_per_s"], 3)
            if figures["ports_ceiling_per_s"]
            else None
        )
        ceiling = figures["ports_ceiling_per_s"]
        figures["by_api"] = {
            api: {
                "ports_per_s": phase["ports_per_s"],
                "cpu_ms_per_port": phase["cpu_ms_per_port"],
                "ratio_ports_vs_ceiling": (
                    round(phase["ports_per_s"] / ceiling, 3) if ceiling else None
                ),
                "messages_per_s": phase["messages_per_s"],
            }
            for api, phase in sorted(phases.items())
        }
        figures.update(await _lookups_phase(options, target))
        figures.update(
            {
                "processes": processes,
                "workers": options.workers,
                "cpus": os.cpu_count(),
                "speed": options.speed,
                "ramp_s": min(options.ramp, options.seconds / 2),
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
        return figures
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        await redis.aclose()
        await db.close()


async def _ports_phase(
    options: AllBenchOptions,
    target: str,
    clock: SharedClock,
    db: Database,
    observer_names: list[str],
    roots: dict[str, int | None],
) -> dict[str, Any]:
    """Simulated operators port numbers for `seconds`; observers time the broadcasts.

    The CPU each part of the process tree used while filing says where the time went.
    """
    portability = PortabilitySettings.from_env()
    window = ChangeWindow(
        portability.change_window_start,
        portability.change_window_end,
        calendar_for(portability.jurisdiction).timezone,
    )
    calls = _Calls()
    names = [spec.id for spec in DEMO_OPERATORS if spec.role == "operator"][:4]
    clients = [
        _BenchClient(target, f"dev-token-{name}", name, _channels_per_operator(options), calls)
        for name in names
    ]
    ranges = [
        NumberRange(operator, service, int(first), int(last))
        for operator, service, first, last in DEMO_RANGES
    ]
    profile = replace(
        scaled_profile(OperatorProfile(), options.speed), max_in_flight=options.in_flight
    )
    market = Market(rate=options.rate)
    simulators = [
        SimulatedOperator(
            client,
            market,
            ranges,
            counterparts=names,
            profile=profile,
            window=window,
            now=clock.now,
            seed=options.seed * 100 + index,
            api=options.api,
        )
        for index, client in enumerate(clients)
    ]
    watchers = _Observers(clock)
    head = await clients[0].events.GetStreamHead(
        events_pb2.GetStreamHeadRequest(), metadata=clients[0].metadata
    )
    watchers.start(target, observer_names, head.position, options.api)
    simulated_start = clock.now()
    _log(
        f"ports ({options.api}): 4 simulated operators filing for {options.seconds:g} s from"
        f" {simulated_start.astimezone(window.zone):%H:%M} {window.timezone} (x{options.speed:g});"
        f" {len(observer_names)} operators watching the broadcasts"
    )
    stats = market.stats
    ramp = min(options.ramp, options.seconds / 2)
    try:
        for simulator in simulators:
            if ramp > 0:
                simulator.allow_in_flight(1)
            await simulator.start()
        t0 = time.monotonic()
        ramped = t0 + ramp
        cpu_before = await asyncio.to_thread(_tree_cpu, roots)
        machine_before = await asyncio.to_thread(machine_cpu)
        # CPU readings once the ramp is over and the first port is through, for the cost of a
        # port in steady state.
        cpu_flowing: tuple[float, dict[str, float]] | None = None
        stop_at = t0 + options.seconds
        next_log = t0 + 5.0
        while (now := time.monotonic()) < stop_at:
            await asyncio.sleep(min(0.25 if now < ramped else 0.5, stop_at - now))
            if time.monotonic() < ramped:
                share = (time.monotonic() - t0) / ramp
                for simulator in simulators:
                    simulator.allow_in_flight(math.ceil(options.in_flight * share))
                continue
            if simulators[0].max_in_flight < options.in_flight:
                for simulator in simulators:
                    simulator.allow_in_flight(options.in_flight)
            if cpu_flowing is None and watchers.arrivals:
                cpu_flowing = (time.monotonic(), await asyncio.to_thread(_tree_cpu, roots))
            if time.monotonic() >= next_log:
                next_log += 5.0
                _log(
                    f"ports: {time.monotonic() - t0:5.1f} s filed {stats.filed} executed"
                    f" {stats.executed} completed {stats.completed} broadcasts"
                    f" {len(watchers.arrivals)} calls {len(calls.done)}"
                )
        market.gate.clear()
        t_end = time.monotonic()
        cpu_after = await asyncio.to_thread(_tree_cpu, roots)
        machine_after = await asyncio.to_thread(machine_cpu)
        drain_until = t_end + options.drain
        # Polled: the market's counters have no event for "every request closed".
        while stats.in_flight and time.monotonic() < drain_until:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        _log(f"ports: filing stopped; {stats.in_flight} requests still open after the drain")
        t_drained = time.monotonic()
        cpu_drained = await asyncio.to_thread(_tree_cpu, roots)
    finally:
        for simulator in simulators:
            await simulator.stop()
        await watchers.stop()
        for client in clients:
            await client.close()

    # Throughput while filing, once the ramp is over and the pipeline delivered its first port
    # (fill time left out).
    arrivals = watchers.arrivals
    in_window = [a for a in arrivals if ramped <= a <= t_end]
    if len(in_window) >= 2 and in_window[-1] - in_window[0] >= min(1.0, options.seconds / 4):
        window_start = in_window[0]
        ports = len(in_window) - 1
    else:
        window_start, ports = t0, len(arrivals)
    span = max(
        1e-9, (t_end if ports != len(arrivals) else max(arrivals, default=t0)) - window_start
    )
    messages = calls.count_between(t0, t_end)
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, extract(epoch FROM fired_at - due_at)::float8 AS late FROM deadlines"
            " WHERE fired_at IS NOT NULL AND due_at >= $1",
            simulated_start,
        )
        # The scheduler's pass ends with this query (the earliest pending instant): its cost
        # with the backlog in the table is paid on every pass.
        scans = []
        for _ in range(5):
            scan_started = time.perf_counter()
            await conn.fetchval(NEXT_DUE_SQL)
            scans.append(time.perf_counter() - scan_started)
        pending = await conn.fetchval(
            "SELECT count(*) FROM deadlines WHERE fired_at IS NULL AND cancelled_at IS NULL"
        )
    lateness = [clock.to_wall(timedelta(seconds=row["late"])) for row in rows]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for row, late in zip(rows, lateness, strict=True):
        by_kind[row["kind"]].append(late)
    silent = by_kind.get(REQUEST_ANSWER, [])
    return {
        "ports_per_s": round(ports / span, 1),
        "ports_completed": len(arrivals),
        "ports_window_s": round(span, 1),
        "ports_filed": stats.filed,
        "ports_closed_completed": stats.completed,
        "messages_per_s": round(messages / max(1e-9, t_end - t0)),
        "messages": messages,
        "messages_by_method": dict(sorted(calls.by_method.items())),
        "donors_silent": stats.silent,
        "call_errors": stats.errors,
        "pending_deadlines": options.pending_deadlines,
        "pending_deadlines_after": pending,
        "deadlines_fired": len(lateness),
        "deadline_scan_ms": _ms(statistics.median(scans)),
        "deadline_lateness_p50_ms": _ms(_percentile(lateness, 0.5)),
        "deadline_lateness_p99_ms": _ms(_percentile(lateness, 0.99)),
        "donor_answer_deadlines_fired": len(silent),
        "donor_answer_lateness_p99_ms": _ms(_percentile(silent, 0.99)) if silent else None,
        # Which deadlines were late: the executions crowded by the fill, the donors' silences.
        "deadline_lateness_by_kind": {
            kind: {
                "fired": len(values),
                "p50_ms": _ms(_percentile(values, 0.5)),
                "p99_ms": _ms(_percentile(values, 0.99)),
            }
            for kind, values in sorted(by_kind.items())
        },
        "broadcast_streams": len(observer_names),
        "broadcasts_received": len(watchers.latencies),
        "broadcast_p50_ms": _ms(_percentile(watchers.latencies, 0.5)),
        "broadcast_p99_ms": _ms(_percentile(watchers.latencies, 0.99)),
        # CPU seconds per wall second while filing (2.0 is two cores busy).
        "cpu_share_while_filing": _cores(cpu_before, cpu_after, t_end - t0),
        # The whole machine meanwhile, every process included: busy, idle and stolen cores.
        "machine_cores_while_filing": _cores(machine_before, machine_after, t_end - t0),
        # What one port costs each part, from the first execution on (the pipeline full): it
        # says whether a change made a port cheaper even when a busy machine's throughput and
        # latencies move from run to run.
        "cpu_ms_per_port": _cpu_per_port(cpu_flowing, cpu_after, arrivals, t_end)
        # A run too short for a port after the first reading: the whole run, fill and drain in.
        or _cpu_per_port((t0, cpu_before), cpu_drained, arrivals, t_drained, least=1),
    }


MIN_PORTS_FOR_CPU = 10


def _cpu_per_port(
    flowing: tuple[float, dict[str, float]] | None,
    after: dict[str, float],
    arrivals: list[float],
    t_end: float,
    least: int = MIN_PORTS_FOR_CPU,
) -> dict[str, float] | None:
    """CPU milliseconds per executed port of each part, between `flowing` and `t_end`, when at
    least `least` ports executed then."""
    if flowing is None:
        return None
    since, before = flowing
    executed = sum(1 for a in arrivals if since < a <= t_end)
    # CPU time is read in clock ticks (10 ms): over a handful of ports a part's figure would be
    # mostly rounding, or zero on a busy machine. The caller then measures the whole run.
    if executed < max(1, least):
        return None
    return {
        name: round(1000 * (after[name] - before.get(name, 0.0)) / executed, 2) for name in after
    }


async def _lookups_phase(options: AllBenchOptions, target: str) -> dict[str, Any]:
    """Batches of 10,000 numbers through LookupNumbers (columnar), as `npc bench lookups`."""
    rng = random.Random(options.seed)
    if options.numbers:
        pool = [(FIRST_NUMBER, FIRST_NUMBER + options.numbers - 1)]
    else:
        pool = [(int(first), int(last)) for _, _, first, last in DEMO_RANGES]
    batches = []
    for _ in range(20):
        batch = []
        for _ in range(BATCH):
            first, last = rng.choice(pool)
            batch.append(str(rng.randint(first, last)))
        batches.append(batch)
    channels = [_channel(target) for _ in range(max(2, options.workers * 2))]
    try:
        stubs = [registry_pb2_grpc.RegistryServiceStub(c) for c in channels]
        call = lookup_batches(
            stubs, batches, (("authorization", "Bearer dev-token-claro"),), columnar=True
        )
        _log(f"lookups: batches of {BATCH:,} (columnar), 4 in flight")
        await _throughput(call, 4, min(1.0, options.ceiling_seconds))
        rate, latencies = await _throughput(call, 4, options.ceiling_seconds)
    finally:
        for channel in channels:
            await channel.close()
    return {
        "lookups_batch_per_s": round(rate),
        "lookups_batch_p99_ms": _ms(_percentile(latencies, 0.99)),
        "lookups_registry_numbers": options.numbers or None,
    }


def run_all(options: AllBenchOptions, as_json: bool) -> int:
    """`npc bench all`: print the figures (one JSON object with --json)."""
    figures = asyncio.run(bench_all(options))
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    return 0
