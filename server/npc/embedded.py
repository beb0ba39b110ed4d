"""Embedded PostgreSQL and Redis servers for development, demos and tests.

These managers run the real server binaries as subprocesses, bound to the loopback
interface only. They are synchronous on purpose so they can be used from the CLI as
well as from pytest session fixtures.

PostgreSQL refuses to run as root. When this process is root, every PostgreSQL
binary is run as an unprivileged user (``postgres`` if it exists, else ``nobody``)
via ``runuser``; the data directory is chowned to that user and its ancestors are
made traversable (``o+x``) so the server can reach it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServiceError",
    "create_database_sql",
    "drop_database_sql",
    "embedded_services",
    "ephemeral_port_range",
    "find_pg_bindir",
    "free_port",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

LOOPBACK = "127.0.0.1"
PG_USER = "npc"
# The server's own role: not a superuser and owning nothing, so it cannot disable the audit
# trail's triggers nor TRUNCATE; PG_USER owns the tables and migrates (README, Audit trail).
PG_APP_USER = "npc_app"
PG_DATABASE = "npc"
# A Unix socket path (including ".s.PGSQL.NNNNN") must fit in sun_path (108 bytes).
_MAX_SOCKET_DIR_LEN = 90
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started or stopped."""


# Where the kernel takes the local ports of outgoing connections (Linux's default when
# /proc does not say).
_EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)
# The lowest port free_port picks: above the well-known and most registered services' ports.
_LOWEST_PICKED_PORT = 10000


