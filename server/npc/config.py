"""Settings, from the environment (NPC_*) with production-sensible defaults.

Every variable is parsed and checked when the settings are built, before anything starts: a
bad one raises `ConfigError`, whose message is one line naming the variable and what is wrong
(`npc` prints it and exits with status 2). `VARIABLES` lists every variable with its default and
meaning: `npc serve --help` prints it, and a test keeps it complete.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path

from npc.core.clock import SharedClock
from npc.flows.portability.rules import DONOR_ANSWER_TERM, FIXED_INSTALLATION_BUSINESS_DAYS


class ConfigError(ValueError):
    """A setting that cannot be used: `variable` names it, `problem` says why."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default as the README shows it, its meaning."""

    name: str
    default: str
    meaning: str


# NPC_DB_POOL_SIZE's default (see `Settings.db_pool_size`).
DEFAULT_DB_POOL_SIZE = 40
# NPC_COMMAND_GROUP_SIZE's default (see `Settings.command_group_size`).
DEFAULT_COMMAND_GROUP_SIZE = 8

# Every NPC_* variable the server reads (tests/test_config.py checks the sources against it).
VARIABLES: tuple[Variable, ...] = (
    Variable("NPC_DATABASE_URL", "embedded in var/postgres", "PostgreSQL DSN"),
    Variable("NPC_MIGRATION_DATABASE_URL", "NPC_DATABASE_URL", "the tables' owner, migrates"),
    Variable("NPC_REDIS_URL", "embedded in var/redis", "Redis URL (wake-up hints, caches)"),
    Variable("NPC_REDIS_PREFIX", "npc", "prefix of the Redis keys of one clearinghouse"),
    Variable("NPC_GRPC_HOST", "127.0.0.1", "gRPC listen address (--host)"),
    Variable("NPC_GRPC_PORT", "50051", "gRPC port, 0-65535, 0: any free (--grpc-port)"),
    Variable("NPC_HTTP_HOST", "127.0.0.1", "HTTP listen address (--host)"),
    Variable("NPC_HTTP_PORT", "8080", "HTTP port, 0-65535, 0: any free (--http-port)"),
    Variable("NPC_METRICS_PORT", "unset", "worker i serves /metrics alone on this port + i"),
    Variable("NPC_WORKERS", "1", "server processes sharing the ports (--workers)"),
    Variable("NPC_WORKER", "0", "set by `npc serve --workers` for each worker"),
    Variable("NPC_VAR_DIR", "var", "embedded servers' data and serve.json"),
    Variable("NPC_DB_POOL_SIZE", str(DEFAULT_DB_POOL_SIZE), "PostgreSQL connections per process"),
    Variable(
        "NPC_COMMAND_GROUP_SIZE",
        str(DEFAULT_COMMAND_GROUP_SIZE),
        "most commands waiting for a connection that commit in one transaction (1: each alone)",
    ),
    Variable("NPC_EVENT_LOOP", "uvloop", "uvloop or asyncio (asyncio where uvloop is missing)"),
    Variable("NPC_CLOCK", "wall clock", "demos only: <start ISO>@<epoch>x<speed>"),
    Variable("NPC_CHANGE_WINDOW", "00:00-06:00", "nightly change window, HH:MM-HH:MM, Lima"),
    Variable("NPC_SPECIAL_CLIENT_BUSINESS_DAYS", "5", "execution limit, >10 numbers"),
    Variable("NPC_FIXED_INSTALLATION_BUSINESS_DAYS", "15", "fixed: installed by then or cancelled"),
    Variable("NPC_DONOR_DISABLE_TOLERANCE_MINUTES", "15", "donor disables within, infraction 27"),
    Variable("NPC_DAILY_REPORT_DUE", "23:59", "time the daily report of D is due on D+1"),
    Variable("NPC_TLS_CERT", "unset", "server certificate (mutual TLS: all three or none)"),
    Variable("NPC_TLS_KEY", "unset", "server private key"),
    Variable("NPC_TLS_CLIENT_CA", "unset", "CA of operators' client certificates"),
    Variable("NPC_DEV_MODE", "unset", "1: bearer tokens without TLS (development only)"),
    Variable("NPC_RATE_LIMIT", "2000", "calls per second per operator and process, 0: off"),
    Variable("NPC_RATE_BURST", "4000", "burst of NPC_RATE_LIMIT"),
    Variable("NPC_CALL_TIMEOUT", "30", "seconds a unary call may run"),
    Variable(
        "NPC_SESSION_HEARTBEAT_SECONDS", "15", "seconds of silence before a session heartbeat"
    ),
    Variable("NPC_HANDSHAKE_TIMEOUT", "10", "seconds to finish TLS and the HTTP/2 preface"),
    Variable("NPC_HEADER_TIMEOUT", "75", "seconds an HTTP client has to send a request head"),
    Variable("NPC_IDLE_TIMEOUT", "900", "seconds a gRPC connection without calls stays open"),
    Variable("NPC_MAX_CONNECTIONS", "2000", "connections per listener and process"),
    Variable("NPC_MAX_STREAMS", "32", "open server streams per operator and process"),
    Variable("NPC_MAX_UPLOADS", "2", "open uploads per operator and process"),
    Variable("NPC_LAME_DUCK_SECONDS", "2", "on SIGTERM, seconds serving once NOT_SERVING"),
    Variable("NPC_DRAIN_SECONDS", "5", "then the longest calls in flight may take"),
    Variable("NPC_ANCHOR_KEY", "unset (embedded: var/anchor.key)", "Ed25519 key of anchors"),
    Variable("NPC_ANCHOR_INTERVAL", "300", "seconds between anchors of the log"),
    Variable("NPC_WEB_LOOKUPS", "10", "public lookups per client address and window"),
    Variable("NPC_WEB_LOOKUP_WINDOW_SECONDS", "60", "the public lookups' window"),
    Variable("NPC_WEB_TRUSTED_PROXIES", "empty", "proxies whose X-Forwarded-For is trusted"),
    Variable("NPC_PUBLIC_BASE_URL", "http://localhost:8080", "the public site's address"),
    Variable("NPC_SMTP_HOST", "unset", "SMTP server of e-mail notifications"),
    Variable("NPC_SMTP_PORT", "25", "its port"),
    Variable("NPC_SMTP_FROM", "npc@localhost", "sender address"),
    Variable("NPC_SMTP_USER", "unset", "SMTP login"),
    Variable("NPC_SMTP_PASSWORD", "unset", "SMTP password"),
    Variable("NPC_SMTP_STARTTLS", "unset", "1: STARTTLS"),
    Variable("NPC_SMS_WEBHOOK_URL", "unset", "webhook of SMS notifications"),
    Variable("NPC_SMS_WEBHOOK_TOKEN", "unset", "its bearer token"),
    Variable("NPC_NOTIFY_MAX_ATTEMPTS", "10", "delivery attempts before a message is abandoned"),
)


