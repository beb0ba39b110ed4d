"""`npc demo`: a clearinghouse and simulated operators porting numbers, on a fast clock.

Ports execute only inside the nightly change window, so on the wall clock a newcomer would wait
until midnight in Lima to see one. The demo therefore runs the clearinghouse on a `DemoClock`: it
starts a minute before the next window opens and runs `speed` times faster than the wall clock (60x
by default: a donor's 5 minutes last 5 seconds, the 6-hour window 6 minutes). When the window is
about to close, the demo stops filing, lets the ports under way finish, and jumps the clock to a
minute before the next night's window, so an unbounded demo keeps porting.

With a traffic profile (`--profile peru-2024`), filing follows the country's daily curve instead
of a fixed rate: the clock runs the whole day without jumps (`--day-minutes 10` runs a day in ten
wall minutes), requests arrive mostly in shop hours and wait for the night's window, and each
operator answers, objects and stays silent as its profile says.

Only the demo uses this clock; the core and the flows see nothing but the `Clock` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
import time as wall
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import asyncpg

from npc.admin import DEMO_OPERATORS, DEMO_RANGES, seed_demo
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.calendar import calendar_for
from npc.core.errors import Unauthenticated
from npc_clients.client import OperatorClient
from npc_clients.simulator import (
    ChangeWindow,
    Delay,
    Market,
    NumberRange,
    OperatorProfile,
    SimulatedOperator,
    Stats,
)
from npc_clients.traffic import TrafficGenerator, TrafficProfile, drive

LEAD_IN = timedelta(minutes=1)  # the demo clock starts this long before a window opens
CLOSING_MARGIN = timedelta(minutes=10)  # stop filing this long before the window closes
REFERENCE_SPEED = 60.0  # the speed the default operator profile's delays are tuned for


class DemoClock:
    """An accelerated clock: `speed` clearinghouse seconds per wall second, and forward jumps.

    Satisfies `npc.core.clock.Clock`. Sleepers (the deadline scheduler) wake at the accelerated
    instant they asked for, and at once after a jump that carries the clock past it.
    """

    def __init__(self, start: datetime, speed: float = REFERENCE_SPEED) -> None:
        if start.tzinfo is None:
            raise ValueError("DemoClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = start.astimezone(UTC)
        self._origin_wall = wall.monotonic()
        self._jumped = asyncio.Event()
        # The instant the last jump left: what lay between it and `_origin` fell due at once.
        self._jumped_from: datetime | None = None

    def now(self) -> datetime:
        """The accelerated instant, in UTC."""
        elapsed = wall.monotonic() - self._origin_wall
        return self._origin + timedelta(seconds=elapsed * self.speed)

    def jump_to(self, instant: datetime) -> None:
        """Move the clock forward to `instant` (never backwards) and wake every sleeper."""
        if instant <= self.now():
            return
        self._jumped_from = self.now()
        self._origin = instant.astimezone(UTC)
        self._origin_wall = wall.monotonic()
        self._jumped.set()
        self._jumped = asyncio.Event()

    def wall_seconds_since(self, instant: datetime) -> float:
        """Wall seconds since the clock showed `instant`: the clock's seconds divided by the
        speed, except that an instant a jump skipped was reached at the jump."""
        since_jump = wall.monotonic() - self._origin_wall
        if instant >= self._origin or self._jumped_from is None:
            return (self.now() - instant).total_seconds() / self.speed
        before = max(0.0, (self._jumped_from - instant).total_seconds()) / self.speed
        return since_jump + before

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return once the accelerated clock reaches `instant`, or earlier when `wake` is set."""
        while not wake.is_set():
            remaining = (instant - self.now()).total_seconds()
            if remaining <= 0:
                return
            jumped = asyncio.ensure_future(self._jumped.wait())
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait(
                    {jumped, woken},
                    timeout=remaining / self.speed,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                jumped.cancel()
                woken.cancel()


def demo_start(after: datetime, window: ChangeWindow, lead: timedelta = LEAD_IN) -> datetime:
    """`lead` before the first opening of the change window that is more than `lead` after `after`.

    Peru's default window opens at 00:00, so this is the coming 23:59 in Lima.
    """
    return window.next_opening(after + lead) - lead


@dataclass(frozen=True)
class DemoOptions:
    """What `npc demo` runs."""

    operators: int = 4  # simulated operators, 2 to 4 of the demo market
    ports: int | None = None  # stop once this many ports completed
    duration: float | None = None  # or stop filing after this many wall seconds
    rate: float = 20.0  # port requests filed per wall second across all operators; 0: no pacing
    speed: float = REFERENCE_SPEED  # clearinghouse seconds per wall second
    interval: float = 1.0  # seconds between progress lines
    drain: float = 30.0  # after --duration, wall seconds to wait for ports under way
    seed: int | None = None  # random seed of the simulated operators
    profile: OperatorProfile = dataclasses.field(default_factory=OperatorProfile)
    traffic: TrafficProfile | None = None  # file as this country does (then `rate` is unused)
    scale: float = 1.0  # share of the traffic profile's volume to file


def scaled_profile(profile: OperatorProfile, speed: float) -> OperatorProfile:
    """The profile with its wall-clock delays shortened for clocks faster than 60x.

    A donor that answers in 2 wall seconds answers in 2 clearinghouse minutes at 60x, but in 20 at
    600x, which would make every donor miss its 5 minutes.
    """
    factor = min(1.0, REFERENCE_SPEED / speed)
    if factor == 1.0:
        return profile
    changes: dict[str, Any] = {
        f.name: replace(value, median=value.median * factor, high=value.high * factor)
        for f in dataclasses.fields(profile)
        if isinstance(value := getattr(profile, f.name), Delay)
    }
    return replace(profile, **changes)


async def _latest_event(database_url: str) -> datetime | None:
    """When the newest logged event occurred (a re-run's demo clock never goes back before it)."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT to_regclass('events')") is None:
            return None  # not migrated yet
        latest: datetime | None = await conn.fetchval("SELECT max(occurred_at) FROM events")
        return latest
    finally:
        await conn.close()


def _fmt_rate(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


class DemoRun:
    """One `npc demo`: the clearinghouse, the simulated market, the clock and the report."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        *,
        out: TextIO | None = None,
        describe_storage: str = "",
    ) -> None:
        self.settings = settings
        self.options = options
        self.out = out or sys.stdout
        self.describe_storage = describe_storage
        portability = settings.portability
        self.window = ChangeWindow(
            portability.change_window_start,
            portability.change_window_end,
            calendar_for(portability.jurisdiction).timezone,
        )
        self.market = Market(rate=options.rate, ports=options.ports)
        self.stop_requested = asyncio.Event()
        self.stopping = False
        self.jumps = 0
        self.filing_stopped: tuple[float, int] | None = None  # (wall time, completed) then

    def say(self, line: str) -> None:
        """Print one line now."""
        print(line, file=self.out, flush=True)

    # ------------------------------------------------------------------ run

    async def run(self) -> int:
        """Run until the bound is reached, the duration is over or a signal arrives; exit code."""
        options = self.options
        names = [spec.id for spec in DEMO_OPERATORS if spec.role == "operator"]
        traffic = options.traffic
        if traffic is not None:
            unknown = [name for name in traffic.names if name not in names]
            if unknown:
                self.say(
                    f"npc demo: profile {traffic.name} needs operators the demo market lacks"
                    f" ({', '.join(unknown)}); it has {', '.join(names)}"
                )
                return 2
            names = traffic.names
        elif not 2 <= options.operators <= len(names):
            self.say(f"npc demo: --operators must be between 2 and {len(names)}")
            return 2
        else:
            names = names[: options.operators]
        assert self.settings.database_url is not None
        latest = await _latest_event(self.settings.database_url)
        after = max(datetime.now(UTC), latest or datetime.now(UTC))
        clock = DemoClock(demo_start(after, self.window), options.speed)
        house = Clearinghouse(self.settings, clock)
        try:
            await house.start()
        except BaseException:
            await house.stop()
            raise
        simulators: list[SimulatedOperator] = []
        clients: list[OperatorClient] = []
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        try:
            assert house.core is not None and house.authenticator is not None
            if await seed_demo(house.core.db):
                self.say("npc demo: loaded the demo market (5 operators, 6 numbering ranges)")
            await house.authenticator.load()
            missing = await self._missing_operators(house, names)
            if missing:
                self.say(
                    f"npc demo: the database has operators but not the demo ones ({', '.join(missing)}"
                    " with tokens dev-token-<operator>); use an empty database or unset"
                    " NPC_DATABASE_URL to use the embedded one"
                )
                return 2
            target = f"127.0.0.1:{house.grpc_port}"
            ranges = [
                NumberRange(operator, service, int(first), int(last))
                for operator, service, first, last in DEMO_RANGES
            ]
            profile = scaled_profile(options.profile, options.speed)
            for index, name in enumerate(names):
                if traffic is not None:
                    profile = traffic.operator(name).wall_profile(options.speed)
                client = OperatorClient(target, f"dev-token-{name}", operator=name)
                clients.append(client)
                simulators.append(
                    SimulatedOperator(
                        client,
                        self.market,
                        ranges,
                        counterparts=names,
                        profile=profile,
                        window=self.window,
                        now=clock.now,
                        seed=None if options.seed is None else options.seed * 100 + index,
                        file_requests=traffic is None,
                    )
                )
            self._banner(house, clock, names)
            for simulator in simulators:
                await simulator.start()
            if traffic is None:
                return await self._watch(clock)
            generator = TrafficGenerator(
                traffic, clock.now(), seed=options.seed or 0, scale=options.scale
            )
            filing = loop.create_task(
                drive(generator, {s.operator: s for s in simulators}, clock.now),
                name="demo-traffic",
            )
            try:
                return await self._watch(clock)
            finally:
                filing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await filing
        finally:
            self._stop_filing()
            for simulator in simulators:
                await simulator.stop()
            for client in clients:
                await client.close()
            self._summary()
            await house.stop()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def requested(sig: signal.Signals) -> None:
            self.stop_requested.set()
            # A second Ctrl-C interrupts for good (KeyboardInterrupt).
            loop.remove_signal_handler(sig)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, requested, sig)

    async def _missing_operators(self, house: Clearinghouse, names: list[str]) -> list[str]:
        assert house.authenticator is not None
        missing = []
        for name in names:
            try:
                caller = await house.authenticator.authenticate(
                    (("authorization", f"Bearer dev-token-{name}"),)
                )
            except Unauthenticated:
                missing.append(name)
                continue
            if caller.operator != name:
                missing.append(name)
        return missing

    def _banner(self, house: Clearinghouse, clock: DemoClock, names: list[str]) -> None:
        options, settings, window = self.options, self.settings, self.window
        local = clock.now().astimezone(window.zone)
        if options.ports is not None:
            bound = f"until {options.ports} ports complete"
        elif options.duration is not None:
            bound = f"for {options.duration:g} s"
        else:
            bound = "until Ctrl-C"
        if options.traffic is not None:
            pace = "as the traffic profile arrives"
        elif options.rate > 0:
            pace = f"{options.rate:g} requests/s"
        else:
            pace = "as fast as possible"
        self.say(
            f"npc demo: clearinghouse on gRPC {settings.grpc_host}:{house.grpc_port},"
            f" HTTP http://{settings.http_host}:{house.http_port} (/healthz, /metrics)"
        )
        if self.describe_storage:
            self.say(f"  storage: {self.describe_storage}")
        self.say(f"  operators: {', '.join(names)} (tokens dev-token-<operator>)")
        if options.traffic is not None:
            traffic = options.traffic
            self.say(
                f"  traffic: {traffic.name}, {traffic.daily_requests * options.scale:,.0f}"
                f" requests a day on average; a day lasts {86400 / options.speed / 60:.1f} min;"
                f" shares {', '.join(f'{k} {v:.0%}' for k, v in traffic.shares().items())}"
            )
        self.say(
            f"  demo clock: starts {local:%a %Y-%m-%d %H:%M} {window.timezone}, runs"
            f" {options.speed:g}x; change window {window.start:%H:%M}-{window.end:%H:%M}"
        )
        self.say(f"  filing {pace} {bound}")

    # ------------------------------------------------------------------ watching

    async def _watch(self, clock: DemoClock) -> int:
        """Print progress, run the night cycle and decide when to stop."""
        options, stats = self.options, self.market.stats
        started = wall.monotonic()
        night = asyncio.get_running_loop().create_task(self._night_cycle(clock), name="demo-night")
        stall_limit = max(60.0, 5.0 / options.rate if options.rate > 0 else 0.0)
        if options.traffic is not None:
            # The whole day runs: requests filed in the morning wait for the night's window.
            stall_limit = max(stall_limit, 86400.0 / options.speed + 60.0)
        last_change, last_seen = wall.monotonic(), self._progress_key(stats)
        last_completed, last_line = 0, wall.monotonic()
        draining_since: float | None = None
        try:
            while True:
                await self._wait_any(options.interval)
                now = wall.monotonic()
                line_due = now - last_line >= options.interval - 1e-3
                if line_due:
                    rate = (stats.completed - last_completed) / max(1e-9, now - last_line)
                    last_completed, last_line = stats.completed, now
                    self._progress(now - started, clock, rate)
                key = self._progress_key(stats)
                if key != last_seen:
                    last_seen, last_change = key, now
                if self.market.done.is_set():
                    return 0
                if self.stop_requested.is_set():
                    self.say("npc demo: interrupted")
                    return 130 if options.ports is not None else 0
                if options.duration is not None and now - started >= options.duration:
                    if draining_since is None:
                        draining_since = now
                        self._stop_filing()
                        if stats.in_flight:
                            self.say(
                                f"npc demo: time is up; waiting for {stats.in_flight} ports under way"
                            )
                    if not stats.in_flight or now - draining_since >= options.drain:
                        return 0
                if stats.in_flight and now - last_change > stall_limit:
                    self.say(f"npc demo: no progress for {stall_limit:.0f} s; giving up")
                    return 1
        finally:
            night.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await night

    def _stop_filing(self) -> None:
        self.stopping = True
        self.market.gate.clear()
        if self.filing_stopped is None:
            self.filing_stopped = (wall.monotonic(), self.market.stats.completed)

    async def _wait_any(self, timeout: float) -> None:
        waits = [
            asyncio.ensure_future(self.market.done.wait()),
            asyncio.ensure_future(self.stop_requested.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    @staticmethod
    def _progress_key(stats: Stats) -> tuple[int, ...]:
        return (stats.filed, stats.admissible, stats.scheduled, stats.executed, stats.closed)

    def _progress(self, elapsed: float, clock: DemoClock, rate: float) -> None:
        s = self.market.stats
        local = clock.now().astimezone(self.window.zone)
        self.say(
            f"[{elapsed:6.1f}s] {local:%a %H:%M} | filed {s.filed} admissible {s.admissible}"
            f" scheduled {s.scheduled} executed {s.executed} completed {s.completed}"
            f" | objected {s.objected} silent {s.silent} late {s.late} rejected {s.rejected}"
            f" cancelled {s.cancelled} abandoned {s.abandoned}"
            f" | {_fmt_rate(rate)} ports/s"
        )

    async def _night_cycle(self, clock: DemoClock, poll: float = 0.05) -> None:
        """Skip the daytime: near the window's close, drain, then jump to the next night.

        Not with a traffic profile, whose requests arrive during the day.
        """
        window, market = self.window, self.market
        if self.options.traffic is not None:
            return
        while True:
            await asyncio.sleep(poll)
            now = clock.now()
            open_window = window.containing(now)
            if open_window is not None and open_window[1] - now > CLOSING_MARGIN:
                continue
            if open_window is None and window.next_opening(now) - now <= LEAD_IN:
                continue
            market.gate.clear()
            # Polled: the demo clock has no event for "the window closed".
            while market.stats.in_flight and window.containing(clock.now()) is not None:  # noqa: ASYNC110
                await asyncio.sleep(poll)
            target = window.next_opening(clock.now()) - LEAD_IN
            if target > clock.now():
                clock.jump_to(target)
                self.jumps += 1
                self.say(
                    f"npc demo: window closing; clock jumps to"
                    f" {target.astimezone(window.zone):%a %H:%M} {window.timezone}"
                )
            if not self.stopping:
                market.gate.set()

    # ------------------------------------------------------------------ report

    def _summary(self) -> None:
        s = self.market.stats
        if s.first_filed_at is None:
            elapsed = 0.0
        else:
            end = s.last_completed_at or wall.monotonic()
            elapsed = max(0.0, end - s.first_filed_at)
        sustained = ""
        if self.filing_stopped is not None and s.first_completed_at is not None:
            # Completions while requests were still being filed, once the first port came through:
            # the pipeline's fill and drain times left out.
            stopped_at, completed_then = self.filing_stopped
            span = stopped_at - s.first_completed_at
            if span >= 10 and completed_then > 1:
                sustained = (
                    f"; sustained {_fmt_rate((completed_then - 1) / span)} ports/s while filing"
                )
        self.say(
            f"summary: {s.completed} ports completed in {elapsed:.1f} s:"
            f" {_fmt_rate(s.completion_rate())} complete ports/s{sustained}"
            f" (filed {s.filed}; rejected {s.rejected}, cancelled {s.cancelled},"
            f" abandoned {s.abandoned}, unfinished {s.in_flight};"
            f" donors accepted {s.accepted}, objected {s.objected}, silent {s.silent},"
            f" late {s.late};"
            f" errors {s.errors})"
            + (
                f"; traffic offered {s.offered}, declined {s.declined}"
                if self.options.traffic is not None
                else ""
            )
        )


async def run_demo(
    settings: Settings,
    options: DemoOptions,
    *,
    out: TextIO | None = None,
    describe_storage: str = "",
) -> int:
    """Run `npc demo` against the databases in `settings`; return the exit code."""
    run = DemoRun(settings, options, out=out, describe_storage=describe_storage)
    return await run.run()
