"""Simulated operators: each one files port requests as recipient and answers them as donor,
over the real gRPC API, the way an operator's integration would.

A `SimulatedOperator` follows its event stream (resuming from the last position it saw after a
disconnect) and reacts to what the clearinghouse sends it:

* as **donor**, it answers each ESC after a random delay: it accepts most, objects some with a coded
  reason (a debt objection carries the amount owed in PEN and the bill's due date), and stays silent
  on a few so the clearinghouse's 5-minute silence rule shows;
* as **recipient**, it files port requests for random numbers of the other simulated operators'
  ranges, schedules each admissible request (SPR) in the next change window, presents proof of
  payment (APD) for some debt objections, and confirms it enabled the numbers once the execution
  broadcast arrives, while the donor confirms it disabled them.

Behaviour lives in `OperatorProfile` so load tests can reuse it with other numbers. Delays in the
profile are wall-clock seconds; instants sent to the clearinghouse come from the `now` callable,
which must agree with the clearinghouse's clock (the demo shares its accelerated clock).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time as wall
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.v1 import common_pb2, events_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients.client import OperatorClient

__all__ = [
    "ChangeWindow",
    "Delay",
    "DonorAnswer",
    "Market",
    "NumberRange",
    "OperatorProfile",
    "SimulatedOperator",
    "Stats",
]

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


# Codes worth retrying with the same request id: the clearinghouse answers a retry with the first
# answer, so a retry after a lost reply cannot file twice. CANCELLED comes from a server stopping
# (the simulator never cancels a unary call itself).
class CommandStream(Protocol):
    """What the simulator uses of a session (`npc_clients.session.Session`)."""

    async def __aenter__(self) -> Any: ...

    async def close(self) -> None: ...

    async def send(self, request: Any) -> Any: ...

    def events(self) -> AsyncIterator[events_pb2.Event]: ...


# The portability commands a session carries (the queries stay unary calls).
_COMMANDS = frozenset(
    {
        "SubmitPortRequest",
        "AnswerPortRequest",
        "SubmitDebtPaymentProof",
        "ReportInstallation",
        "SchedulePort",
        "ConfirmPortExecution",
    }
)
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)

OTHER_OBJECTIONS = (
    pb.OBJECTION_REASON_SERVICE_SUSPENDED,
    pb.OBJECTION_REASON_NUMBER_NOT_OWNED,
    pb.OBJECTION_REASON_DOCUMENT_MISMATCH,
    pb.OBJECTION_REASON_WRONG_MODALITY,
    pb.OBJECTION_REASON_CONTRACT_TERMINATED,
)

_GIVEN_NAMES = (
    "Rosa",
    "José",
    "María",
    "Luis",
    "Carmen",
    "Jorge",
    "Ana",
    "Miguel",
    "Lucía",
    "Juan",
)
_SURNAMES = ("Quispe", "Flores", "Huamán", "Mamani", "Rojas", "García", "Chávez", "Torres", "Díaz")


@dataclass(frozen=True)
class Delay:
    """A random delay in wall-clock seconds: log-normal around `median`, clipped to [low, high]."""

    median: float
    sigma: float = 0.6
    low: float = 0.0
    high: float = math.inf

    def sample(self, rng: random.Random) -> float:
        """One delay, in seconds."""
        if self.median <= 0:
            return max(0.0, self.low)
        return min(self.high, max(self.low, rng.lognormvariate(math.log(self.median), self.sigma)))


@dataclass(frozen=True)
class DonorAnswer:
    """What a donor does with one port request (ESC): "accept", "object" or "silent", and after
    how many seconds it answers (0 when silent)."""

    kind: str
    delay: float


@dataclass(frozen=True)
class OperatorProfile:
    """How a simulated operator behaves. Rates are probabilities in [0, 1].

    Delays are wall seconds for the simulator; traffic profiles (`npc_clients.traffic`) state
    them in clearinghouse seconds and convert them for the clock's speed.
    """

    # Donor side.
    answer_delay: Delay = Delay(0.3, 0.6, 0.02, 2.5)
    objection_rate: float = 0.08  # share of ESC answered with an objection (OCC)
    silence_rate: float = 0.03  # share of ESC never answered: the clearinghouse's 5 minutes run out
    debt_share: float = 0.5  # share of objections that are for debt (REC01PRT09)
    disable_delay: Delay = Delay(0.1, 0.5, 0.0, 1.0)  # execution broadcast -> DONOR_DISABLED
    # Recipient side.
    fixed_share: float = 0.1  # share of filings for fixed numbers (when the donor has fixed ranges)
    debt_proof_rate: float = 0.6  # share of debt objections lifted with proof of payment (APD)
    debt_proof_delay: Delay = Delay(0.5, 0.5, 0.05, 3.0)
    schedule_delay: Delay = Delay(0.05, 0.5, 0.0, 1.0)  # SPR -> SchedulePort
    schedule_lead: timedelta = timedelta(minutes=1)  # clearinghouse time between PP and the port
    enable_delay: Delay = Delay(0.1, 0.5, 0.0, 1.0)  # execution broadcast -> RECIPIENT_ENABLED
    # Own requests not yet closed. Past about 60 per operator a saturated clearinghouse only
    # queues: latency grows (donors miss their 5 minutes) and throughput falls.
    max_in_flight: int = 64
    # Transport.
    call_timeout: float = 10.0
    max_concurrent_calls: int = 32  # unary calls outstanding at once on this operator's channel
    # Per call, for UNAVAILABLE / DEADLINE_EXCEEDED / CANCELLED: about 12 s of backoff, the time a
    # server takes to stop (lame duck, drain) and another to take over.
    max_attempts: int = 10

    def donor_answer(self, rng: random.Random) -> DonorAnswer:
        """Draw the donor's answer to one request: silent, objection or acceptance, and when."""
        roll = rng.random()
        if roll < self.silence_rate:
            return DonorAnswer("silent", 0.0)
        kind = "object" if roll < self.silence_rate + self.objection_rate else "accept"
        return DonorAnswer(kind, self.answer_delay.sample(rng))


