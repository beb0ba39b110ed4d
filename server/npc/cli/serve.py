"""`npc serve`: the clearinghouse (gRPC + HTTP) until SIGINT/SIGTERM, in one process or as a
supervisor of worker processes sharing the ports."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from npc.admin import seed_demo
from npc.cli.common import (
    Storage,
    Subcommands,
    listen_options,
    listen_overrides,
    log,
    migrate,
    storage,
)
from npc.cli.record import (
    ServeRecord,
    check_database,
    check_port_free,
    remove_record,
    scrape_address,
    write_record,
)
from npc.config import VARIABLES, ConfigError, Settings, env_int, env_text
from npc.core.clock import Clock, SharedClock, SystemClock
from npc.embedded import free_port
from npc.event_loops import loop_factory
from npc.store.database import Database


def _environment_help() -> str:
    """The environment variables, for `npc serve --help`."""
    width = max(len(v.name) for v in VARIABLES)
    lines = ["environment variables (default; meaning):"]
    lines += [f"  {v.name:<{width}}  {v.default}; {v.meaning}" for v in VARIABLES]
    lines.append("A bad value stops `npc serve` before anything starts: one line, exit status 2.")
    return "\n".join(lines)


def add_parser(commands: Subcommands) -> None:
    """Add `serve` to the commands of `npc`."""
    serve = commands.add_parser(
        "serve",
        help="run the clearinghouse (gRPC + HTTP) until SIGINT/SIGTERM",
        description="Run the clearinghouse. Without NPC_DATABASE_URL / NPC_REDIS_URL, embedded"
        " servers run under var/ and the demo market is loaded. Where it listens is recorded"
        " in var/serve.json (npc admin and npc ops up read it).",
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listen_options(serve, ("50051", "8080"))
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the ports and the databases (default: NPC_WORKERS, else 1)",
    )
    serve.set_defaults(func=cmd_serve)


def _clock(settings: Settings) -> Clock:
    """The wall clock, or the accelerated clock NPC_CLOCK sets explicitly (demos, benchmarks)."""
    if settings.clock is None:
        return SystemClock()
    clock = SharedClock.parse(settings.clock)
    log.warning(
        "NPC_CLOCK is set: running on a simulated clock %gx faster than the wall clock, now %s"
        " (a demo and benchmark facility, never for production)",
        clock.speed,
        clock.now().isoformat(timespec="seconds"),
    )
    return clock


async def _serve(
    settings: Settings, *, seed: bool, description: str, store: Storage | None = None
) -> int:
    """One server process until SIGINT/SIGTERM; with `store` (not a supervised worker) it
    records where it listens under the var directory."""
    # Imported here: the servers cost `npc admin` commands a second of imports they never use.
    from npc.app import Clearinghouse

    house = Clearinghouse(settings, _clock(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await house.start()
        assert house.core is not None and house.authenticator is not None
        if seed:
            if await seed_demo(house.core.db):
                log.info("loaded the demo market: operators with tokens dev-token-<operator>")
            await house.authenticator.load()
        if store is not None:
            metrics = (
                scrape_address(settings.http_host, house.metrics_port)
                if house.metrics_port
                else scrape_address(settings.http_host, house.http_port)
            )
            _record(store, house.grpc_port, house.http_port, [metrics])
        _settle_garbage_collector()
        log.info(
            "npc serving: gRPC %s:%d, HTTP http://%s:%d (/healthz, /metrics); %s",
            settings.grpc_host,
            house.grpc_port,
            settings.http_host,
            house.http_port,
            description,
        )
        # A background loop that ended for good leaves the process unhealthy: stop, and exit
        # non-zero so that `npc serve --workers` or the service manager starts it again.
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(house.failed.wait())
        await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
        if house.failed.is_set():
            log.critical("a background loop ended; stopping with status 1 to be restarted")
            return 1
        log.info("stopping")
    finally:
        # The handlers stay until the loop closes: a second signal must not kill the process
        # before the embedded servers are stopped.
        await house.stop(lame_duck=settings.lame_duck if stop.is_set() else 0.0)
        if store is not None:
            remove_record(settings.var_dir, os.getpid())
    return 0


def _record(store: Storage, grpc_port: int, http_port: int, metrics: list[str]) -> None:
    """Write var/serve.json: the listeners, every /metrics, the embedded servers."""
    settings = store.settings
    record = ServeRecord(
        pid=os.getpid(),
        grpc=scrape_address(settings.grpc_host, grpc_port),
        http=scrape_address(settings.http_host, http_port),
        metrics=metrics,
        workers=len(metrics),
        database_url=settings.database_url if store.embedded_database else None,
        owner_database_url=settings.migration_database_url if store.embedded_database else None,
        redis_url=settings.redis_url if store.embedded_redis else None,
        redis_prefix=settings.redis_prefix,
    )
    path = write_record(settings.var_dir, record)
    log.info("recorded the listeners in %s", path)


def _settle_garbage_collector() -> None:
    """Once started, move what the process holds for good out of the collector's sight, and
    collect the young generation less often.

    A server allocates many short-lived objects per call; with the default threshold (700) the
    collector ran hundreds of times a second under load, a tenth of the process's time, mostly
    walking the modules, protobuf classes and caches loaded at start (`gc.freeze`).
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(20_000, second, third)


