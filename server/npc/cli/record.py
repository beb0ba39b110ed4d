"""What a running `npc serve` records under the var directory (`serve.json`, mode 0600): where
it listens, where each worker serves /metrics and, when embedded, where its PostgreSQL and Redis
listen (a new free port at each start). `npc admin` finds the database there when
NPC_DATABASE_URL is unset, and `npc ops up` the targets Prometheus scrapes.

Also the checks `npc serve` makes before starting anything: the ports free, the configured
database reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from npc.config import ConfigError

RECORD_NAME = "serve.json"
# Addresses that listen on every interface: a scrape on this machine goes to loopback.
_ANY = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class ServeRecord:
    """Where one running `npc serve` (and its workers) listens."""

    pid: int
    grpc: str  # host:port
    http: str  # host:port
    metrics: list[str]  # host:port of every /metrics to scrape (one per worker)
    workers: int = 1
    database_url: str | None = None  # the embedded PostgreSQL as the application role
    owner_database_url: str | None = None  # the embedded PostgreSQL as the tables' owner
    redis_url: str | None = None  # the embedded Redis
    redis_prefix: str = "npc"

    def alive(self) -> bool:
        """Whether the process that wrote the record still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process: it exists
        return True


def scrape_address(host: str, port: int) -> str:
    """host:port to reach a listener on `host` from this machine."""
    host = "127.0.0.1" if host in _ANY else host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def record_path(var_dir: str | Path) -> Path:
    """The record's path under the var directory."""
    return Path(var_dir).resolve() / RECORD_NAME


def write_record(var_dir: str | Path, record: ServeRecord) -> Path:
    """Write the record, readable by this user alone (it may hold database addresses)."""
    path = record_path(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{RECORD_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(record), out, indent=2)
        out.write("\n")
    os.chmod(temporary, 0o600)  # whatever the umask, and if the file existed
    os.replace(temporary, path)
    return path


def read_record(var_dir: str | Path) -> ServeRecord | None:
    """The record of a running `npc serve`, or None (none written, unreadable, or its process
    has ended)."""
    path = record_path(var_dir)
    try:
        data = json.loads(path.read_text())
        record = ServeRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if record.alive() else None


def remove_record(var_dir: str | Path, pid: int) -> None:
    """Remove the record if `pid` wrote it (a newer `npc serve` may have replaced it)."""
    path = record_path(var_dir)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def check_port_free(variable: str, host: str, port: int) -> None:
    """Refuse a port something already listens on, before the embedded servers start.

    The probe binds without SO_REUSEPORT: the server itself shares its ports (its workers do),
    so binding would succeed next to another `npc serve` and split its traffic with it.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(variable.replace("PORT", "HOST"), f"{host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                variable, f"cannot listen on {scrape_address(host, port)}: {exc.strerror}"
            ) from None


def check_database(variable: str, url: str, timeout: float = 5.0) -> None:
    """Refuse a database that does not answer, before anything starts."""

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=timeout)
        await conn.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout + 1))
    except (
        OSError,
        TimeoutError,
        ValueError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(variable, f"cannot connect: {reason}") from None