def _raw(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, None when unset or blank."""
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def env_text(env: Mapping[str, str], name: str, default: str) -> str:
    """A text variable."""
    return _raw(env, name) or default


def env_int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    """An integer variable within [minimum, maximum]."""
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a whole number") from None
    _bounded(name, value, minimum, maximum)
    return value


def env_float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float:
    """A number variable (seconds, rates) within [minimum, maximum]."""
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(name, f"{raw!r} is not a finite number")
    _bounded(name, value, minimum, maximum)
    return value


def _bounded(name: str, value: float, minimum: float, maximum: float | None) -> None:
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" to {maximum:g}" if maximum is not None else " or more"
        raise ConfigError(name, f"{value:g} is out of range ({minimum:g}{upper})")


def env_port(env: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    return env_int(env, name, default, minimum=0, maximum=65535)


def check_port(name: str, value: int) -> int:
    """A port given on the command line, checked as its variable is."""
    _bounded(name, value, 0, 65535)
    return value


_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_hhmm(name: str, value: str) -> time:
    """A time of day HH:MM (00:00-23:59)."""
    found = _HHMM.match(value.strip())
    if found is None:
        raise ConfigError(name, f"{value!r} is not a time HH:MM")
    hours, minutes = int(found.group(1)), int(found.group(2))
    if hours > 23 or minutes > 59:
        raise ConfigError(name, f"{value!r} is not a time of day (00:00 to 23:59)")
    return time(hours, minutes)


def parse_window(name: str, value: str) -> tuple[time, time]:
    """A change window HH:MM-HH:MM."""
    parts = value.split("-")
    if len(parts) != 2:
        raise ConfigError(name, f"{value!r} is not a window HH:MM-HH:MM")
    start, end = parse_hhmm(name, parts[0]), parse_hhmm(name, parts[1])
    if start == end:
        raise ConfigError(name, f"{value!r} is an empty window")
    return start, end


def env_url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    """A URL whose scheme is one of `schemes`, or None."""
    raw = _raw(env, name)
    if raw is None:
        return None
    scheme, separator, rest = raw.partition("://")
    if not separator or scheme.lower() not in schemes or not rest:
        expected = " or ".join(f"{s}://..." for s in schemes)
        raise ConfigError(name, f"not a URL {expected}")
    return raw


def env_file(env: Mapping[str, str], name: str) -> str | None:
    """A path to a readable file, or None."""
    raw = _raw(env, name)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(name, f"no such file: {raw}")
    if not os.access(path, os.R_OK):
        raise ConfigError(name, f"cannot read {raw}")
    return raw


@dataclass(frozen=True)
class PortabilitySettings:
    """Parameters of the portability process that regulators have changed over time."""

    jurisdiction: str = "PE"
    donor_answer: timedelta = DONOR_ANSWER_TERM  # infractions 18 and 21
    change_window_start: time = time(0, 0)  # Peru moved to 00:00-03:00 in 2025
    change_window_end: time = time(6, 0)
    max_outage: timedelta = timedelta(hours=3)  # infractions 28 and 33
    # Infraction 27: "en la fecha y hora establecida"; the seed gives no tolerance, this is ours.
    donor_disable_tolerance: timedelta = timedelta(minutes=15)
    scheduling_limit: time = time(22, 0)  # infractions 24 and 25
    standard_process: timedelta = timedelta(hours=24)  # "demora 24 horas"
    special_client_business_days: int = 5  # more than 10 numbers
    special_client_threshold: int = 10
    debt_proof_window: timedelta = timedelta(hours=24)  # time to present APD
    registration_grace: timedelta = timedelta(minutes=15)  # infraction 20, "inmediata"
    max_numbers_per_request: int = 10000
    fixed_installation_business_days: int = FIXED_INSTALLATION_BUSINESS_DAYS  # then cancelled

    @classmethod
    def from_env(cls) -> PortabilitySettings:
        """Read overrides such as NPC_CHANGE_WINDOW=00:00-03:00."""
        env = os.environ
        settings = cls()
        window = _raw(env, "NPC_CHANGE_WINDOW")
        if window:
            start, end = parse_window("NPC_CHANGE_WINDOW", window)
            settings = replace(settings, change_window_start=start, change_window_end=end)
        days = env_int(
            env,
            "NPC_SPECIAL_CLIENT_BUSINESS_DAYS",
            settings.special_client_business_days,
            minimum=1,
            maximum=60,
        )
        installation = env_int(
            env,
            "NPC_FIXED_INSTALLATION_BUSINESS_DAYS",
            settings.fixed_installation_business_days,
            minimum=1,
            maximum=60,
        )
        tolerance = env_int(
            env,
            "NPC_DONOR_DISABLE_TOLERANCE_MINUTES",
            int(settings.donor_disable_tolerance.total_seconds()) // 60,
            minimum=0,
            maximum=360,
        )
        return replace(
            settings,
            special_client_business_days=days,
            fixed_installation_business_days=installation,
            donor_disable_tolerance=timedelta(minutes=tolerance),
        )


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _flag(value: str | None, name: str = "flag") -> bool:
    text = (value or "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise ConfigError(name, f"{value!r} is not 1/0, true/false, yes/no or on/off")
    return text in _TRUE


@dataclass(frozen=True)
class NotificationSettings:
    """Delivery of the subscriber notification outbox (e-mail over SMTP, SMS over a webhook).

    A channel without a server (`smtp_host` / `sms_webhook_url` unset) is not delivered: its
    messages stay queued, and are sent once the server is configured.
    """

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "npc@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_webhook_url: str | None = None
    sms_webhook_token: str | None = None
    max_attempts: int = 10  # then the message is abandoned (and counted)
    backoff_first: timedelta = timedelta(minutes=1)  # doubles after each failed attempt
    backoff_max: timedelta = timedelta(hours=2)
    send_timeout: float = 30.0  # seconds
    claim_lease: timedelta = timedelta(minutes=5)  # a claimed message is retried after this
    poll_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> NotificationSettings:
        """Read NPC_SMTP_* and NPC_SMS_* (and NPC_NOTIFY_MAX_ATTEMPTS)."""
        env = os.environ
        return cls(
            smtp_host=env.get("NPC_SMTP_HOST") or None,
            smtp_port=env_int(env, "NPC_SMTP_PORT", 25, minimum=1, maximum=65535),
            smtp_from=env.get("NPC_SMTP_FROM") or "npc@localhost",
            smtp_user=env.get("NPC_SMTP_USER") or None,
            smtp_password=env.get("NPC_SMTP_PASSWORD") or None,
            smtp_starttls=_flag(env.get("NPC_SMTP_STARTTLS"), "NPC_SMTP_STARTTLS"),
            sms_webhook_url=env_url(env, "NPC_SMS_WEBHOOK_URL", ("http", "https")),
            sms_webhook_token=env.get("NPC_SMS_WEBHOOK_TOKEN") or None,
            max_attempts=env_int(env, "NPC_NOTIFY_MAX_ATTEMPTS", 10, minimum=1, maximum=1000),
        )


@dataclass(frozen=True)
class CancellationsSettings:
    """The daily cancellations and plan migrations report.

    The seed fixes the rhythm (every day, 7 days a week) but not the hour: the report of day D is
    due, by default, at 23:59 local time on D+1 (NPC_DAILY_REPORT_DUE=HH:MM changes it).
    """

    jurisdiction: str = "PE"
    report_due_time: time = time(23, 59)
    max_records: int = 200_000

    @classmethod
    def from_env(cls) -> CancellationsSettings:
        """Read NPC_DAILY_REPORT_DUE."""
        due = _raw(os.environ, "NPC_DAILY_REPORT_DUE")
        return cls(report_due_time=parse_hhmm("NPC_DAILY_REPORT_DUE", due)) if due else cls()


@dataclass(frozen=True)
class WebSettings:
    """The public pages: how many lookups one client address may make per window, which
    reverse proxies are trusted to name the client in X-Forwarded-For, and the site's public
    address (scheme, host and port, no trailing slash) that links in e-mails and SMS start with."""

    lookups_per_window: int = 10
    lookup_window: timedelta = timedelta(minutes=1)
    trusted_proxies: frozenset[str] = frozenset()
    public_base_url: str = "http://localhost:8080"

    @classmethod
    def from_env(cls) -> WebSettings:
        """Read NPC_WEB_LOOKUPS, NPC_WEB_LOOKUP_WINDOW_SECONDS, NPC_WEB_TRUSTED_PROXIES and
        NPC_PUBLIC_BASE_URL (e.g. https://portabilidad.example.pe)."""
        env = os.environ
        proxies = env.get("NPC_WEB_TRUSTED_PROXIES", "")
        return cls(
            lookups_per_window=env_int(env, "NPC_WEB_LOOKUPS", 10, minimum=1),
            lookup_window=timedelta(
                seconds=env_int(env, "NPC_WEB_LOOKUP_WINDOW_SECONDS", 60, minimum=1)
            ),
            trusted_proxies=frozenset(p.strip() for p in proxies.split(",") if p.strip()),
            public_base_url=(
                env_url(env, "NPC_PUBLIC_BASE_URL", ("http", "https")) or "http://localhost:8080"
            ).rstrip("/"),
        )


@dataclass(frozen=True)
class ConnectionSettings:
    """Bounds on the listeners' connections and on each operator's expensive calls.

    A connection that has not completed its TLS and HTTP/2 handshake within `handshake_timeout`
    (gRPC), or sent a whole request head within `header_timeout` (HTTP), is closed; so is a gRPC
    connection without a call for `idle_timeout`. Each listener holds at most `max_connections`
    connections. An operator runs at most `max_streams` server streams (subscriptions,
    snapshots) and `max_uploads` uploads (daily reports) at once in one process.
    """

    handshake_timeout: float = 10.0  # seconds
    idle_timeout: float = 900.0
    # aiohttp also closes a kept-alive connection idle this long: longer than a reverse proxy keeps
    # its idle upstream connections (nginx: 60 s), or the proxy may reuse a closing one.
    header_timeout: float = 75.0
    max_connections: int = 2000
    max_streams: int = 32
    max_uploads: int = 2

    @classmethod
    def from_env(cls) -> ConnectionSettings:
        """Read NPC_HANDSHAKE_TIMEOUT, NPC_IDLE_TIMEOUT, NPC_HEADER_TIMEOUT (seconds),
        NPC_MAX_CONNECTIONS, NPC_MAX_STREAMS and NPC_MAX_UPLOADS (per operator)."""
        env = os.environ
        default = cls()
        return cls(
            handshake_timeout=env_float(
                env, "NPC_HANDSHAKE_TIMEOUT", default.handshake_timeout, minimum=0.1
            ),
            idle_timeout=env_float(env, "NPC_IDLE_TIMEOUT", default.idle_timeout, minimum=1),
            header_timeout=env_float(
                env, "NPC_HEADER_TIMEOUT", default.header_timeout, minimum=0.1
            ),
            max_connections=env_int(env, "NPC_MAX_CONNECTIONS", default.max_connections, minimum=1),
            max_streams=env_int(env, "NPC_MAX_STREAMS", default.max_streams, minimum=1),
            max_uploads=env_int(env, "NPC_MAX_UPLOADS", default.max_uploads, minimum=1),
        )


def _shared_clock(value: str | None) -> str | None:
    """NPC_CLOCK, checked now so a malformed one stops the process before it serves."""
    if not value or not value.strip():
        return None
    try:
        SharedClock.parse(value)
    except ValueError as exc:
        raise ConfigError("NPC_CLOCK", str(exc).removeprefix("NPC_CLOCK ")) from None
    return value.strip()


@dataclass(frozen=True)
class Settings:
    """Process settings."""

    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "npc"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    var_dir: str = "var"
    # Commands hold a connection for their round trips and for the event loop's turns between
    # them: at saturation on 2 cores a command held one ~45 ms, and with 20 the commands waited
    # ~175 ms for one (the pool, not the CPU, bounded the throughput).
    db_pool_size: int = DEFAULT_DB_POOL_SIZE
    # Commands that wait for a connection share a transaction and its commit, up to this many
    # (`npc.store.groups`); a command that finds none waiting commits alone.
    command_group_size: int = DEFAULT_COMMAND_GROUP_SIZE
    # NPC_CLOCK: an accelerated shared clock (`npc.core.clock.SharedClock`) for demos and
    # benchmarks only; None, the default, is the wall clock.
    clock: str | None = None
    portability: PortabilitySettings = field(default_factory=PortabilitySettings)
    web: WebSettings = field(default_factory=WebSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    cancellations: CancellationsSettings = field(default_factory=CancellationsSettings)
    # Mutual TLS: the server's certificate and key, and the CA that issues operators' client
    # certificates (whose common name is the operator id). All three, or none.
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    # Plain bearer tokens without TLS: for development and demos on a trusted network only.
    dev_mode: bool = False
    # Calls per second each operator may make to one server process (0: unlimited), and bursts.
    rate_limit: float = 2000.0
    rate_burst: float = 4000.0
    # The longest a unary call may run on the server, whatever deadline the client sent.
    call_timeout: float = 30.0
    # Stopping (SIGTERM): seconds still serving once health says NOT_SERVING, so balancers
    # watching it move away; then the longest the calls in flight may take to finish.
    lame_duck: float = 2.0
    drain_grace: float = 5.0
    # A port of this process's own serving only /metrics (None: none). Workers of `npc serve
    # --workers N` share the HTTP port, so a scrape there reaches any one of them; worker i
    # (NPC_WORKER) listens on metrics_port + i so Prometheus scrapes each.
    metrics_port: int | None = None
    worker: int = 0
    # The tables' owner, which applies migrations and grants the application role (the role of
    # database_url) its privileges; None: database_url migrates, as its own owner.
    migration_database_url: str | None = None
    # The Ed25519 key signing the log's anchors, and seconds between anchors; None: no anchors.
    anchor_key: str | None = None
    anchor_interval: float = 300.0
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    # Seconds of silence after which a session stream gets a heartbeat.
    session_heartbeat: float = 15.0

    @property
    def mutual_tls(self) -> bool:
        """True when operators must present client certificates."""
        return bool(self.tls_cert and self.tls_key and self.tls_client_ca)

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from NPC_* environment variables; `ConfigError` names the first bad
        one (`check` is applied too)."""
        env = os.environ
        dsn = ("postgresql", "postgres")
        settings = cls(
            database_url=env_url(env, "NPC_DATABASE_URL", dsn),
            redis_url=env_url(env, "NPC_REDIS_URL", ("redis", "rediss", "unix")),
            redis_prefix=env_text(env, "NPC_REDIS_PREFIX", "npc"),
            grpc_host=env_text(env, "NPC_GRPC_HOST", "127.0.0.1"),
            grpc_port=env_port(env, "NPC_GRPC_PORT", 50051),
            http_host=env_text(env, "NPC_HTTP_HOST", "127.0.0.1"),
            http_port=env_port(env, "NPC_HTTP_PORT", 8080),
            var_dir=env_text(env, "NPC_VAR_DIR", "var"),
            db_pool_size=env_int(
                env, "NPC_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE, minimum=1, maximum=1000
            ),
            command_group_size=env_int(
                env,
                "NPC_COMMAND_GROUP_SIZE",
                DEFAULT_COMMAND_GROUP_SIZE,
                minimum=1,
                maximum=32,
            ),
            clock=_shared_clock(env.get("NPC_CLOCK")),
            portability=PortabilitySettings.from_env(),
            web=WebSettings.from_env(),
            notifications=NotificationSettings.from_env(),
            cancellations=CancellationsSettings.from_env(),
            tls_cert=env_file(env, "NPC_TLS_CERT"),
            tls_key=env_file(env, "NPC_TLS_KEY"),
            tls_client_ca=env_file(env, "NPC_TLS_CLIENT_CA"),
            dev_mode=_flag(env.get("NPC_DEV_MODE"), "NPC_DEV_MODE"),
            rate_limit=env_float(env, "NPC_RATE_LIMIT", 2000.0),
            rate_burst=env_float(env, "NPC_RATE_BURST", 4000.0),
            call_timeout=env_float(env, "NPC_CALL_TIMEOUT", 30.0, minimum=0.1),
            lame_duck=env_float(env, "NPC_LAME_DUCK_SECONDS", 2.0),
            drain_grace=env_float(env, "NPC_DRAIN_SECONDS", 5.0),
            metrics_port=(
                env_port(env, "NPC_METRICS_PORT", 0) if _raw(env, "NPC_METRICS_PORT") else None
            ),
            worker=env_int(env, "NPC_WORKER", 0, minimum=0, maximum=1023),
            migration_database_url=env_url(env, "NPC_MIGRATION_DATABASE_URL", dsn),
            anchor_key=env_file(env, "NPC_ANCHOR_KEY"),
            anchor_interval=env_float(env, "NPC_ANCHOR_INTERVAL", 300.0, minimum=1),
            connections=ConnectionSettings.from_env(),
            session_heartbeat=env_float(env, "NPC_SESSION_HEARTBEAT_SECONDS", 15.0, minimum=0.05),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations no single variable shows: partial TLS settings, a metrics port
        range that leaves the port range. Raises `ConfigError`."""
        tls = {
            "NPC_TLS_CERT": self.tls_cert,
            "NPC_TLS_KEY": self.tls_key,
            "NPC_TLS_CLIENT_CA": self.tls_client_ca,
        }
        given = [name for name, value in tls.items() if value]
        if given and len(given) < len(tls):
            missing = [name for name, value in tls.items() if not value]
            # Serving in plaintext (bearer tokens) because one file is missing would be the
            # worst outcome of a typo: refuse.
            raise ConfigError(
                missing[0],
                f"unset while {', '.join(given)} is set: mutual TLS needs all three of"
                " NPC_TLS_CERT, NPC_TLS_KEY and NPC_TLS_CLIENT_CA",
            )
        if self.metrics_port is not None:
            _bounded("NPC_METRICS_PORT", self.metrics_port + self.worker, 0, 65535)
