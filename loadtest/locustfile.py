"""Locust load test of a running `npc serve` over gRPC.

    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --host 127.0.0.1:50051 --csv loadtest/results/run

Users identify as the demo market's operators: by their tokens (`dev-token-<operator>`) on a
development server, or, with NPC_LOAD_PKI=DIR, by mutual TLS with the certificates in DIR
(`<operator>.crt`, `<operator>.key` and `ca.crt`, as `npc admin make-ca` / `issue-cert` write them).

* `RecipientUser` files port requests (SubmitPortRequest) for random mobile numbers of another
  operator and reads some back (GetPortRequest); operators and donors are drawn by the market
  shares of the traffic profile (NPC_LOAD_PROFILE, default peru-2024);
* `DonorUser`, one per operator (times --donor-copies), follows EventService.Subscribe for its
  operator in a greenlet and answers each request addressed to it (AnswerPortRequest): it accepts
  most and objects some, at the profile's objection rate. Each answer's request id is derived from
  the case, so a second donor answering the same case (distributed runs) gets the first answer
  back instead of a conflict. The stream's delivery latency (event occurred -> received) is
  reported as "Subscribe (delivery)";
* `LookupUser` asks routing data: one number (LookupNumber) or a batch (LookupNumbers, columnar).

gRPC runs on gevent with the synchronous stubs (grpc.aio has its own event loop, which Locust's
gevent workers would not drive); every call is reported as a Locust request of type "grpc".
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from gevent.queue import Empty, Queue
from locust import User, between, constant, events, task
from locust.env import Environment

# Before any gRPC object exists: gRPC's I/O must yield to gevent (Locust has patched the stdlib).
grpc_gevent.init_gevent()

from npc.admin import DEMO_RANGES  # noqa: E402
from npc.v1 import (  # noqa: E402
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    portability_pb2,
    portability_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from npc_clients.traffic import profile_named  # noqa: E402

PROFILE = profile_named(os.environ.get("NPC_LOAD_PROFILE", "peru-2024"))
SHARES = PROFILE.shares()
OPERATORS = list(SHARES)
MOBILE = {
    operator: (int(first), int(last))
    for operator, service, first, last in DEMO_RANGES
    if service == "mobile" and operator in SHARES
}
PKI = os.environ.get("NPC_LOAD_PKI", "")
LOOKUP_BATCH = 500
CALL_TIMEOUT = 10.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--donor-copies",
        type=int,
        default=1,
        help="donor users per operator; in distributed runs, the number of workers",
    )


@events.init.add_listener
def _donors(environment: Environment, **_: Any) -> None:
    copies = getattr(environment.parsed_options, "donor_copies", 1) or 1
    DonorUser.fixed_count = len(OPERATORS) * max(1, copies)


class GrpcClient:
    """A stub whose calls are timed and reported to Locust as requests of type "grpc"."""

    def __init__(
        self, environment: Environment, stub: Any, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._environment = environment
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self._stub, method)

        def timed(request: Any, name: str | None = None) -> Any:
            """Call `method`; its response, or None when it failed."""
            started = time.perf_counter()
            response, exception = None, None
            try:
                response = call(request, metadata=self._metadata, timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                exception = error
            report(
                self._environment,
                name or method,
                (time.perf_counter() - started) * 1000,
                response.ByteSize() if response is not None else 0,
                exception,
            )
            return response  # None when the call failed (reported as a failure)

        return timed


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
        exception = RuntimeError(f"{exception.code().name}: {exception.details()}")
    environment.events.request.fire(
        request_type="grpc",
        name=name,
        response_time=milliseconds,
        response_length=length,
        exception=exception,
        context={},
    )


class GrpcUser(User):
    """One operator's systems connected to the clearinghouse at --host (host:port)."""

    abstract = True
    operator = ""

    def choose_operator(self) -> str:
        """This user's operator: by market share."""
        return random.choices(OPERATORS, [SHARES[o] for o in OPERATORS])[0]

    def on_start(self) -> None:
        """Connect as the chosen operator."""
        self.operator = self.choose_operator()
        target = self.host or "127.0.0.1:50051"
        if PKI:
            self.metadata: tuple[tuple[str, str], ...] = ()
            pki = Path(PKI)
            self.channel = grpc.secure_channel(
                target,
                grpc.ssl_channel_credentials(
                    root_certificates=(pki / "ca.crt").read_bytes(),
                    private_key=(pki / f"{self.operator}.key").read_bytes(),
                    certificate_chain=(pki / f"{self.operator}.crt").read_bytes(),
                ),
            )
        else:
            self.metadata = (("authorization", f"Bearer dev-token-{self.operator}"),)
            self.channel = grpc.insecure_channel(target)
        env = self.environment
        self.portability = GrpcClient(
            env, portability_pb2_grpc.PortabilityServiceStub(self.channel), self.metadata
        )
        self.registry = GrpcClient(
            env, registry_pb2_grpc.RegistryServiceStub(self.channel), self.metadata
        )
        self.events = GrpcClient(env, events_pb2_grpc.EventServiceStub(self.channel), self.metadata)

    def on_stop(self) -> None:
        """Close the channel."""
        self.channel.close()


