"""Settings, from the environment (NPC_*) with production-sensible defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import time, timedelta

from npc.core.clock import SharedClock


def _time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class PortabilitySettings:
    """Parameters of the portability process that regulators have changed over time."""

    jurisdiction: str = "PE"
    donor_answer: timedelta = timedelta(minutes=5)  # infractions 18 and 21
    change_window_start: time = time(0, 0)  # Peru moved to 00:00-03:00 in 2025
    change_window_end: time = time(6, 0)
    max_outage: timedelta = timedelta(hours=3)  # infractions 28 and 33
    scheduling_limit: time = time(22, 0)  # infractions 24 and 25
    standard_process: timedelta = timedelta(hours=24)  # "demora 24 horas"
    special_client_business_days: int = 5  # more than 10 numbers
    special_client_threshold: int = 10
    debt_proof_window: timedelta = timedelta(hours=24)  # time to present APD
    registration_grace: timedelta = timedelta(minutes=15)  # infraction 20, "inmediata"
    max_numbers_per_request: int = 10000

    @classmethod
    def from_env(cls) -> PortabilitySettings:
        """Read overrides such as NPC_CHANGE_WINDOW=00:00-03:00."""
        settings = cls()
        window = os.environ.get("NPC_CHANGE_WINDOW")
        if window:
            start, end = window.split("-")
            settings = replace(
                settings, change_window_start=_time(start), change_window_end=_time(end)
            )
        if "NPC_SPECIAL_CLIENT_BUSINESS_DAYS" in os.environ:
            settings = replace(
                settings,
                special_client_business_days=int(os.environ["NPC_SPECIAL_CLIENT_BUSINESS_DAYS"]),
            )
        return settings


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


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
            smtp_port=int(env.get("NPC_SMTP_PORT") or "25"),
            smtp_from=env.get("NPC_SMTP_FROM") or "npc@localhost",
            smtp_user=env.get("NPC_SMTP_USER") or None,
            smtp_password=env.get("NPC_SMTP_PASSWORD") or None,
            smtp_starttls=_flag(env.get("NPC_SMTP_STARTTLS")),
            sms_webhook_url=env.get("NPC_SMS_WEBHOOK_URL") or None,
            sms_webhook_token=env.get("NPC_SMS_WEBHOOK_TOKEN") or None,
            max_attempts=int(env.get("NPC_NOTIFY_MAX_ATTEMPTS") or "10"),
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
        due = os.environ.get("NPC_DAILY_REPORT_DUE")
        return cls(report_due_time=_time(due)) if due else cls()


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
            lookups_per_window=int(env.get("NPC_WEB_LOOKUPS", "10")),
            lookup_window=timedelta(seconds=int(env.get("NPC_WEB_LOOKUP_WINDOW_SECONDS", "60"))),
            trusted_proxies=frozenset(p.strip() for p in proxies.split(",") if p.strip()),
            public_base_url=env.get("NPC_PUBLIC_BASE_URL", "http://localhost:8080").rstrip("/"),
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
            handshake_timeout=float(env.get("NPC_HANDSHAKE_TIMEOUT") or default.handshake_timeout),
            idle_timeout=float(env.get("NPC_IDLE_TIMEOUT") or default.idle_timeout),
            header_timeout=float(env.get("NPC_HEADER_TIMEOUT") or default.header_timeout),
            max_connections=int(env.get("NPC_MAX_CONNECTIONS") or default.max_connections),
            max_streams=int(env.get("NPC_MAX_STREAMS") or default.max_streams),
            max_uploads=int(env.get("NPC_MAX_UPLOADS") or default.max_uploads),
        )


def _shared_clock(value: str | None) -> str | None:
    """NPC_CLOCK, checked now so a malformed one stops the process before it serves."""
    if not value or not value.strip():
        return None
    SharedClock.parse(value)
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
    db_pool_size: int = 20
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
        """Build settings from NPC_* environment variables."""
        env = os.environ
        return cls(
            database_url=env.get("NPC_DATABASE_URL") or None,
            redis_url=env.get("NPC_REDIS_URL") or None,
            redis_prefix=env.get("NPC_REDIS_PREFIX", "npc"),
            grpc_host=env.get("NPC_GRPC_HOST", "127.0.0.1"),
            grpc_port=int(env.get("NPC_GRPC_PORT", "50051")),
            http_host=env.get("NPC_HTTP_HOST", "127.0.0.1"),
            http_port=int(env.get("NPC_HTTP_PORT", "8080")),
            var_dir=env.get("NPC_VAR_DIR", "var"),
            db_pool_size=int(env.get("NPC_DB_POOL_SIZE", "20")),
            clock=_shared_clock(env.get("NPC_CLOCK")),
            portability=PortabilitySettings.from_env(),
            web=WebSettings.from_env(),
            notifications=NotificationSettings.from_env(),
            cancellations=CancellationsSettings.from_env(),
            tls_cert=env.get("NPC_TLS_CERT") or None,
            tls_key=env.get("NPC_TLS_KEY") or None,
            tls_client_ca=env.get("NPC_TLS_CLIENT_CA") or None,
            dev_mode=_flag(env.get("NPC_DEV_MODE")),
            rate_limit=float(env.get("NPC_RATE_LIMIT", "2000")),
            rate_burst=float(env.get("NPC_RATE_BURST", "4000")),
            call_timeout=float(env.get("NPC_CALL_TIMEOUT", "30")),
            lame_duck=float(env.get("NPC_LAME_DUCK_SECONDS", "2")),
            drain_grace=float(env.get("NPC_DRAIN_SECONDS", "5")),
            metrics_port=int(env["NPC_METRICS_PORT"]) if env.get("NPC_METRICS_PORT") else None,
            worker=int(env.get("NPC_WORKER", "0")),
            migration_database_url=env.get("NPC_MIGRATION_DATABASE_URL") or None,
            anchor_key=env.get("NPC_ANCHOR_KEY") or None,
            anchor_interval=float(env.get("NPC_ANCHOR_INTERVAL", "300")),
            connections=ConnectionSettings.from_env(),
            session_heartbeat=float(env.get("NPC_SESSION_HEARTBEAT_SECONDS", "15")),
        )