def event_loop_factory(env: Mapping[str, str]) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop NPC_EVENT_LOOP names (`npc.event_loops.loop_factory`: uvloop unless it
    says asyncio or uvloop is missing); ConfigError for another name, or for uvloop named and
    missing."""
    try:
        return loop_factory(env_text(env, "NPC_EVENT_LOOP", ""))
    except ValueError as exc:
        raise ConfigError("NPC_EVENT_LOOP", str(exc)) from None


def _run(factory: Callable[[], asyncio.AbstractEventLoop], main: Awaitable[int]) -> int:
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)  # type: ignore[arg-type]  # a coroutine


def cmd_serve(args: argparse.Namespace) -> int:
    """`npc serve`. Every setting is checked before anything starts (ConfigError: one line,
    status 2), the ports free and a configured database reachable included."""
    settings = listen_overrides(Settings.from_env(), args)
    workers = (
        args.workers
        if args.workers is not None
        else env_int(os.environ, "NPC_WORKERS", 1, minimum=1, maximum=256)
    )
    if workers < 1:
        print("npc serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and (settings.grpc_port == 0 or settings.http_port == 0):
        print("npc serve: --workers needs fixed ports (they share them)", file=sys.stderr)
        return 2
    if not settings.mutual_tls and not settings.dev_mode and settings.database_url:
        print(
            "npc serve: operators must present client certificates: set NPC_TLS_CERT,"
            " NPC_TLS_KEY and NPC_TLS_CLIENT_CA (see `npc admin make-ca`), or NPC_DEV_MODE=1"
            " for bearer tokens without TLS on a trusted development network",
            file=sys.stderr,
        )
        return 2
    loop_factory = event_loop_factory(os.environ)
    supervised = "NPC_WORKER" in os.environ
    if not supervised:
        # A supervised worker shares the ports its supervisor checked (SO_REUSEPORT).
        check_port_free("NPC_GRPC_PORT", settings.grpc_host, settings.grpc_port)
        check_port_free("NPC_HTTP_PORT", settings.http_host, settings.http_port)
        if workers > 1 and settings.metrics_port is None:
            settings = replace(settings, metrics_port=_free_port_run(settings.http_host, workers))
        if settings.metrics_port is not None:
            for worker in range(workers):
                check_port_free(
                    "NPC_METRICS_PORT", settings.http_host, settings.metrics_port + worker
                )
        if settings.database_url:
            check_database("NPC_DATABASE_URL", settings.database_url)
        if settings.migration_database_url:
            check_database("NPC_MIGRATION_DATABASE_URL", settings.migration_database_url)
    with storage(settings) as store:
        if workers == 1:
            return _run(
                loop_factory,
                _serve(
                    store.settings,
                    seed=store.embedded_database,
                    description=store.describe(),
                    store=None if supervised else store,
                ),
            )
        return _run(loop_factory, _supervise(store, workers))


def _free_port_run(host: str, count: int, attempts: int = 50) -> int:
    """The first of `count` consecutive free ports: the workers' own /metrics ports when
    NPC_METRICS_PORT is unset (Prometheus scrapes each; `npc ops up` reads them)."""
    for _ in range(attempts):
        first = free_port()
        if first + count > 65536:
            continue
        try:
            for port in range(first, first + count):
                check_port_free("NPC_METRICS_PORT", host, port)
        except ConfigError:
            continue
        return first
    raise ConfigError("NPC_METRICS_PORT", f"found no {count} consecutive free ports; set it")


async def _prepare(settings: Settings, *, seed: bool) -> None:
    """Migrate (and seed the demo market) once, before the workers start."""
    assert settings.database_url is not None
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    try:
        await migrate(db, settings.migration_database_url)
        if seed and await seed_demo(db):
            log.info("loaded the demo market: operators with tokens dev-token-<operator>")
    finally:
        await db.close()


async def _supervise(store: Storage, workers: int) -> int:
    """Run `workers` server processes on the same ports (SO_REUSEPORT) and keep them running.

    They share PostgreSQL and Redis and nothing else: any of them may sequence events, fire a
    deadline (each exactly once, by row locks) or answer a lookup. A worker that dies is started
    again; SIGINT/SIGTERM stop them all.
    """
    settings = store.settings
    await _prepare(settings, seed=store.embedded_database)
    env = {
        **os.environ,
        "NPC_DATABASE_URL": settings.database_url or "",
        "NPC_REDIS_URL": settings.redis_url or "",
        "NPC_REDIS_PREFIX": settings.redis_prefix,
        "NPC_GRPC_HOST": settings.grpc_host,
        "NPC_GRPC_PORT": str(settings.grpc_port),
        "NPC_HTTP_HOST": settings.http_host,
        "NPC_HTTP_PORT": str(settings.http_port),
        "NPC_MIGRATION_DATABASE_URL": settings.migration_database_url or "",
        "NPC_ANCHOR_KEY": settings.anchor_key or "",
        "NPC_METRICS_PORT": str(settings.metrics_port or ""),
        "NPC_WORKERS": "1",  # each worker is one process, whatever the supervisor was told
    }
    if not settings.mutual_tls:
        env["NPC_DEV_MODE"] = "1"  # the supervisor itself was allowed to run without TLS
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def worker(index: int) -> None:
        backoff = 1.0
        while not stop.is_set():
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "npc",
                "serve",
                env={**env, "NPC_WORKER": str(index)},
            )
            started = time.monotonic()
            waiting = asyncio.ensure_future(process.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                if process.returncode is None:
                    process.terminate()
                await waiting
                stopping.cancel()
                return
            stopping.cancel()
            log.error("worker %d exited with %s; starting it again", index, process.returncode)
            backoff = 1.0 if time.monotonic() - started > 30 else min(backoff * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()

    assert settings.metrics_port is not None  # cmd_serve chose one
    _record(
        store,
        settings.grpc_port,
        settings.http_port,
        [scrape_address(settings.http_host, settings.metrics_port + i) for i in range(workers)],
    )
    log.info(
        "npc serving with %d workers: gRPC %s:%d, HTTP http://%s:%d; %s",
        workers,
        settings.grpc_host,
        settings.grpc_port,
        settings.http_host,
        settings.http_port,
        store.describe(),
    )
    try:
        await asyncio.gather(*(worker(i) for i in range(workers)))
    finally:
        remove_record(settings.var_dir, os.getpid())
    log.info("all workers stopped")
    return 0