def random_number(operator: str) -> str:
    """A random mobile number of `operator`'s range."""
    first, last = MOBILE[operator]
    return str(random.randint(first, last))


class RecipientUser(GrpcUser):
    """Files port requests as recipient, for numbers of another operator (drawn by share)."""

    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        """Connect; no request filed yet."""
        super().on_start()
        self.filed: list[str] = []

    @task(4)
    def submit_port_request(self) -> None:
        """SP: one number, a DNI holder, received just now."""
        others = [o for o in OPERATORS if o != self.operator and o in MOBILE]
        donor = random.choices(others, [SHARES[o] for o in others])[0]
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
                    first=random_number(donor),
                    modality=random.choice(
                        (common_pb2.MODALITY_PREPAID, common_pb2.MODALITY_POSTPAID)
                    ),
                )
            ],
            form_number=f"F-LOAD-{random.randint(1, 10**7):07d}",
        )
        request.received_at.FromNanoseconds(int(received * 1e9))
        filed = self.portability.SubmitPortRequest(request)
        if filed is None:
            return
        self.filed.append(filed.id)
        del self.filed[:-100]

    @task(1)
    def get_port_request(self) -> None:
        """Read back one of its requests."""
        if self.filed:
            self.portability.GetPortRequest(
                portability_pb2.GetPortRequestRequest(port_request_id=random.choice(self.filed))
            )


_ids = itertools.count(1)
_donor_slots = itertools.count()


class DonorUser(GrpcUser):
    """One operator's donor desk: follows its event stream and answers what is addressed to it."""

    fixed_count = len(OPERATORS)  # one per operator (times --donor-copies; see _donors)
    wait_time = constant(0)

    def choose_operator(self) -> str:
        """Each donor user of this process takes the next operator, so all of them answer."""
        return OPERATORS[next(_donor_slots) % len(OPERATORS)]

    def on_start(self) -> None:
        """Start following the stream from its current head."""
        super().on_start()
        behaviour = PROFILE.operator(self.operator).behaviour
        self.objection_rate = behaviour.objection_rate
        self.pending: Queue[str] = Queue()
        self.stopping = False
        self.stream: Any = None
        head = self.events.GetStreamHead(events_pb2.GetStreamHeadRequest())
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
        stub = events_pb2_grpc.EventServiceStub(self.channel)
        while not self.stopping:
            self.stream = stub.Subscribe(
                events_pb2.SubscribeRequest(from_position=self.position, flows=["portability"]),
                metadata=self.metadata,
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
                if self.stopping or error.code() == grpc.StatusCode.CANCELLED:
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
        self.portability.AnswerPortRequest(request)


class LookupUser(GrpcUser):
    """A routing platform asking who serves numbers: one at a time, or a batch in columns."""

    weight = 2
    wait_time = between(0.1, 0.5)

    @task(3)
    def lookup_number(self) -> None:
        """Routing data of one number."""
        self.registry.LookupNumber(
            registry_pb2.LookupNumberRequest(number=random_number(random.choice(list(MOBILE))))
        )

    @task(1)
    def lookup_numbers(self) -> None:
        """Routing data of a batch of numbers, answered in columns."""
        numbers = [random_number(random.choice(list(MOBILE))) for _ in range(LOOKUP_BATCH)]
        self.registry.LookupNumbers(
            registry_pb2.LookupNumbersRequest(numbers=numbers, columnar=True)
        )
