"""Supervised background loops.

Every background loop of a server process (sequencer, event hub, deadlines, notifier, metrics
sampler, notification dispatcher, health probe, the flows' jobs) runs under the process's
`Supervisor`. A loop that raises, whatever the exception, is logged once per failure streak, waits
a capped exponential backoff and is started again; the first pass that succeeds afterwards logs
the recovery. Only a loop that *ends* (returns although it should run forever, or is stopped by a
`BaseException` other than its cancellation) is dead: the supervisor then calls its death
listeners, which make the process unhealthy and stop it with a non-zero status, so that
`npc serve --workers` or the service manager starts it again.

Loops report their liveness with `passed()` after each successful pass, and failures they handle
themselves with `failed()`; both find the loop through a context variable, so the loops' code
does not need to know its supervisor. A *job* (``job=True``) is a task meant to finish, such as a
cache repair: it is retried the same way until it returns, and then forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LOOP_FAILURES = Counter(
    "npc_loop_failures_total", "Failed passes of background loops, by loop.", ["loop"]
)
LOOP_RESTARTS = Counter(
    "npc_loop_restarts_total", "Background loops started again after a failure, by loop.", ["loop"]
)

# What a storage outage raises: logged as one line, without a traceback (nothing to debug).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    RedisError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)

LoopBody = Callable[[], Awaitable[None]]
DeathListener = Callable[["LoopState"], None]


@dataclass
class LoopState:
    """What the supervisor knows about one loop: its liveness and failures."""

    name: str
    job: bool = False
    started_at: float = field(default_factory=time.monotonic)
    passes: int = 0
    last_pass_at: float | None = None  # time.monotonic() of the last successful pass
    failures: int = 0  # failed passes since the loop started
    streak: int = 0  # failed passes since the last successful one
    streak_started_at: float | None = None
    restarts: int = 0
    last_error: str | None = None
    ended: str | None = None  # why the loop ended for good; None while it runs

    @property
    def alive(self) -> bool:
        """False once the loop ended for good."""
        return self.ended is None

    def passed(self) -> None:
        """A pass succeeded: record it, and log the end of a failure streak."""
        now = time.monotonic()
        self.passes += 1
        self.last_pass_at = now
        if self.streak:
            log.info(
                "%s recovered after %d failed pass(es) in %.1f s",
                self.name,
                self.streak,
                now - (self.streak_started_at or now),
            )
            self.streak = 0
            self.streak_started_at = None

    def failed(self, exc: BaseException) -> None:
        """A pass failed: count it; the first failure of a streak is logged, with the exception
        (and its traceback when it is not a storage outage's)."""
        self.failures += 1
        self.streak += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        LOOP_FAILURES.labels(self.name).inc()
        if self.streak > 1:
            return
        self.streak_started_at = time.monotonic()
        if isinstance(exc, _TRANSIENT):
            log.warning("%s failing: %s; retrying with backoff", self.name, self.last_error)
        else:
            log.error(
                "%s failing: %s; retrying with backoff", self.name, self.last_error, exc_info=exc
            )

    def report(self, now: float | None = None) -> dict[str, Any]:
        """The loop's state for the health report."""
        now = time.monotonic() if now is None else now
        since = self.last_pass_at if self.last_pass_at is not None else self.started_at
        return {
            "alive": self.alive,
            "seconds_since_pass": round(now - since, 3),
            "passes": self.passes,
            "failing": self.streak,
            "failures": self.failures,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "ended": self.ended,
        }


_current: contextvars.ContextVar[LoopState | None] = contextvars.ContextVar(
    "npc_supervised_loop", default=None
)


def passed() -> None:
    """Record a successful pass of the supervised loop running this code (a no-op elsewhere)."""
    state = _current.get()
    if state is not None:
        state.passed()


def failed(exc: BaseException) -> None:
    """Record a failure the running loop handled itself (logged once per streak); outside a
    supervised loop it is only logged."""
    state = _current.get()
    if state is not None:
        state.failed(exc)
    else:
        log.warning("%s: %s", type(exc).__name__, exc)


class Supervisor:
    """Runs named loops, starts them again after any exception, and reports their liveness."""

    def __init__(self, *, backoff_first: float = 0.2, backoff_max: float = 5.0) -> None:
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.loops: dict[str, LoopState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._death_listeners: list[DeathListener] = []
        self._stopping = False
        self._retry = asyncio.Event()
        _LIVENESS.supervisors.add(self)

    def on_death(self, listener: DeathListener) -> None:
        """Call `listener(state)` when a loop ends for good."""
        self._death_listeners.append(listener)

    def start(self, name: str, body: LoopBody, *, job: bool = False) -> asyncio.Task[None]:
        """Run `body()` under supervision as loop `name`; a running loop of that name is an error.

        A loop (`job` False) must run until cancelled; a job is done when `body` returns.
        """
        running = self._tasks.get(name)
        if running is not None and not running.done():
            raise ValueError(f"loop {name!r} is already running")
        state = LoopState(name, job=job)
        self.loops[name] = state
        # At zero from the start: a rate over them is defined before the first failure.
        LOOP_FAILURES.labels(name)
        LOOP_RESTARTS.labels(name)
        task = asyncio.get_running_loop().create_task(self._supervise(state, body), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._finished(state, done))
        return task

    def retry_now(self) -> None:
        """End every backoff under way: what the loops were waiting for (the storage) is back."""
        self._retry.set()
        self._retry = asyncio.Event()

    def backoff(self, streak: int) -> float:
        """Seconds to wait before starting a loop again after its `streak`-th failure in a row."""
        return float(min(self.backoff_max, self.backoff_first * 2 ** min(streak - 1, 30)))

    async def _supervise(self, state: LoopState, body: LoopBody) -> None:
        _current.set(state)  # the task runs in its own copy of the context
        while True:
            try:
                await body()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    raise
                # A cancellation nobody asked for (a timeout's, leaked from a library) is one
                # more failure, not a reason to stop firing deadlines.
                state.failed(asyncio.CancelledError("spurious cancellation"))
            except Exception as exc:
                state.failed(exc)
            except BaseException as exc:
                # SystemExit, KeyboardInterrupt, GeneratorExit...: the loop cannot be trusted to
                # run again; it ends here rather than unwinding the event loop.
                self._end(state, f"stopped by {type(exc).__name__}: {exc}")
                return
            else:
                task = asyncio.current_task()
                if state.job or self._stopping or (task is not None and task.cancelling()):
                    return  # done, or a loop that swallowed its cancellation: not a death
                self._end(state, "returned")
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.backoff(state.streak)):
                    await self._retry.wait()
            state.restarts += 1
            LOOP_RESTARTS.labels(state.name).inc()

    def _end(self, state: LoopState, why: str) -> None:
        state.ended = why
        log.critical(
            "background loop %s ended (%s): this process is no longer healthy", state.name, why
        )
        for listener in self._death_listeners:
            try:
                listener(state)
            except Exception:
                log.exception("death listener of %s failed", state.name)

    def _finished(self, state: LoopState, task: asyncio.Task[None]) -> None:
        if self._tasks.get(state.name) is task:
            del self._tasks[state.name]
            if state.alive and self.loops.get(state.name) is state:
                # Finished jobs and cancelled loops are forgotten; dead loops stay reported.
                del self.loops[state.name]

    @property
    def dead(self) -> list[LoopState]:
        """Loops that ended for good."""
        return [state for state in self.loops.values() if not state.alive]

    def report(self) -> dict[str, dict[str, Any]]:
        """Every loop's state, by name."""
        now = time.monotonic()
        return {name: state.report(now) for name, state in sorted(self.loops.items())}

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every loop and wait for them (up to `timeout` seconds)."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=timeout)
            for task in stuck:
                log.error("background loop %s did not stop", task.get_name())
        self._stopping = False


class _Liveness(Collector):
    """Per loop, 1 while it runs (0 once it ended) and the seconds since its last successful
    pass, computed at scrape time."""

    def __init__(self) -> None:
        self.supervisors: weakref.WeakSet[Supervisor] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "npc_loop_up", "1 while a background loop runs, 0 once it ended.", labels=["loop"]
        )
        age = GaugeMetricFamily(
            "npc_loop_seconds_since_pass",
            "Seconds since a background loop's last successful pass.",
            labels=["loop"],
        )
        now = time.monotonic()
        # Several clearinghouses in one process (tests) share the names: the worst one counts.
        alive: dict[str, float] = {}
        ages: dict[str, float] = {}
        for supervisor in list(self.supervisors):
            for name, state in supervisor.loops.items():
                alive[name] = min(alive.get(name, 1.0), 1.0 if state.alive else 0.0)
                since = state.last_pass_at if state.last_pass_at is not None else state.started_at
                ages[name] = max(ages.get(name, 0.0), now - since)
        for name in sorted(alive):
            up.add_metric([name], alive[name])
            age.add_metric([name], ages[name])
        yield up
        yield age


_LIVENESS = _Liveness()
REGISTRY.register(_LIVENESS)
