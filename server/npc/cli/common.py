"""What several command groups share: the storage `serve` and `demo` run on, listen options,
argument types and migrations."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TypeAlias

from npc.config import Settings
from npc.core.anchor import load_or_generate_key
from npc.embedded import EmbeddedPostgres, EmbeddedRedis
from npc.store.database import Database, migrate_as_owner

# Every module of the command logs as `npc.cli`, the name its log lines always carried.
log = logging.getLogger("npc.cli")

# argparse exports no public name for what add_subparsers returns.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


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


def port(value: str) -> int:
    """An argument type: a TCP port, 0 (any free port) to 65535."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is out of range (0 to 65535)")
    return number


def listen_options(parser: argparse.ArgumentParser, ports: tuple[str, str]) -> None:
    """`--grpc-port`, `--http-port` and `--host`; `ports` names the defaults in the help."""
    parser.add_argument(
        "--grpc-port", type=port, help=f"gRPC port (default: NPC_GRPC_PORT, else {ports[0]})"
    )
    parser.add_argument(
        "--http-port", type=port, help=f"HTTP port (default: NPC_HTTP_PORT, else {ports[1]})"
    )
    parser.add_argument(
        "--host", help="address to listen on (default: NPC_GRPC_HOST / NPC_HTTP_HOST, 127.0.0.1)"
    )


def listen_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the listen options given on the command line."""
    changes: dict[str, object] = {}
    if args.host is not None:
        changes.update(grpc_host=args.host, http_host=args.host)
    if args.grpc_port is not None:
        changes["grpc_port"] = args.grpc_port
    if args.http_port is not None:
        changes["http_port"] = args.http_port
    return replace(settings, **changes)  # type: ignore[arg-type]


# argparse names the type function in its errors ("invalid _positive value: 'x'"): the names
# stay those the messages always showed.
def _positive(value: str) -> float:
    """An argument type: a number above zero."""
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _date(value: str) -> date:
    """An argument type: a date YYYY-MM-DD."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a date YYYY-MM-DD") from None


async def migrate(db: Database, migration_url: str | None) -> list[str]:
    """Migrate as the owner of NPC_MIGRATION_DATABASE_URL when set, granting `db`'s role the
    application privileges; else as `db`'s own role."""
    if not migration_url:
        return await db.migrate()
    async with db.pool.acquire() as conn:
        role: str = await conn.fetchval("SELECT current_user")
    return await migrate_as_owner(migration_url, role)
