"""Locust load test of a running `npc serve` over gRPC, for any market.

    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 60s --rate 100 \\
        --host 127.0.0.1:50051 --csv loadtest/results/run

Each process reads the numbering plan once, at start, from RegistryService.StreamSnapshot (as the
operator `--plan-reader`, default `osiptel`): the operators holding mobile ranges are the market,
numbers are drawn from their ranges, and a number the snapshot says is ported is filed against
its serving operator. Users identify by token (`--token-template`, default
`dev-token-{operator}`), or, with NPC_LOAD_PKI=DIR, by mutual TLS with the certificates in DIR
(`<operator>.crt`, `<operator>.key` and `ca.crt`, as `npc admin make-ca` / `issue-cert` write them).

* `RecipientUser` files port requests (SubmitPortRequest) for random mobile numbers of another
  operator and reads some back (GetPortRequest); operators and donors are drawn by the market
  shares of the traffic profile (NPC_LOAD_PROFILE, default peru-2024); an operator the profile
  does not name gets the average share;
* `DonorUser`, one per operator (times --donor-copies), follows EventService.Subscribe for its
  operator in a greenlet and answers each request addressed to it (AnswerPortRequest): it accepts
  most and objects some, at the profile's objection rate. Each answer's request id is derived from
  the case, so a second donor answering the same case (distributed runs) gets the first answer
  back instead of a conflict. The stream's delivery latency (event occurred -> received) is
  reported as "Subscribe (delivery)";
* `LookupUser` asks routing data: one number (LookupNumber) or a batch (LookupNumbers, columnar).

`--rate R` paces the recipients and lookups to R tasks (one call each) per second in all, split
evenly over them (and over `--expect-workers` in a distributed run); the donors answer what is
filed on top of it. Without it each user waits 0.1-1 s between tasks.

gRPC runs on gevent through the SDK's blocking client (`npc_clients.SyncOperatorClient`: grpc.aio
has its own event loop, which Locust's gevent workers would not drive), which retries UNAVAILABLE
and DEADLINE_EXCEEDED with the same request id; every call is reported as a Locust request of type
"grpc", retries included in its time.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from gevent.lock import Semaphore
from gevent.queue import Empty, Queue
from google.protobuf.message import Message
from locust import User, between, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# Before any gRPC object exists: gRPC's I/O must yield to gevent (Locust has patched the stdlib).
grpc_gevent.init_gevent()

from npc.v1 import common_pb2, events_pb2, portability_pb2, registry_pb2  # noqa: E402
from npc_clients.client import RETRYABLE_UNARY  # noqa: E402
from npc_clients.simulator import OperatorProfile  # noqa: E402
from npc_clients.sync import SyncOperatorClient, UnaryRpc, status_of  # noqa: E402
from npc_clients.traffic import profile_named  # noqa: E402

PROFILE = profile_named(os.environ.get("NPC_LOAD_PROFILE", "peru-2024"))
PKI = os.environ.get("NPC_LOAD_PKI", "")
LOOKUP_BATCH = 500
CALL_TIMEOUT = 10.0
RETRY_FOR = 5.0  # a call still failing after this is a failure of the run, not a hiccup
# Ported numbers kept to pick the right donor: a real registry has millions; past this many the
# rest are skipped (a number among them is filed against its range holder and refused).
MAX_PORTED = 500_000
SNAPSHOT_WAIT = 30.0  # seconds to get the plan from a server still starting

Req = TypeVar("Req")
Resp = TypeVar("Resp", bound=Message)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--donor-copies",
        type=int,
        default=1,
        help="donor users per operator; in distributed runs, the number of workers",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="recipients' and lookups' calls per second in all (0: unpaced)",
    )
    parser.add_argument(
        "--plan-reader",
        default="osiptel",
        env_var="NPC_LOAD_PLAN_READER",
        help="operator (or regulator) whose identity reads the numbering plan",
    )
    parser.add_argument(
        "--token-template",
        default="dev-token-{operator}",
        env_var="NPC_LOAD_TOKEN_TEMPLATE",
        help="each operator's API token, {operator} standing for its id",
    )


@dataclass(frozen=True)
class Market:
    """What the registry snapshot says: who holds mobile ranges, and which numbers moved."""

    position: int
    operators: list[str]
    shares: dict[str, float]
    mobile: dict[str, list[tuple[int, int]]]
    ported: dict[int, str]  # number -> serving operator

    def random_number(self, holder: str) -> int:
        """A random mobile number of one of `holder`'s ranges, weighed by the ranges' sizes."""
        ranges = self.mobile[holder]
        first, last = random.choices(ranges, [b - a + 1 for a, b in ranges])[0]
        return random.randint(first, last)


_market: Market | None = None
_market_lock = Semaphore()


def connect(environment: Environment, operator: str) -> SyncOperatorClient:
    """A blocking SDK client identified as `operator` (certificate or token, see the options)."""
    target = environment.host or "127.0.0.1:50051"
    if PKI:
        pki = Path(PKI)
        return SyncOperatorClient.with_certificate(
            target,
            pki / f"{operator}.crt",
            pki / f"{operator}.key",
            pki / "ca.crt",
            operator=operator,
            retry_for=RETRY_FOR,
        )
    template = option(environment, "token_template", "dev-token-{operator}")
    return SyncOperatorClient(
        target, template.format(operator=operator), operator=operator, retry_for=RETRY_FOR
    )


def option(environment: Environment, name: str, default: Any) -> Any:
    """A locustfile option (a worker gets them from the master with its first spawn)."""
    return getattr(environment.parsed_options, name, default) or default


def read_market(environment: Environment) -> Market:
    """The market from one StreamSnapshot, read once per process."""
    global _market
    with _market_lock:
        if _market is None:
            _market = _snapshot(environment)
        return _market


def _snapshot(environment: Environment) -> Market:
    reader = option(environment, "plan_reader", "osiptel")
    client = connect(environment, reader)
    give_up = time.monotonic() + SNAPSHOT_WAIT
    try:
        while True:
            mobile: dict[str, list[tuple[int, int]]] = {}
            ported: dict[int, str] = {}
            position = 0
            try:
                stream = client.registry.StreamSnapshot(
                    registry_pb2.StreamSnapshotRequest(), metadata=client.metadata, timeout=120
                )
                for chunk in stream:
                    position = chunk.position
                    for plan_range in chunk.ranges:
                        if plan_range.service == common_pb2.SERVICE_TYPE_MOBILE:
                            mobile.setdefault(plan_range.operator, []).append(
                                (int(plan_range.first), int(plan_range.last))
                            )
                    for number in chunk.ported:
                        if len(ported) < MAX_PORTED:
                            ported[int(number.number)] = number.serving_operator
                    if chunk.last or len(ported) >= MAX_PORTED:
                        stream.cancel()
                        break
                break
            except grpc.RpcError as error:
                if status_of(error) not in RETRYABLE_UNARY or time.monotonic() > give_up:
                    code = status_of(error)
                    sys.exit(
                        f"locustfile: cannot read the numbering plan from {client.target} as"
                        f" {reader!r}: {code.name if code else error}"
                    )
                gevent.sleep(0.5)
    finally:
        client.close()
    operators = sorted(mobile)
    if len(operators) < 2:
        sys.exit(f"locustfile: the numbering plan has {len(operators)} mobile operator(s); need 2")
    known = PROFILE.shares()
    average = sum(known.values()) / len(known)
    weights = {o: known.get(o, average) for o in operators}
    total = sum(weights.values())
    shares = {o: w / total for o, w in weights.items()}
    return Market(position, operators, shares, mobile, ported)


@events.init.add_listener
def _donors(environment: Environment, **_: Any) -> None:
    """Size the donors by the market (on a worker, the master does and the plan comes later)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    market = read_market(environment)
    copies = option(environment, "donor_copies", 1)
    DonorUser.fixed_count = len(market.operators) * max(1, copies)


