"""The `npc` command: `serve`, `demo` and `admin`.

`serve` and `demo` use the PostgreSQL and Redis named by NPC_DATABASE_URL and NPC_REDIS_URL; when
one is unset they start an embedded server for it under the `var/` directory (NPC_VAR_DIR), whose
data persists between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType

import asyncpg

from npc.admin import OperatorSpec, add_range, seed_demo, upsert_operator
from npc.config import Settings
from npc.core.anchor import (
    Anchor,
    InvalidAnchor,
    generate_key,
    latest_anchor,
    load_or_generate_key,
    public_key_bytes,
)
from npc.core.calendar import calendar_for
from npc.core.clock import Clock, SharedClock, SystemClock
from npc.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError
from npc.flows.cancellations.handler import end_reporting_operator, register_reporting_operator
from npc.flows.registry.importer import (
    ImportProgress,
    RegistryImportError,
    import_plan,
    import_ported,
)
from npc.flows.sgu.catalogue import CatalogueImportError, load_catalogue_csv
from npc.store.database import Database, migrate_as_owner

log = logging.getLogger("npc.cli")

# The presets of npc_clients.traffic (checked by the tests), named here so that `npc --help` does
# not import the simulator.
PROFILE_NAMES = ("colombia-2023", "peru-2024")


# ---------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class Storage:
    """Where `serve` and `demo` keep their data."""

    settings: Settings
    embedded_database: bool
    embedded_redis: bool

    def describe(self) -> str:
        """One line for humans."""
        var = Path(self.settings.var_dir).resolve()
        database = (
            f"embedded PostgreSQL in {var / 'postgres'}"
            if self.embedded_database
            else "PostgreSQL at NPC_DATABASE_URL"
        )
        redis = f"embedded Redis in {var / 'redis'}" if self.embedded_redis else "NPC_REDIS_URL"
        return f"{database}; {redis}"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def storage(settings: Settings) -> Iterator[Storage]:
    """The configured databases, or embedded ones under `settings.var_dir` for those unset.

    SIGTERM stops the embedded servers cleanly too (as SystemExit), outside the event loop.
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with contextlib.ExitStack() as stack:
            var = Path(settings.var_dir).resolve()
            embedded_database = not settings.database_url
            embedded_redis = not settings.redis_url
            if embedded_database:
                first = not (var / "postgres" / "PG_VERSION").exists()
                log.info(
                    "starting embedded PostgreSQL in %s%s",
                    var / "postgres",
                    " (first run: initdb)" if first else "",
                )
                pg = stack.enter_context(EmbeddedPostgres(var / "postgres"))
                # The server runs as the application role; the superuser owns and migrates.
                settings = replace(settings, database_url=pg.app_dsn, migration_database_url=pg.dsn)
                if not settings.anchor_key:
                    key = var / "anchor.key"
                    load_or_generate_key(key)
                    settings = replace(settings, anchor_key=str(key))
            if embedded_redis:
                log.info("starting embedded Redis in %s", var / "redis")
                redis = stack.enter_context(EmbeddedRedis(var / "redis"))
                settings = replace(settings, redis_url=redis.url)
            yield Storage(settings, embedded_database, embedded_redis)
            # The event loop's signal handling resets SIGTERM when it closes: keep stopping
            # the embedded servers cleanly on a late SIGTERM.
            signal.signal(signal.SIGTERM, _terminate)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _listen_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    changes: dict[str, object] = {}
    if args.host is not None:
        changes.update(grpc_host=args.host, http_host=args.host)
    if args.grpc_port is not None:
        changes["grpc_port"] = args.grpc_port
    if args.http_port is not None:
        changes["http_port"] = args.http_port
    return replace(settings, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- serve


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


async def _serve(settings: Settings, *, seed: bool, description: str) -> int:
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
    return 0


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


def cmd_serve(args: argparse.Namespace) -> int:
    """`npc serve`."""
    try:
        settings = _listen_overrides(Settings.from_env(), args)
    except ValueError as exc:
        print(f"npc serve: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("npc serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and (settings.grpc_port == 0 or settings.http_port == 0):
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
    with storage(settings) as store:
        if args.workers == 1:
            return asyncio.run(
                _serve(store.settings, seed=store.embedded_database, description=store.describe())
            )
        return asyncio.run(_supervise(store, args.workers))


async def _prepare(settings: Settings, *, seed: bool) -> None:
    """Migrate (and seed the demo market) once, before the workers start."""
    assert settings.database_url is not None
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    try:
        await _migrate(db, settings.migration_database_url)
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

    log.info(
        "npc serving with %d workers: gRPC %s:%d, HTTP http://%s:%d; %s",
        workers,
        settings.grpc_host,
        settings.grpc_port,
        settings.http_host,
        settings.http_port,
        store.describe(),
    )
    await asyncio.gather(*(worker(i) for i in range(workers)))
    log.info("all workers stopped")
    return 0


# ---------------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """`npc demo`."""
    from npc.demo import DemoOptions, run_demo  # the simulator is only needed here

    if args.ports is not None and args.ports < 1:
        print("npc demo: --ports must be at least 1", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    # The demo's own operators are its only clients: unless told otherwise, listen on free ports,
    # so it never shares (SO_REUSEPORT) the port of a running `npc serve`.
    if args.grpc_port is None and "NPC_GRPC_PORT" not in os.environ:
        args.grpc_port = 0
    if args.http_port is None and "NPC_HTTP_PORT" not in os.environ:
        args.http_port = 0
    settings = _listen_overrides(settings, args)
    traffic = None
    if args.profile is not None:
        from npc_clients.traffic import profile_named

        traffic = profile_named(args.profile)
    speed = 86400.0 / (args.day_minutes * 60.0) if args.day_minutes is not None else args.speed
    options = DemoOptions(
        operators=args.operators,
        ports=args.ports,
        duration=args.duration,
        rate=args.rate,
        speed=speed,
        interval=args.interval,
        seed=args.seed,
        traffic=traffic,
        scale=args.scale,
    )
    with storage(settings) as store:
        return asyncio.run(run_demo(store.settings, options, describe_storage=store.describe()))


# ---------------------------------------------------------------------------------- admin


class _ProgressBar:
    """One carriage-return line on stderr: share of the file read, lines and lines per second."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = time.monotonic()
        self.shown = 0.0
        self.width = 0

    def __call__(self, state: ImportProgress) -> None:
        now = time.monotonic()
        if (
            state.phase == "copy"
            and now - self.shown < 0.1
            and state.bytes_read < state.total_bytes
        ):
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        share = 100 * state.bytes_read / state.total_bytes if state.total_bytes else 100.0
        if state.phase == "copy":
            text = (
                f"import {self.kind}: {share:5.1f}% read, {state.lines:,} lines,"
                f" {state.lines / elapsed:,.0f} rows/s"
            )
        else:
            text = f"import {self.kind}: 100.0% read, {state.phase} ({elapsed:.1f} s)"
        self._show(text)

    def _show(self, text: str) -> None:
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def done(self) -> None:
        if self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _migrate(db: Database, migration_url: str | None) -> list[str]:
    """Migrate as the owner of NPC_MIGRATION_DATABASE_URL when set, granting `db`'s role the
    application privileges; else as `db`'s own role."""
    if not migration_url:
        return await db.migrate()
    async with db.pool.acquire() as conn:
        role: str = await conn.fetchval("SELECT current_user")
    return await migrate_as_owner(migration_url, role)


async def _print_anchor(db: Database) -> int:
    """`npc admin anchor`: the latest signed anchor, as JSON, for the regulator to keep."""
    anchor = await latest_anchor(db)
    if anchor is None:
        print(
            "npc admin: no anchor yet (does the server run with NPC_ANCHOR_KEY?)", file=sys.stderr
        )
        return 1
    print(json.dumps(anchor.to_json(), indent=2))
    return 0


def _anchor_key(path: Path) -> int:
    """`npc admin anchor-key FILE`: a new signing key; prints its public key."""
    try:
        key = generate_key(path)
    except FileExistsError:
        print(f"npc admin: {path} exists; not replacing a signing key", file=sys.stderr)
        return 1
    print(f"anchor signing key: {path} (give it to the server as NPC_ANCHOR_KEY)")
    print(f"public key (Ed25519, hex): {public_key_bytes(key).hex()}")
    return 0


async def _verify_log(db: Database, anchor_file: str | None = None) -> int:
    """`npc admin verify-log`: exit 0 when the chain holds, 1 at the first broken position, 2
    when the anchor given is unreadable or its signature does not verify."""
    from npc.core.verify import verify_log

    anchor = None
    if anchor_file is not None:
        try:
            anchor = Anchor.from_file(Path(anchor_file))
            anchor.check_signature()
        except (OSError, InvalidAnchor) as exc:
            print(f"anchor refused: {exc}")
            return 2
    started = time.monotonic()

    def progress(position: int) -> None:
        sys.stderr.write(f"\rverify-log: {position:,} events checked")
        sys.stderr.flush()

    result = await verify_log(db, progress=progress, anchor=anchor)
    sys.stderr.write("\r")
    elapsed = time.monotonic() - started
    if result.intact:
        print(
            f"log intact: {result.checked:,} events up to position {result.head} ({elapsed:.1f} s)"
            + (f"; anchored position {anchor.position} matches" if anchor else "")
        )
        return 0
    if result.first_broken is None:
        print(f"compliance ledger broken: {result.reason}")
        return 1
    print(
        f"log broken at position {result.first_broken}: {result.reason}"
        f" ({result.checked:,} events before it verified)"
    )
    return 1


async def _import(db: Database, kind: str, path: str) -> int:
    bar = _ProgressBar(kind)
    load = import_plan if kind == "plan" else import_ported
    try:
        report = await load(db, path, bar, now=datetime.now(UTC))
    except RegistryImportError as exc:
        bar.done()
        print(f"line {exc.line}: {exc.reason}", file=sys.stderr)
        print("npc admin: nothing imported", file=sys.stderr)
        return 1
    bar.done()
    rate = report.rows / report.seconds if report.seconds else 0.0
    what = "ranges added to the plan" if kind == "plan" else "ported numbers recorded"
    print(
        f"imported {report.rows:,} {what} from {path} in {report.seconds:.1f} s"
        f" ({rate:,.0f} rows/s)"
        + (f"; {report.changed:,} changed serving operator" if kind == "ported" else "")
    )
    return 0


async def _load_sgu_catalogue(db: Database, path: Path) -> int:
    try:
        count = await load_catalogue_csv(db, path, now=datetime.now(UTC), sender="admin")
    except CatalogueImportError as exc:
        print(f"line {exc.line}: {exc.reason}", file=sys.stderr)
        print("npc admin: nothing loaded", file=sys.stderr)
        return 1
    print(f"loaded {count} SGU subcategories from {path}")
    return 0


async def _with_database(url: str, action: str, args: argparse.Namespace) -> int:
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        if action == "migrate":
            applied = await _migrate(db, os.environ.get("NPC_MIGRATION_DATABASE_URL"))
            print(f"applied {', '.join(applied)}" if applied else "schema up to date")
        elif action == "seed-demo":
            await db.migrate()
            if await seed_demo(db):
                print("loaded the demo market: tokens dev-token-<operator>")
            else:
                print("operators already exist; nothing loaded")
        elif action == "add-operator":
            token = args.token
            async with db.pool.acquire() as conn:
                exists = await conn.fetchval("SELECT 1 FROM operators WHERE id = $1", args.id)
            if token is None and not exists:
                token = secrets.token_urlsafe(32)
            await upsert_operator(
                db,
                OperatorSpec(
                    args.id,
                    args.name,
                    args.routing_code,
                    token,
                    role="regulator" if args.regulator else "operator",
                    country=args.country,
                ),
            )
            print(f"{'updated' if exists else 'added'} operator {args.id}")
            if token is not None and args.token is None:
                print(f"API token (shown once, only its digest is stored): {token}")
        elif action == "add-range":
            await add_range(db, args.operator, args.service, args.first, args.last)
            print(f"{args.operator} holds {args.service} numbers {args.first}-{args.last}")
        elif action == "import":
            return await _import(db, args.kind, args.file)
        elif action == "verify-log":
            return await _verify_log(db, args.anchor)
        elif action == "anchor":
            return await _print_anchor(db)
        elif action == "sgu-catalogue":
            return await _load_sgu_catalogue(db, Path(args.file))
        elif action in ("add-reporting-operator", "end-reporting-operator"):
            return await _reporting(db, action, args)
    except asyncpg.UndefinedTableError:
        print("npc admin: the schema is missing; run `npc admin migrate` first", file=sys.stderr)
        return 1
    except asyncpg.ForeignKeyViolationError:
        print(f"npc admin: unknown operator {args.operator!r}", file=sys.stderr)
        return 1
    except asyncpg.ExclusionViolationError:
        print("npc admin: the range overlaps a range already assigned", file=sys.stderr)
        return 1
    finally:
        await db.close()
    return 0


async def _reporting(db: Database, action: str, args: argparse.Namespace) -> int:
    settings = Settings.from_env().cancellations
    now = SystemClock().now()
    today = calendar_for(settings.jurisdiction).local_date(now)
    if action == "add-reporting-operator":
        since = args.since or today
        await register_reporting_operator(
            db, settings, operator=args.operator, since=since, subscribers=args.subscribers, now=now
        )
        print(f"{args.operator} reports cancellations and plan migrations daily from {since}")
        return 0
    last = args.last_date or today - timedelta(days=1)
    if not await end_reporting_operator(db, operator=args.operator, until=last, now=now):
        print(f"npc admin: {args.operator} is not a reporting operator", file=sys.stderr)
        return 1
    print(f"{args.operator} reports cancellations and plan migrations up to {last}")
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """`npc admin …`."""
    if args.action in ("make-ca", "issue-cert"):
        return _certificates(args)
    if args.action == "anchor-key":
        return _anchor_key(Path(args.file))
    url = args.database_url or os.environ.get("NPC_DATABASE_URL")
    if not url:
        print("npc admin: set NPC_DATABASE_URL (or pass --database-url)", file=sys.stderr)
        return 2
    if args.action == "add-range":
        if args.service not in ("mobile", "fixed"):
            print("npc admin: SERVICE is mobile or fixed", file=sys.stderr)
            return 2
        if not (args.first.isdigit() and args.last.isdigit()) or int(args.first) > int(args.last):
            print("npc admin: FIRST and LAST are numbers, FIRST <= LAST", file=sys.stderr)
            return 2
    if args.action in ("import", "sgu-catalogue") and not Path(args.file).is_file():
        print(f"npc admin: no such file: {args.file}", file=sys.stderr)
        return 2
    return asyncio.run(_with_database(url, args.action, args))


def _certificates(args: argparse.Namespace) -> int:
    """`npc admin make-ca DIR` and `npc admin issue-cert DIR NAME`: PKI for tests and demos."""
    from npc.api.tls import CA_CERT, CA_KEY, issue_certificate, make_ca

    directory = Path(args.dir)
    if args.action == "make-ca":
        if (directory / CA_KEY).exists():
            print(f"npc admin: {directory / CA_KEY} exists; not replacing a CA", file=sys.stderr)
            return 1
        print(f"CA certificate: {make_ca(directory)} (give it to the server as NPC_TLS_CLIENT_CA)")
        return 0
    if not (directory / CA_KEY).exists():
        print(
            f"npc admin: no CA in {directory}; run `npc admin make-ca {directory}`", file=sys.stderr
        )
        return 1
    files = issue_certificate(directory, args.name, server_hosts=args.server_host or None)
    kind = "server" if args.server_host else f"operator {args.name!r}"
    print(f"{kind} certificate: {files.cert}, key: {files.key}, CA: {directory / CA_CERT}")
    return 0


# ---------------------------------------------------------------------------------- parser


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a date YYYY-MM-DD") from None


def _listen_options(parser: argparse.ArgumentParser, ports: tuple[str, str]) -> None:
    parser.add_argument(
        "--grpc-port", type=int, help=f"gRPC port (default: NPC_GRPC_PORT, else {ports[0]})"
    )
    parser.add_argument(
        "--http-port", type=int, help=f"HTTP port (default: NPC_HTTP_PORT, else {ports[1]})"
    )
    parser.add_argument(
        "--host", help="address to listen on (default: NPC_GRPC_HOST / NPC_HTTP_HOST, 127.0.0.1)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `npc`."""
    parser = argparse.ArgumentParser(
        prog="npc", description="National number portability clearinghouse."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the clearinghouse (gRPC + HTTP) until SIGINT/SIGTERM",
        description="Run the clearinghouse. Without NPC_DATABASE_URL / NPC_REDIS_URL, embedded"
        " servers run under var/ and the demo market is loaded.",
    )
    _listen_options(serve, ("50051", "8080"))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("NPC_WORKERS", "1")),
        help="server processes sharing the ports and the databases (default: NPC_WORKERS, else 1)",
    )
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser(
        "demo",
        help="run the clearinghouse with simulated operators porting numbers",
        description="Run a clearinghouse on an accelerated clock with simulated operators that"
        " file, answer, schedule and confirm ports over gRPC; print progress and the complete"
        " ports per second.",
    )
    demo.add_argument(
        "--operators", type=int, default=4, help="simulated operators, 2 to 4 (default 4)"
    )
    bound = demo.add_mutually_exclusive_group()
    bound.add_argument("--ports", type=int, help="stop once this many ports completed")
    bound.add_argument(
        "--duration", type=_positive, help="stop filing after this many seconds, then summarise"
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="port requests filed per second, all operators together (default 20; 0: unpaced)",
    )
    pace = demo.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive,
        default=60.0,
        help="demo clock seconds per wall second (default 60)",
    )
    pace.add_argument(
        "--day-minutes",
        type=_positive,
        help="time compression as the wall minutes a demo day lasts (e.g. 10: 144x)",
    )
    demo.add_argument(
        "--profile",
        choices=sorted(PROFILE_NAMES),
        help="file as a country does: daily curve, market shares and operator behaviour"
        " (instead of --rate and --operators)",
    )
    demo.add_argument(
        "--scale",
        type=_positive,
        default=1.0,
        help="with --profile, the share of the country's volume to file (default 1)",
    )
    demo.add_argument(
        "--interval", type=_positive, default=1.0, help="seconds between progress lines"
    )
    demo.add_argument("--seed", type=int, help="random seed of the simulated operators")
    _listen_options(demo, ("a free port", "a free port"))
    demo.set_defaults(func=cmd_demo)

    admin = commands.add_parser(
        "admin", help="reference data: operators, tokens, ranges (NPC_DATABASE_URL)"
    )
    admin.add_argument("--database-url", help="default: NPC_DATABASE_URL")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("migrate", help="apply pending schema migrations")
    make_ca_parser = actions.add_parser(
        "make-ca", help="create a certificate authority for operators' certificates (tests, demos)"
    )
    make_ca_parser.add_argument("dir", metavar="DIR")
    issue = actions.add_parser(
        "issue-cert",
        help="issue an operator's client certificate (CN = operator id) or the server's",
    )
    issue.add_argument("dir", metavar="DIR", help="the CA's directory")
    issue.add_argument("name", metavar="NAME", help="operator id, or a name for the server")
    issue.add_argument(
        "--server-host",
        action="append",
        metavar="HOST",
        help="issue a server certificate valid for HOST (DNS name or IP; repeatable)",
    )
    verify = actions.add_parser(
        "verify-log",
        help="recompute the event log's hash chain and report the first broken position",
    )
    verify.add_argument(
        "--anchor",
        metavar="FILE",
        help="an anchor kept outside (`npc admin anchor` output): the log must reach its"
        " position with its hash, and its signature must verify",
    )
    actions.add_parser(
        "anchor", help="print the latest signed anchor of the log (JSON) to keep outside"
    )
    anchor_key = actions.add_parser(
        "anchor-key", help="create the Ed25519 key signing the anchors; print its public key"
    )
    anchor_key.add_argument("file", metavar="FILE")
    actions.add_parser("seed-demo", help="load the demo market when no operator exists")
    add_operator = actions.add_parser("add-operator", help="register or update an operator")
    add_operator.add_argument("id", metavar="ID")
    add_operator.add_argument("name", metavar="NAME")
    add_operator.add_argument("routing_code", metavar="ROUTING_CODE")
    add_operator.add_argument(
        "--token", help="its API token (default: keep the current one, or generate one)"
    )
    add_operator.add_argument(
        "--regulator", action="store_true", help="the regulator's read-only identity"
    )
    add_operator.add_argument(
        "--country",
        choices=("PE", "CO"),
        default="PE",
        help="the country whose services it uses (default PE; CO for the PQR regime)",
    )
    add_range_parser = actions.add_parser("add-range", help="assign a numbering range")
    add_range_parser.add_argument("operator", metavar="OPERATOR")
    add_range_parser.add_argument("service", metavar="SERVICE", help="mobile or fixed")
    add_range_parser.add_argument("first", metavar="FIRST")
    add_range_parser.add_argument("last", metavar="LAST")
    import_parser = actions.add_parser(
        "import",
        help="bulk-load the numbering plan or the ported numbers from a CSV file",
        description="Load a CSV file in one transaction: plan (header operator,service,first,last)"
        " or ported (header number,serving_operator,ported_at). The first bad row fails the import"
        " with its line number and nothing is loaded. See README, Registry data.",
    )
    import_parser.add_argument(
        "kind", choices=["plan", "ported"], metavar="KIND", help="plan or ported"
    )
    import_parser.add_argument("file", metavar="FILE")
    catalogue_parser = actions.add_parser(
        "sgu-catalogue",
        help="add or change SGU problem subcategories from a CSV file",
        description="Header code,name,category,category_name,service,deadline_unit,"
        "deadline_amount,claimable,claim_business_days[,active]; deadline_unit is business_days"
        " or hours. One transaction: the first bad line fails the load with its line number.",
    )
    catalogue_parser.add_argument("file", metavar="FILE")
    reporting = actions.add_parser(
        "add-reporting-operator",
        help="bind an operator (over 500,000 subscribers) to the daily cancellations report",
    )
    reporting.add_argument("operator", metavar="OPERATOR")
    reporting.add_argument(
        "--since", type=_date, help="first report date it must send (default: today, Lima)"
    )
    reporting.add_argument("--subscribers", type=int, help="its declared number of subscribers")
    ending = actions.add_parser(
        "end-reporting-operator", help="end an operator's daily cancellations report"
    )
    ending.add_argument("operator", metavar="OPERATOR")
    ending.add_argument(
        "--last-date", type=_date, help="last report date it must send (default: yesterday, Lima)"
    )
    admin.set_defaults(func=cmd_admin)

    bench = commands.add_parser(
        "bench",
        help="measure performance on this machine (private PostgreSQL and Redis)",
        description="Benchmarks print figures, with ceilings measured in the same run; they"
        " never change data outside their own temporary directory.",
    )
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    lookups = benches.add_parser(
        "lookups",
        help="registry lookups: single, batches of 10,000, and the Redis MGET ceiling",
    )
    lookups.add_argument(
        "--numbers", type=int, default=10_000_000, help="registry size (default 10,000,000)"
    )
    lookups.add_argument(
        "--ported-share", type=float, default=0.3, help="share of numbers ported (default 0.3)"
    )
    lookups.add_argument(
        "--seconds", type=_positive, default=5.0, help="seconds per measurement (default 5)"
    )
    lookups.add_argument("--json", action="store_true", help="print one JSON object")
    lookups.set_defaults(func=cmd_bench_lookups)
    everything = benches.add_parser(
        "all",
        help="the whole clearinghouse: ports/s, messages/s, deadline lateness, broadcast"
        " latency, batch lookups, with the gRPC and PostgreSQL commit ceilings",
        description="Private PostgreSQL and Redis, `npc serve --workers N` on an accelerated"
        " shared clock (NPC_CLOCK) starting a minute before the change window, four simulated"
        " operators porting numbers and 20 operators watching the broadcasts.",
    )
    everything.add_argument(
        "--workers", type=int, default=1, help="server processes (npc serve --workers; default 1)"
    )
    everything.add_argument(
        "--seconds", type=_positive, default=60.0, help="seconds of port filing (default 60)"
    )
    everything.add_argument(
        "--ceiling-seconds",
        type=_positive,
        default=5.0,
        help="seconds of each ceiling and of the lookups (default 5)",
    )
    everything.add_argument(
        "--pending-deadlines",
        type=int,
        default=1_000_000,
        help="far-future deadlines pending during the run (default 1,000,000)",
    )
    everything.add_argument(
        "--numbers",
        type=int,
        default=1_000_000,
        help="synthetic registry for the batch lookups (default 1,000,000; 0: the demo ranges)",
    )
    everything.add_argument(
        "--in-flight",
        type=int,
        default=128,
        help="own requests in flight per simulated operator (default 128)",
    )
    everything.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="port requests filed per second, all operators (default 0: as fast as they can)",
    )
    everything.add_argument(
        "--speed", type=_positive, default=60.0, help="simulated seconds per wall second (60)"
    )
    everything.add_argument("--json", action="store_true", help="print one JSON object")
    everything.set_defaults(func=cmd_bench_all)
    return parser