@dataclass(frozen=True)
class ChangeWindow:
    """The nightly change window in which ports execute (default 00:00-06:00, America/Lima)."""

    start: time = time(0, 0)
    end: time = time(6, 0)
    timezone: str = "America/Lima"

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def length(self) -> timedelta:
        """How long the window stays open (a whole day when start equals end)."""
        span = datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)
        return span % timedelta(days=1) or timedelta(days=1)

    def opening_on(self, day: date) -> datetime:
        """The UTC instant the window opens on local date `day`."""
        return datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)

    def containing(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The (opening, closing) of the window open at `instant`, if one is."""
        day = instant.astimezone(self.zone).date()
        for candidate in (day - timedelta(days=1), day):
            opens = self.opening_on(candidate)
            if opens <= instant < opens + self.length:
                return opens, opens + self.length
        return None

    def next_opening(self, after: datetime) -> datetime:
        """The first opening strictly after `after`."""
        day = after.astimezone(self.zone).date()
        while True:
            opens = self.opening_on(day)
            if opens > after:
                return opens
            day += timedelta(days=1)

    def earliest(self, not_before: datetime, limit: datetime | None = None) -> datetime | None:
        """The earliest instant at or after `not_before` inside a window, or None past `limit`.

        That is `not_before` itself when a window is open then (the port goes in the open window)
        and the next opening otherwise.
        """
        candidate = not_before if self.containing(not_before) else self.next_opening(not_before)
        if limit is not None and candidate > limit:
            return None
        return candidate


@dataclass(frozen=True)
class NumberRange:
    """An inclusive range of the numbering plan held by `operator`."""

    operator: str
    service: str  # "mobile" or "fixed"
    first: int
    last: int


@dataclass
class Stats:
    """Counters of a simulated market; the recipient counts its own requests once each."""

    filed: int = 0
    admissible: int = 0
    scheduled: int = 0
    executed: int = 0
    completed: int = 0
    rejected: int = 0  # RABDCP: objected, or debt not proven in time
    cancelled: int = 0  # CNPF, or could not be scheduled before the execution limit
    abandoned: int = 0  # debt objections the recipient chose not to contest
    accepted: int = 0  # donor answers (SAC)
    objected: int = 0  # donor answers (OCC)
    silent: int = 0  # ESC the donor let time out
    late: int = 0  # donor answers refused because its 5 minutes had run out
    offered: int = 0  # requests a traffic profile asked to file
    declined: int = 0  # of those, not filed: no slot left (--ports) or filing stopped
    errors: int = 0  # calls that failed for good
    started_at: float = field(default_factory=wall.monotonic)
    first_filed_at: float | None = None
    first_completed_at: float | None = None
    last_completed_at: float | None = None

    @property
    def closed(self) -> int:
        """Own requests that reached an end: completed, rejected, cancelled or abandoned."""
        return self.completed + self.rejected + self.cancelled + self.abandoned

    @property
    def in_flight(self) -> int:
        """Own requests filed and not closed yet."""
        return self.filed - self.closed

    def completion_rate(self) -> float:
        """Completed ports per wall second, from the first filing to the last completion."""
        if not self.completed or self.first_filed_at is None or self.last_completed_at is None:
            return 0.0
        return self.completed / max(1e-9, self.last_completed_at - self.first_filed_at)


class Market:
    """What the simulated operators share: counters, the filing pace, an optional total and a gate.

    With `ports` set, operators keep filing until exactly that many requests completed: a request
    that ends otherwise (rejected, cancelled, abandoned) frees its slot for another filing.
    """

    def __init__(self, *, rate: float | None = None, ports: int | None = None) -> None:
        self.stats = Stats()
        self.rate = rate if rate and rate > 0 else None
        self.ports = ports
        self.gate = asyncio.Event()  # filing allowed while set
        self.gate.set()
        self.done = asyncio.Event()  # set once `ports` requests completed
        self._reserved = 0
        self._slot_freed = asyncio.Event()
        self._next_filing = 0.0
        self._pace_lock = asyncio.Lock()

    def reserve(self) -> bool:
        """Take a filing slot; False when `ports` requests are already completed or under way."""
        if self.ports is not None and self._reserved >= self.ports:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        """Give back the slot of a request that will not complete."""
        self._reserved -= 1
        self._slot_freed.set()

    async def wait_for_slot(self) -> None:
        """Wait until a slot may have been freed."""
        self._slot_freed.clear()
        await self._slot_freed.wait()

    async def pace(self) -> None:
        """Space filings to `rate` per second across every operator of the market."""
        if self.rate is None:
            return
        async with self._pace_lock:
            now = wall.monotonic()
            self._next_filing = max(self._next_filing, now)
            delay = self._next_filing - now
            self._next_filing += 1.0 / self.rate
        if delay > 0:
            await asyncio.sleep(delay)

    def completed(self) -> None:
        """Count a completed port (and finish the run when `ports` are done)."""
        self.stats.completed += 1
        self.stats.last_completed_at = wall.monotonic()
        if self.stats.first_completed_at is None:
            self.stats.first_completed_at = self.stats.last_completed_at
        if self.ports is not None and self.stats.completed >= self.ports:
            self.done.set()


@dataclass
class _Case:
    """One of the simulated recipient's own requests."""

    id: str
    donor: str
    numbers: tuple[str, ...]
    execution_limit: datetime | None = None
    scheduled: bool = False


def _ts(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def _date(day: date) -> Date:
    return Date(year=day.year, month=day.month, day=day.day)


def _instant(request: pb.PortRequest, name: str) -> datetime | None:
    if not request.HasField(name):  # type: ignore[arg-type]  # one of its Timestamp fields
        return None
    stamp: Timestamp = getattr(request, name)
    return stamp.ToDatetime(tzinfo=UTC)


def _system_now() -> datetime:
    return datetime.now(UTC)


class SimulatedOperator:
    """One operator's systems, simulated: recipient, donor, and event-stream follower."""

    def __init__(
        self,
        client: OperatorClient,
        market: Market,
        ranges: Sequence[NumberRange],
        *,
        counterparts: Sequence[str],
        profile: OperatorProfile | None = None,
        window: ChangeWindow | None = None,
        now: Now = _system_now,
        seed: int | None = None,
        file_requests: bool = True,
        api: str = "unary",
    ) -> None:
        """Describe the operator; nothing runs until `start`.

        Args:
            client: a client authenticated as this operator (its `operator` attribute is its id).
            market: the counters, pace and gate shared with the other simulated operators.
            ranges: the numbering plan's ranges; requests go to `counterparts`' ranges.
            counterparts: the operators it may take numbers from (other simulated operators, so
                that someone answers as donor).
            profile: behaviour parameters.
            window: the change window the clearinghouse enforces.
            now: the clearinghouse's current instant (for received_at and scheduling).
            seed: seed of this operator's random choices.
            file_requests: False makes it a donor only.
            api: "unary" (one call per command, a subscription for the events) or "session"
                (every command and the events on one session stream; queries stay unary).
        """
        if not client.operator:
            raise ValueError("the client needs its operator id (OperatorClient(operator=...))")
        self.client = client
        self.operator = client.operator
        self.market = market
        self.profile = profile or OperatorProfile()
        self.window = window or ChangeWindow()
        self.now = now
        self.rng = random.Random(seed)
        self.file_requests = file_requests
        if api not in ("unary", "session"):
            raise ValueError(f"api is 'unary' or 'session', not {api!r}")
        self.api = api
        self.session: CommandStream | None = None
        self.position = 0
        self.cases: dict[str, _Case] = {}
        self._targets: list[NumberRange] = [
            r for r in ranges if r.operator in counterparts and r.operator != self.operator
        ]
        self.counterparts = frozenset(r.operator for r in self._targets)
        if file_requests and not self._targets:
            raise ValueError(f"{self.operator}: no counterpart ranges to take numbers from")
        self._filing: dict[str, asyncio.Future[str | None]] = {}
        self._in_flight = 0
        # Own requests allowed under way at once: the profile's, unless a load test's ramp-up
        # holds it lower for now (`allow_in_flight`).
        self.max_in_flight = self.profile.max_in_flight
        self._room = asyncio.Event()
        self._calls = asyncio.Semaphore(self.profile.max_concurrent_calls)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        # How far ahead it schedules now: it learns from refused instants, as an operator whose
        # schedules arrive too late starts aiming further ahead for every case, not just one.
        self.schedule_lead = self.profile.schedule_lead

    @property
    def stats(self) -> Stats:
        """The market's shared counters."""
        return self.market.stats

    # ------------------------------------------------------------------ lifecycle

    async def start(self, from_position: int | None = None) -> None:
        """Follow the event stream (from `from_position`, default the current head) and file.

        Everything addressed to this operator after that position is delivered, however late
        the stream opens.
        """
        if from_position is None:
            head = await self._call(
                "GetStreamHead", events_pb2.GetStreamHeadRequest(), service=self.client.events
            )
            from_position = head.position
        self.position = from_position
        if self.api == "session":
            self.session = self.client.session(from_position=from_position, flows=["portability"])
            await self.session.__aenter__()
        loop = asyncio.get_running_loop()
        # The stream starts at an explicit position, so events committed before the server
        # opens it are still delivered: no need to wait for it here.
        self._loops.append(loop.create_task(self._follow(), name=f"{self.operator}-events"))
        if self.file_requests:
            self._loops.append(loop.create_task(self._file_loop(), name=f"{self.operator}-filing"))

    async def stop(self) -> None:
        """Stop filing, following and every pending reaction."""
        tasks = [*self._loops, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()
        self._tasks.clear()
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.operator}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ calls

    async def _call(
        self,
        method: str,
        request: Any,
        *,
        service: Any = None,
        build: Callable[[], Any] | None = None,
    ) -> Any:
        """Call `method`, retrying `RETRYABLE` codes with the same request (id).

        With `build`, the request is made by it once a call slot is free: a request naming an
        instant must be made when it is sent, not before waiting for the slot.
        """
        stub = service or self.client.portability
        delay = 0.1
        for attempt in range(1, self.profile.max_attempts + 1):
            try:
                async with self._calls:
                    if build is not None:
                        request, build = build(), None
                        if request is None:
                            return None  # nothing worth sending any more
                    if self.session is not None and service is None and method in _COMMANDS:
                        # Sent again by the session itself across reconnects; a refusal is the
                        # AioRpcError the unary call raises.
                        return await self.session.send(request)
                    return await getattr(stub, method)(
                        request, metadata=self.client.metadata, timeout=self.profile.call_timeout
                    )
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE or attempt == self.profile.max_attempts:
                    raise
                log.debug("%s %s: %s; retrying", self.operator, method, error.code().name)
                await asyncio.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def _try(
        self, method: str, request: Any, *, quiet: tuple[grpc.StatusCode, ...] = ()
    ) -> Any:
        """`_call`, logging failures instead of raising; None when the call failed."""
        try:
            return await self._call(method, request)
        except grpc.aio.AioRpcError as error:
            if error.code() in quiet:
                log.debug("%s %s: %s", self.operator, method, error.details())
            else:
                self.stats.errors += 1
                log.warning(
                    "%s %s failed: %s %s", self.operator, method, error.code().name, error.details()
                )
            return None

    # ------------------------------------------------------------------ events

    async def _follow(self) -> None:
        """Read the event stream, reconnecting from the last position seen."""
        if self.session is not None:
            async for event in self.session.events():  # resumed by the session itself
                self.position = event.position
                self._dispatch(event)
            return
        delay = 0.2
        while True:
            call = self.client.events.Subscribe(
                events_pb2.SubscribeRequest(from_position=self.position, flows=["portability"]),
                metadata=self.client.metadata,
            )
            try:
                async for event in call:
                    delay = 0.2
                    self.position = event.position
                    self._dispatch(event)
                log.info(
                    "%s: event stream ended; resubscribing from %d", self.operator, self.position
                )
            except grpc.aio.AioRpcError as error:
                log.info(
                    "%s: event stream lost (%s); resubscribing from %d",
                    self.operator,
                    error.code().name,
                    self.position,
                )
            finally:
                call.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _dispatch(self, event: events_pb2.Event) -> None:
        if event.WhichOneof("body") != "port_request":
            return
        request = event.port_request.port_request
        kind = event.type.removeprefix("portability.request.")
        case_id = event.case_id
        me = self.operator
        donor, recipient = request.donor, request.recipient
        if kind == "sent_to_donor" and donor == me:
            self._spawn(self._answer(case_id), f"answer-{case_id}")
        elif kind == "executed" and donor == me:
            self._spawn(self._disable(case_id), f"disable-{case_id}")
        if recipient != me or kind not in _RECIPIENT_EVENTS:
            return
        self._spawn(self._as_recipient(kind, case_id, request), f"{kind}-{case_id}")

    async def _own_case(self, case_id: str, request: pb.PortRequest) -> _Case | None:
        """The case if it is one of this run's own requests (its filing may still be answering)."""
        case = self.cases.get(case_id)
        if case is not None:
            return case
        for block in request.numbers:
            pending = self._filing.get(block.first)
            if pending is not None and await asyncio.shield(pending) == case_id:
                return self.cases.get(case_id)
        return None

    async def _as_recipient(self, kind: str, case_id: str, request: pb.PortRequest) -> None:
        case = await self._own_case(case_id, request)
        if case is None:
            return  # a request of an earlier run, or already closed here
        if kind == "admissible":
            self.stats.admissible += 1
            limit = _instant(request, "execution_limit")
            if limit is not None:
                case.execution_limit = limit
            await self._schedule(case)
        elif kind == "objected" and request.state == pb.PORT_REQUEST_STATE_OBJECTED_DEBT:
            await self._debt_objection(case)
        elif kind == "executed":
            self.stats.executed += 1
            await asyncio.sleep(self.profile.enable_delay.sample(self.rng))
            await self._confirm(case.id, pb.EXECUTION_STEP_RECIPIENT_ENABLED)
        elif kind == "completed":
            self._close(case, "completed")
        elif kind == "rejected":
            self._close(case, "rejected")
        elif kind == "cancelled":
            self._close(case, "cancelled")

    def _close(self, case: _Case, outcome: str) -> None:
        if self.cases.pop(case.id, None) is None:
            return
        self._in_flight -= 1
        self._room.set()
        if outcome == "completed":
            self.market.completed()
            return
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.market.release()

    # ------------------------------------------------------------------ donor

    async def _answer(self, case_id: str) -> None:
        """Answer an ESC: accept, object with a coded reason, or stay silent."""
        plan = self.profile.donor_answer(self.rng)
        if plan.kind == "silent":
            self.stats.silent += 1
            return
        await asyncio.sleep(plan.delay)
        request = pb.AnswerPortRequestRequest(
            request_id=OperatorClient.new_request_id(), port_request_id=case_id, accept=True
        )
        if plan.kind == "object":
            request.accept = False
            request.objection.CopyFrom(self._objection())
        try:
            await self._call("AnswerPortRequest", request)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # The 5 minutes ran out meanwhile: the clearinghouse took it as silence.
                self.stats.late += 1
                log.debug("%s AnswerPortRequest: %s", self.operator, error.details())
            else:
                self.stats.errors += 1
                log.warning(
                    "%s AnswerPortRequest failed: %s %s",
                    self.operator,
                    error.code().name,
                    error.details(),
                )
            return
        if request.accept:
            self.stats.accepted += 1
        else:
            self.stats.objected += 1

    def _objection(self) -> pb.Objection:
        if self.rng.random() < self.profile.debt_share:
            due = self.now().astimezone(self.window.zone).date() - timedelta(
                days=self.rng.randint(5, 60)
            )
            return pb.Objection(
                reason=pb.OBJECTION_REASON_DEBT,
                detail="unpaid bill",
                debt=pb.Debt(
                    owed=common_pb2.Money(
                        amount=f"{self.rng.randint(20, 600)}.{self.rng.randint(0, 99):02d}",
                        currency="PEN",
                    ),
                    due_date=_date(due),
                    bill_number=f"B{self.rng.randint(10**7, 10**8 - 1)}",
                ),
            )
        return pb.Objection(reason=self.rng.choice(OTHER_OBJECTIONS), detail="simulated objection")

    async def _disable(self, case_id: str) -> None:
        await asyncio.sleep(self.profile.disable_delay.sample(self.rng))
        await self._confirm(case_id, pb.EXECUTION_STEP_DONOR_DISABLED)

    async def _confirm(self, case_id: str, step: pb.ExecutionStep.ValueType) -> None:
        await self._try(
            "ConfirmPortExecution",
            pb.ConfirmPortExecutionRequest(
                request_id=OperatorClient.new_request_id(), port_request_id=case_id, step=step
            ),
            quiet=(grpc.StatusCode.FAILED_PRECONDITION,),
        )

    # ------------------------------------------------------------------ recipient

    async def _file_loop(self) -> None:
        market = self.market
        while True:
            await market.gate.wait()
            if self._in_flight >= self.max_in_flight:
                self._room.clear()
                await self._room.wait()
                continue
            if not market.reserve():
                await market.wait_for_slot()
                continue
            await market.pace()
            if not market.gate.is_set():  # closed while we waited for our turn
                market.release()
                continue
            self._in_flight += 1
            self._spawn(self._file_one(), "file")

    def allow_in_flight(self, limit: int) -> None:
        """Let up to `limit` own requests be under way at once (a ramp-up raises it in steps)."""
        self.max_in_flight = max(1, limit)
        self._room.set()

    def file_to(self, donor: str | None = None) -> bool:
        """Start filing one port request for a number of `donor` (any counterpart when None).

        For traffic-driven filing (`file_requests=False`): the request counts against the market's
        `ports` like the operator's own filings. False when it cannot be filed now: filing is
        stopped, every slot is taken, or `donor` is not a counterpart.
        """
        market = self.market
        market.stats.offered += 1
        if (
            (donor is not None and donor not in self.counterparts)
            or not market.gate.is_set()
            or not market.reserve()
        ):
            market.stats.declined += 1
            return False
        self._in_flight += 1
        self._spawn(self._file_one(donor), "file")
        return True

    def _pick(self, donor: str | None = None) -> tuple[NumberRange, str]:
        targets = [r for r in self._targets if donor is None or r.operator == donor]
        mobile = [r for r in targets if r.service == "mobile"]
        fixed = [r for r in targets if r.service == "fixed"]
        pool = (
            fixed
            if fixed and (not mobile or self.rng.random() < self.profile.fixed_share)
            else mobile
        )
        chosen = self.rng.choice(pool)
        return chosen, str(self.rng.randint(chosen.first, chosen.last))

    def _subscriber(self) -> common_pb2.Subscriber:
        name = f"{self.rng.choice(_GIVEN_NAMES)} {self.rng.choice(_SURNAMES)} {self.rng.choice(_SURNAMES)}"
        return common_pb2.Subscriber(
            name=name,
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number=f"{self.rng.randint(10**7, 10**8 - 1)}"
            ),
            contact_phone=f"9{self.rng.randint(10**7, 10**8 - 1)}",
        )

    async def _file_one(self, donor: str | None = None) -> None:
        """File one port request (SP); a number that is taken or not the donor's is replaced."""
        for _ in range(20):
            number_range, number = self._pick(donor)
            if number in self._filing:
                continue
            now = self.now()
            request = pb.SubmitPortRequestRequest(
                request_id=OperatorClient.new_request_id(),
                donor=number_range.operator,
                service=(
                    common_pb2.SERVICE_TYPE_FIXED
                    if number_range.service == "fixed"
                    else common_pb2.SERVICE_TYPE_MOBILE
                ),
                subscriber=self._subscriber(),
                numbers=[
                    common_pb2.NumberBlock(
                        first=number,
                        modality=self.rng.choice(
                            (common_pb2.MODALITY_PREPAID, common_pb2.MODALITY_POSTPAID)
                        ),
                    )
                ],
                received_at=_ts(now - timedelta(seconds=self.rng.randint(0, 60))),
                form_number=f"F-{self.operator[:3].upper()}-{self.rng.randint(1, 10**7):07d}",
            )
            if number_range.service == "fixed":
                request.installation_date.CopyFrom(_date(now.astimezone(self.window.zone).date()))
            pending: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._filing[number] = pending
            try:
                filed = await self._call("SubmitPortRequest", request)
            except grpc.aio.AioRpcError as error:
                pending.set_result(None)
                if error.code() in (
                    grpc.StatusCode.ALREADY_EXISTS,  # the number has a live request
                    grpc.StatusCode.FAILED_PRECONDITION,  # e.g. already ported away
                ):
                    continue
                self.stats.errors += 1
                log.warning(
                    "%s SubmitPortRequest failed: %s %s",
                    self.operator,
                    error.code().name,
                    error.details(),
                )
                break
            finally:
                del self._filing[number]
            self.cases[filed.id] = _Case(
                filed.id,
                filed.donor,
                (number,),
                execution_limit=filed.execution_limit.ToDatetime(tzinfo=UTC)
                if filed.HasField("execution_limit")
                else None,
            )
            self.stats.filed += 1
            if self.stats.first_filed_at is None:
                self.stats.first_filed_at = wall.monotonic()
            pending.set_result(filed.id)
            return
        self._in_flight -= 1
        self._room.set()
        self.market.release()

    async def _schedule(self, case: _Case) -> None:
        """PP: schedule in the next change window (or a moment later in the open one)."""
        if case.scheduled:
            return
        await asyncio.sleep(self.profile.schedule_delay.sample(self.rng))
        if case.execution_limit is None:
            current = await self._try(
                "GetPortRequest", pb.GetPortRequestRequest(port_request_id=case.id)
            )
            if current is None:
                return
            case.execution_limit = current.execution_limit.ToDatetime(tzinfo=UTC)
        lead = self.schedule_lead
        last_error = ""
        for attempt in range(5):

            def request(lead: timedelta = lead) -> pb.SchedulePortRequest | None:
                at = self.window.earliest(self.now() + lead, case.execution_limit)
                if at is None:
                    return None
                return pb.SchedulePortRequest(
                    request_id=OperatorClient.new_request_id(),
                    port_request_id=case.id,
                    scheduled_at=_ts(at),
                )

            try:
                scheduled = await self._call("SchedulePort", None, build=request)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    # The instant passed before the clearinghouse saw it (a slow answer, or a fast
                    # clock), or the window closed meanwhile: aim further ahead.
                    last_error = error.details() or ""
                    lead *= 2
                    self.schedule_lead = min(
                        max(self.schedule_lead, lead), self.profile.schedule_lead * 64
                    )
                    continue
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    self.stats.errors += 1
                    log.warning(
                        "%s SchedulePort %s failed: %s %s",
                        self.operator,
                        case.id,
                        error.code().name,
                        error.details(),
                    )
                return
            if scheduled is None:
                log.info(
                    "%s: %s cannot be scheduled before its execution limit", self.operator, case.id
                )
                return  # the clearinghouse cancels it at the scheduling limit (CNPF)
            case.scheduled = True
            self.stats.scheduled += 1
            if attempt == 0:
                # Accepted at once: try a little closer next time (never below the profile's).
                self.schedule_lead = max(self.profile.schedule_lead, self.schedule_lead * 0.95)
            return
        self.stats.errors += 1
        log.warning("%s SchedulePort %s gave up: %s", self.operator, case.id, last_error)

    async def _debt_objection(self, case: _Case) -> None:
        """APD for some debt objections; the others are left to expire (counted as abandoned)."""
        if self.rng.random() >= self.profile.debt_proof_rate:
            self._close(case, "abandoned")
            return
        await asyncio.sleep(self.profile.debt_proof_delay.sample(self.rng))
        await self._try(
            "SubmitDebtPaymentProof",
            pb.SubmitDebtPaymentProofRequest(
                request_id=OperatorClient.new_request_id(),
                port_request_id=case.id,
                receipt_number=f"R-{self.rng.randint(10**9, 10**10 - 1)}",
                paid_at=_ts(self.now()),
            ),
            quiet=(grpc.StatusCode.FAILED_PRECONDITION,),
        )


_RECIPIENT_EVENTS = frozenset(
    ("admissible", "objected", "executed", "completed", "rejected", "cancelled")
)