def report(
    environment: Environment,
    name: str,
    milliseconds: float,
    length: int,
    exception: BaseException | None = None,
) -> None:
    """Record one gRPC request in Locust's statistics."""
    if isinstance(exception, grpc.RpcError):
        # The status code and message, not the whole debug string, name the failure.
        code = status_of(exception)
        details = exception.details() if isinstance(exception, grpc.Call) else ""
        exception = RuntimeError(f"{code.name if code else 'UNKNOWN'}: {details}")
    environment.events.request.fire(
        request_type="grpc",
        name=name,
        response_time=milliseconds,
        response_length=length,
        exception=exception,
        context={},
    )


_paced_count = (0.0, 1)  # (when counted, paced users in this process)


def paced_users(environment: Environment) -> int:
    """Paced users running in this process, counted at most once a second (it walks them all)."""
    global _paced_count
    counted_at, count = _paced_count
    now = time.monotonic()
    runner = environment.runner
    if now - counted_at > 1.0 and runner is not None:
        counts = runner.user_classes_count
        count = max(1, counts.get("RecipientUser", 0) + counts.get("LookupUser", 0))
        _paced_count = (now, count)
    return count


def paced(unpaced: Callable[[User], float]) -> Callable[[GrpcUser], float]:
    """A wait time keeping the paced users at --rate tasks per second in all, or `unpaced`."""

    def wait(user: GrpcUser) -> float:
        environment = user.environment
        rate = float(option(environment, "rate", 0.0))
        if rate <= 0:
            return unpaced(user)
        if isinstance(environment.runner, WorkerRunner):
            # The master spreads users evenly over the workers: each paces its share.
            rate /= max(1, int(option(environment, "expect_workers", 1)))
        interval = paced_users(environment) / rate
        now = time.monotonic()
        # Each user keeps its own schedule; one that fell behind starts again from now rather
        # than bursting to catch up.
        user.due = max(now, user.due + interval)
        return user.due - now

    return wait