def cmd_bench_all(args: argparse.Namespace) -> int:
    """`npc bench all`."""
    from npc.bench import AllBenchOptions, run_all

    if args.workers < 1 or args.pending_deadlines < 0 or args.numbers < 0 or args.in_flight < 1:
        print(
            "npc bench: --workers and --in-flight must be positive, --pending-deadlines and"
            " --numbers not negative",
            file=sys.stderr,
        )
        return 2
    options = AllBenchOptions(
        workers=args.workers,
        seconds=args.seconds,
        ceiling_seconds=args.ceiling_seconds,
        pending_deadlines=args.pending_deadlines,
        numbers=args.numbers,
        in_flight=args.in_flight,
        rate=args.rate,
        speed=args.speed,
    )
    return run_all(options, args.json)


def cmd_bench_lookups(args: argparse.Namespace) -> int:
    """`npc bench lookups`."""
    from npc.bench import LookupBenchOptions, run_lookups

    if args.numbers < 1 or not 0 <= args.ported_share <= 1:
        print("npc bench: --numbers must be positive and --ported-share in [0, 1]", file=sys.stderr)
        return 2
    options = LookupBenchOptions(
        numbers=args.numbers, ported_share=args.ported_share, seconds=args.seconds
    )
    return run_lookups(options, args.json)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `npc` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # grpc and asyncio chatter is noise unless debugging.
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except EmbeddedServiceError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