def ephemeral_port_range(path: Path = _EPHEMERAL_PORTS) -> tuple[int, int]:
    """The range (inclusive) the kernel draws outgoing connections' local ports from."""
    try:
        low, high = (int(field) for field in path.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def free_port(host: str = LOOPBACK, attempts: int = 200) -> int:
    """Return a TCP port that is currently free on ``host``.

    The port is picked at random outside the kernel's ephemeral range: a port the kernel handed
    out for ``bind(0)`` is one it may hand again, between this call and the caller's bind, as the
    local port of any outgoing connection (the server's own, to PostgreSQL or Redis), and the
    caller's bind then fails. Outside that range only another listener can take it; the port is
    still only probably free, so callers that pick a port this way should retry on bind failure.
    """
    low, high = ephemeral_port_range()
    # The ports below the ephemeral range, and above it up to 65535, as one sequence of indices.
    below = max(0, low - _LOWEST_PICKED_PORT)
    above_from = max(high + 1, _LOWEST_PICKED_PORT)
    above = max(0, 65536 - above_from)
    for _ in range(attempts if below + above else 0):
        index = random.randrange(below + above)
        port = _LOWEST_PICKED_PORT + index if index < below else above_from + index - below
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` directories."""
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts) or (0,)


def _is_pg_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in ("pg_ctl", "initdb", "postgres"))


def find_pg_bindir() -> Path:
    """Locate the directory holding ``pg_ctl``, ``initdb`` and ``postgres``.

    Prefers the ``pg_ctl`` on ``PATH`` (symlinks are resolved, so Debian's
    ``/usr/local/bin`` links work), else the newest ``/usr/lib/postgresql/*/bin``.

    Raises:
        EmbeddedServiceError: if no PostgreSQL server installation is found.
    """
    found = shutil.which("pg_ctl")
    if found:
        candidate = Path(found)
        for directory in (candidate.resolve().parent, candidate.parent):
            if _is_pg_bindir(directory):
                return directory
    versioned = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _is_pg_bindir(p)]
    if versioned:
        return max(versioned, key=_version_key)
    raise EmbeddedServiceError(
        "PostgreSQL server binaries not found (no pg_ctl on PATH and no "
        "/usr/lib/postgresql/*/bin); run ./dev setup"
    )


def _quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def create_database_sql(name: str, template: str | None, server_major: int) -> str:
    """The statement creating database `name`, a copy of `template` when one is given, on a
    PostgreSQL server of major version `server_major`."""
    _check_ident(name)
    sql = f"CREATE DATABASE {_quote_ident(name)}"
    if template is not None:
        _check_ident(template)
        sql += f" TEMPLATE {_quote_ident(template)}"
        if server_major >= 15:
            # FILE_COPY copies the template's files and checkpoints; the default since 15,
            # WAL_LOG, writes every block through the WAL: 0.3-0.4 s of kernel CPU per clone
            # against 0.06 s measured here, and tests clone one per test.
            sql += " STRATEGY FILE_COPY"
    return sql


def drop_database_sql(name: str) -> str:
    """The statement dropping database `name` if it exists, terminating its connections."""
    _check_ident(name)
    return f"DROP DATABASE IF EXISTS {_quote_ident(name)} (FORCE)"


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on a fresh event loop in a worker thread.

    Works whether or not the caller is itself inside a running event loop.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="npc-embedded") as pool:
        return pool.submit(asyncio.run, coro).result()


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` with NULs turned into spaces ("" if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EmbeddedServiceError("running as root but neither 'postgres' nor 'nobody' exists")


def _make_traversable(path: Path) -> None:
    """Give "others" search permission on every ancestor directory of ``path``."""
    for ancestor in path.resolve().parents:
        try:
            mode = ancestor.stat().st_mode
            if not mode & 0o001:
                os.chmod(ancestor, (mode & 0o7777) | 0o001)
        except OSError as exc:  # pragma: no cover - unusual filesystems
            log.warning("cannot make %s traversable: %s", ancestor, exc)


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1 only.

    The cluster is created with ``initdb`` on first start (superuser ``npc``, trust
    authentication from loopback and the private Unix socket only, UTF8, locale C)
    and reused on later starts, so data persists between runs.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, fsync: bool = True) -> None:
        """Describe a cluster; nothing is started until :meth:`start`.

        Args:
            data_dir: the cluster directory; created (and initialised) if missing.
            port: TCP port on 127.0.0.1; a free one is chosen at each start if None.
            fsync: whether the server fsyncs. Tests pass False for speed; it also
                turns off synchronous_commit and full_page_writes. Never use False
                for data you care about.
        """
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port: int | None = port
        self.fsync = fsync
        self.bindir = find_pg_bindir()
        self.log_file = self.data_dir / "postgres.log"
        self._run_as = _unprivileged_user()
        self._running = False

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The TCP port the server listens on (known once started or if given)."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedPostgres has no port yet; call start()")
        return self._port

    @property
    def dsn(self) -> str:
        """DSN of the ``npc`` database."""
        return self.dsn_for(PG_DATABASE)

    def dsn_for(self, database: str) -> str:
        """DSN of ``database`` on this server, as the ``npc`` superuser."""
        return f"postgresql://{PG_USER}@{LOOPBACK}:{self.port}/{database}"

    @property
    def app_dsn(self) -> str:
        """DSN of the ``npc`` database as the application role ``npc_app``."""
        return self.app_dsn_for(PG_DATABASE)

    def app_dsn_for(self, database: str) -> str:
        """DSN of ``database`` as the application role (privileges come with migrations)."""
        return f"postgresql://{PG_APP_USER}@{LOOPBACK}:{self.port}/{database}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Initialise the cluster if needed, start the server and wait until ready.

        Also creates the ``npc`` database and the ``npc_app`` role if missing. Starting an already
        started instance is a no-op. A server left running on this data directory
        by an earlier, crashed run is stopped first; a stale ``postmaster.pid`` is
        removed.

        Returns:
            The DSN of the ``npc`` database.
        """
        if self._running:
            return self.dsn
        self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_hba()
        self._clear_leftover_server()

        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port if self._requested_port is not None else free_port()
            try:
                self._pg_ctl_start()
                break
            except EmbeddedServiceError:
                if attempt == attempts:
                    raise
                log.warning("postgres failed to start on port %s; retrying", self._port)
        self._running = True
        atexit.register(self.stop)
        try:
            _run_async(self._ensure_database(PG_DATABASE))
        except BaseException:
            self.stop()
            raise
        log.info("embedded postgres ready at %s (data %s)", self.dsn, self.data_dir)
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m fast``; ``mode="immediate"`` aborts it, as a crash
        would, and the next start recovers from the WAL). Safe to call repeatedly."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        atexit.unregister(self.stop)
        self._running = False
        pid = self._pidfile_pid()
        if pid is None or not _pid_alive(pid):
            return
        proc = self._run(
            [self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60"],
            check=False,
        )
        if proc.returncode != 0 and self._pidfile_pid() is not None:
            if not _pid_alive(pid):
                # It died on its own meanwhile (a killed server, still exiting when looked at):
                # there is nothing to stop, only its pid file to clear.
                log.warning("postgres (pid %s) died before it was stopped", pid)
                with contextlib.suppress(FileNotFoundError):
                    (self.data_dir / "postmaster.pid").unlink()
                return
            raise EmbeddedServiceError(f"pg_ctl stop failed:\n{proc.stdout}{proc.stderr}")

    def restart(self, mode: str = "fast") -> None:
        """Restart the running server in place (``pg_ctl restart -m fast``): same port and data,
        every session terminated, as an operator's routine restart does."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if not self._running:
            raise EmbeddedServiceError("postgres is not running; start() it")
        # The new postmaster opens its socket's lock file by absolute path: the ancestors must
        # still be traversable (a test session starting meanwhile makes its root private again).
        self._prepare_data_dir()
        self._run(self._pg_ctl_launch("restart", "-m", mode))

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (optionally from ``template``) and return its DSN.

        Raises:
            asyncpg.DuplicateDatabaseError: if it already exists.
            asyncpg.ObjectInUseError: if the template has other connections.
        """
        _check_ident(name)
        if template is not None:
            _check_ident(template)
        _run_async(self._create_database(name, template))
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, terminating its connections."""
        _check_ident(name)
        _run_async(self._execute("postgres", drop_database_sql(name)))

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _run(self, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary, as the unprivileged user when we are root."""
        cmd = list(args)
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
            if runuser:
                cmd = [runuser, "-u", self._run_as.pw_name, "--", *cmd]
            else:
                kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid}
                kwargs["extra_groups"] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        proc = subprocess.run(
            cmd,
            cwd="/",
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise EmbeddedServiceError(
                f"{' '.join(map(shlex.quote, args))} failed ({proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._run_as is None:
            return
        _make_traversable(self.data_dir)
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        st = self.data_dir.stat()
        if st.st_uid != uid:
            os.chown(self.data_dir, uid, gid)
            for root, dirs, files in os.walk(self.data_dir):
                for entry in (*dirs, *files):
                    os.lchown(os.path.join(root, entry), uid, gid)

    def _initdb(self) -> None:
        if any(self.data_dir.iterdir()):
            raise EmbeddedServiceError(
                f"{self.data_dir} is not empty and is not a PostgreSQL data directory"
            )
        args = [
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            PG_USER,
            "--auth-local=trust",
            "--auth-host=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        if not self.fsync:
            args.append("--no-sync")
        log.info("initialising postgres cluster in %s", self.data_dir)
        self._run(args)

    def _write_hba(self) -> None:
        """Trust loopback and the private socket only; nothing else may connect."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by npc.embedded: trust loopback and the private socket only.\n"
            "local   all          all                 trust\n"
            "host    all          all   127.0.0.1/32  trust\n"
            "local   replication  all                 trust\n"
            "host    replication  all   127.0.0.1/32  trust\n"
        )
        if self._run_as is not None:
            os.chown(hba, self._run_as.pw_uid, self._run_as.pw_gid)

    def _pidfile_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first.strip())
        except (OSError, ValueError):
            return None

    def _clear_leftover_server(self) -> None:
        """Deal with a ``postmaster.pid`` left behind by an earlier run.

        If its process is still our postmaster (an orphan from a crashed run), stop
        it; if the PID is dead or belongs to an unrelated process, remove the file.
        """
        pidfile = self.data_dir / "postmaster.pid"
        pid = self._pidfile_pid()
        if pid is None:
            return
        if _pid_alive(pid) and str(self.data_dir) in _cmdline(pid):
            log.warning("stopping postgres (pid %s) left running on %s", pid, self.data_dir)
            self.stop()
            return
        log.warning("removing stale %s (pid %s is not its postmaster)", pidfile, pid)
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()

    def _server_options(self) -> list[str]:
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN else ""
        opts = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": socket_dir,
            "unix_socket_permissions": "0700",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "fsync": "on" if self.fsync else "off",
        }
        if not self.fsync:
            opts["synchronous_commit"] = "off"
            opts["full_page_writes"] = "off"
        out: list[str] = []
        for key, value in opts.items():
            out += ["-c", f"{key}={value}"]
        return out

    def _pg_ctl_launch(self, action: str, *extra: str) -> list[str]:
        """The `pg_ctl start|restart` command line: logged, waited for, with our options."""
        # pg_ctl passes -o through /bin/sh, so quote every word.
        options = " ".join(shlex.quote(o) for o in self._server_options())
        return [
            self._bin("pg_ctl"),
            action,
            "-D",
            str(self.data_dir),
            *extra,
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            options,
        ]

    def _pg_ctl_start(self) -> None:
        proc = self._run(self._pg_ctl_launch("start"), check=False)
        if proc.returncode != 0:
            # pg_ctl may have left a half-started server behind on timeout.
            self.stop()
            raise EmbeddedServiceError(
                f"postgres failed to start on port {self._port}:\n{proc.stdout}{proc.stderr}\n"
                f"--- {self.log_file} (tail) ---\n{_tail(self.log_file)}"
            )

    async def _connect(self, database: str) -> Any:
        import asyncpg  # imported lazily: only needed once a server runs

        deadline = time.monotonic() + 15
        while True:
            try:
                return await asyncpg.connect(dsn=self.dsn_for(database), timeout=10)
            except (OSError, asyncpg.CannotConnectNowError):
                # Ready per pg_ctl, but be tolerant of a late socket.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def _execute(self, database: str, sql: str) -> None:
        conn = await self._connect(database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _create_database(self, name: str, template: str | None) -> None:
        conn = await self._connect("postgres")
        try:
            await conn.execute(create_database_sql(name, template, conn.get_server_version().major))
        finally:
            await conn.close()

    async def _ensure_database(self, name: str) -> None:
        conn = await self._connect("postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", PG_APP_USER):
                await conn.execute(
                    f"CREATE ROLE {_quote_ident(PG_APP_USER)} LOGIN NOSUPERUSER NOCREATEDB"
                    " NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                )
        finally:
            await conn.close()


def _check_ident(name: str) -> None:
    if not _IDENT_RE.match(name):
        raise ValueError(f"invalid database name {name!r}")


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1, with persistence off."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        """Describe a server; nothing is started until :meth:`start`.

        Args:
            data_dir: working directory (log and pid file live here).
            port: TCP port on 127.0.0.1; a free one is chosen at each start if None.
        """
        self.data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port: int | None = port
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (known once started or if given)."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedRedis has no port yet; call start()")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """PID of the running server, if any."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> str:
        """Start ``redis-server`` and wait until it answers PING; return its URL."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        binary = shutil.which("redis-server")
        if binary is None:
            raise EmbeddedServiceError("redis-server not found; run ./dev setup")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._kill_leftover()

        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port if self._requested_port is not None else free_port()
            try:
                self._spawn(binary)
                break
            except EmbeddedServiceError:
                if attempt == attempts:
                    raise
                log.warning("redis failed to start on port %s; retrying", self._port)
        atexit.register(self.stop)
        log.info("embedded redis ready at %s", self.url)
        return self.url

    def stop(self) -> None:
        """Terminate the server and wait for it to exit. Safe to call repeatedly."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def kill(self) -> None:
        """SIGKILL the server (for fault-injection tests); it can be restarted."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _kill_leftover(self) -> None:
        """Kill a redis-server left running on this data dir by a crashed run."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if _pid_alive(pid) and "redis-server" in _cmdline(pid):
            log.warning("killing redis-server (pid %s) left over in %s", pid, self.data_dir)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def _spawn(self, binary: str) -> None:
        args = [
            binary,
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--protected-mode",
            "yes",
            "--appendonly",
            "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--dir",
            str(self.data_dir),
            "--pidfile",
            str(self.pid_file),
            "--logfile",
            "",
        ]
        with open(self.log_file, "ab") as logf:
            proc = subprocess.Popen(
                args,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our stop() decides when it goes, not ^C
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with {proc.returncode} on port {self._port}:\n"
                    f"{_tail(self.log_file)}"
                )
            if _redis_ping(self.port):
                self._proc = proc
                return
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise EmbeddedServiceError(f"redis-server did not answer PING:\n{_tail(self.log_file)}")


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def embedded_services(var_dir: Path) -> Iterator[tuple[str, str]]:
    """Run PostgreSQL in ``var_dir/postgres`` and Redis in ``var_dir/redis``.

    Yields:
        ``(database_url, redis_url)``; both servers are stopped on exit.
    """
    var_dir = Path(var_dir)
    pg = EmbeddedPostgres(var_dir / "postgres")
    redis = EmbeddedRedis(var_dir / "redis")
    with pg, redis:
        yield pg.dsn, redis.url