class GrpcUser(User):
    """One operator's systems connected to the clearinghouse at --host (host:port)."""

    abstract = True
    operator = ""
    due = 0.0  # when a paced user's next task is due (time.monotonic)

    def choose_operator(self) -> str:
        """This user's operator: by market share."""
        operators = self.market.operators
        return random.choices(operators, [self.market.shares[o] for o in operators])[0]

    def on_start(self) -> None:
        """Connect as the chosen operator."""
        self.market = read_market(self.environment)
        self.operator = self.choose_operator()
        self.client = connect(self.environment, self.operator)

    def on_stop(self) -> None:
        """Close the channel."""
        self.client.close()

    def call(self, rpc: UnaryRpc[Req, Resp], request: Req, name: str) -> Resp | None:
        """`rpc` through the SDK, timed and reported as `name`; None when it failed."""
        started = time.perf_counter()
        response: Resp | None = None
        failure: grpc.RpcError | None = None
        try:
            response = self.client.call(rpc, request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            failure = error
        size = response.ByteSize() if response is not None else 0
        report(self.environment, name, (time.perf_counter() - started) * 1000, size, failure)
        return response


class RecipientUser(GrpcUser):
    """Files port requests as recipient, for numbers of another operator (drawn by share)."""

    weight = 3
    wait_time = paced(between(0.2, 1.0))

    def on_start(self) -> None:
        """Connect; no request filed yet."""
        super().on_start()
        self.filed: list[str] = []

    def choose_number(self) -> tuple[str, str]:
        """A donor (by share) and one of the numbers it serves now, per the snapshot."""
        others = [o for o in self.market.operators if o != self.operator]
        for _ in range(10):  # a number already ported to this operator is drawn again
            donor = random.choices(others, [self.market.shares[o] for o in others])[0]
            number = self.market.random_number(donor)
            serving = self.market.ported.get(number, donor)
            if serving != self.operator:
                break
        return serving, str(number)

    @task(4)
    def submit_port_request(self) -> None:
        """SP: one number, a DNI holder, received just now."""
        donor, number = self.choose_number()
        received = time.time() - random.uniform(0, 30)
        request = portability_pb2.SubmitPortRequestRequest(
            request_id=f"load-{os.getpid()}-{next(_ids)}-{random.getrandbits(32):08x}",
            donor=donor,
            service=common_pb2.SERVICE_TYPE_MOBILE,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani",
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_DNI, number=f"{random.randint(10**7, 10**8 - 1)}"
                ),
                contact_phone=f"9{random.randint(10**7, 10**8 - 1)}",
            ),
            numbers=[
                common_pb2.NumberBlock(
                    first=number,
                    modality=random.choice(
                        (common_pb2.MODALITY_PREPAID, common_pb2.MODALITY_POSTPAID)
                    ),
                )
            ],
            form_number=f"F-LOAD-{random.randint(1, 10**7):07d}",
        )
        request.received_at.FromNanoseconds(int(received * 1e9))
        filed = self.call(self.client.portability.SubmitPortRequest, request, "SubmitPortRequest")
        if filed is None:
            return
        self.filed.append(filed.id)
        del self.filed[:-100]

    @task(1)
    def get_port_request(self) -> None:
        """Read back one of its requests."""
        if self.filed:
            self.call(
                self.client.portability.GetPortRequest,
                portability_pb2.GetPortRequestRequest(port_request_id=random.choice(self.filed)),
                "GetPortRequest",
            )


_ids = itertools.count(1)
_donor_slots = itertools.count()


class DonorUser(GrpcUser):
    """One operator's donor desk: follows its event stream and answers what is addressed to it."""

    fixed_count = 1  # one per operator (times --donor-copies), set from the market at init
    wait_time = constant(0)

    def choose_operator(self) -> str:
        """Each donor user of this process takes the next operator, so all of them answer."""
        operators = self.market.operators
        return operators[next(_donor_slots) % len(operators)]

    def on_start(self) -> None:
        """Start following the stream from its current head."""
        super().on_start()
        known = {o.operator: o.behaviour for o in PROFILE.operators}
        self.objection_rate = known.get(self.operator, OperatorProfile()).objection_rate
        self.pending: Queue[str] = Queue()
        self.stopping = False
        self.stream: Any = None
        head = self.call(
            self.client.events.GetStreamHead, events_pb2.GetStreamHeadRequest(), "GetStreamHead"
        )
        self.position = head.position if head is not None else 0
        self.follower = gevent.spawn(self._follow)

    def on_stop(self) -> None:
        """Stop following, then close."""
        self.stopping = True
        if self.stream is not None:
            self.stream.cancel()
        self.follower.kill(block=False)
        super().on_stop()

    def _follow(self) -> None:
        """Queue the requests sent to this donor (ESC), resubscribing after a lost stream."""
        while not self.stopping:
            self.stream = self.client.events.Subscribe(
                events_pb2.SubscribeRequest(from_position=self.position, flows=["portability"]),
                metadata=self.client.metadata,
            )
            try:
                for event in self.stream:
                    self.position = event.position
                    if event.type != "portability.request.sent_to_donor":
                        continue
                    if event.port_request.port_request.donor != self.operator:
                        continue
                    delivered = time.time() - event.occurred_at.ToNanoseconds() / 1e9
                    report(
                        self.environment,
                        "Subscribe (delivery)",
                        max(0.0, delivered * 1000),
                        event.ByteSize(),
                    )
                    self.pending.put(event.case_id)
            except grpc.RpcError as error:
                if self.stopping or status_of(error) == grpc.StatusCode.CANCELLED:
                    return
                report(self.environment, "Subscribe", 0.0, 0, error)
                gevent.sleep(1.0)

    @task
    def answer(self) -> None:
        """SAC for most requests, OCC (an objection with its reason) for some."""
        try:
            case_id = self.pending.get(timeout=1.0)
        except Empty:
            return
        # Decided by the case, so every copy of this donor gives the same answer.
        choice = random.Random(case_id)
        request = portability_pb2.AnswerPortRequestRequest(
            request_id=f"load-answer-{case_id}", port_request_id=case_id, accept=True
        )
        if choice.random() < self.objection_rate:
            request.accept = False
            request.objection.reason = choice.choice(
                (
                    portability_pb2.OBJECTION_REASON_SERVICE_SUSPENDED,
                    portability_pb2.OBJECTION_REASON_DOCUMENT_MISMATCH,
                    portability_pb2.OBJECTION_REASON_WRONG_MODALITY,
                )
            )
            request.objection.detail = "load test objection"
        self.call(self.client.portability.AnswerPortRequest, request, "AnswerPortRequest")


class LookupUser(GrpcUser):
    """A routing platform asking who serves numbers: one at a time, or a batch in columns."""

    weight = 2
    wait_time = paced(between(0.1, 0.5))

    def random_number(self) -> str:
        """A number of any mobile range."""
        return str(self.market.random_number(random.choice(self.market.operators)))

    @task(3)
    def lookup_number(self) -> None:
        """Routing data of one number."""
        self.call(
            self.client.registry.LookupNumber,
            registry_pb2.LookupNumberRequest(number=self.random_number()),
            "LookupNumber",
        )

    @task(1)
    def lookup_numbers(self) -> None:
        """Routing data of a batch of numbers, answered in columns."""
        numbers = [self.random_number() for _ in range(LOOKUP_BATCH)]
        self.call(
            self.client.registry.LookupNumbers,
            registry_pb2.LookupNumbersRequest(numbers=numbers, columnar=True),
            "LookupNumbers",
        )
