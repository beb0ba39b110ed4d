"""What /metrics shows besides the measurements themselves: the build, and every series whose
label values are known in advance, created at zero when the process starts.

A labelled counter has no series until its first event, so a dashboard panel stays empty and
`rate()` undefined for the first minutes of a process (or for good, for a donor that never
answered). Operators, services, lookup sources and notification channels are known at start:
their series exist from the first scrape.

`_created` series are off: they doubled every counter and histogram, and Prometheus does not
need them (a reset shows as a decrease).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import Info, disable_created_metrics

from npc import __version__
from npc.api.interceptors import RPC_HANDLED, RPC_STARTED, UNIDENTIFIED
from npc.api.limits import THROTTLED
from npc.core.fanout import CATCHUP_READS, DELIVERED
from npc.core.flow import GrpcService
from npc.flows.portability import metrics as portability
from npc.flows.registry.cache import LOOKUPS
from npc.notifications.dispatcher import ABANDONED, FAILED, SENT

disable_created_metrics()  # type: ignore[no-untyped-call]

BUILD_INFO = Info("npc_build", "The running npc: its version and those of Python and gRPC.")

SERVICES = ("mobile", "fixed")
DONOR_MESSAGES = ("CP", "SP")  # what a donor owes an answer to within 5 minutes
LOOKUP_SOURCES = ("redis", "postgres")
CHANNELS = ("email", "sms")


def record_build() -> None:
    """Set npc_build_info (1, labelled with the versions)."""
    BUILD_INFO.info(
        {"version": __version__, "python": platform.python_version(), "grpc": grpc.__version__}
    )


def initialise_series(operators: Iterable[str], donors: Iterable[str]) -> None:
    """Create at zero the series of the registered `operators` (streams, rate limits) and of
    the `donors` that owe answers (the operators of the portability flow's country), and of the
    fixed label values: services, lookup sources, notification channels."""
    record_build()
    for operator in operators:
        DELIVERED.labels(operator)
        CATCHUP_READS.labels(operator)
        THROTTLED.labels(operator)
    for donor in donors:
        for message in DONOR_MESSAGES:
            portability.DONOR_ANSWER_SECONDS.labels(donor, message)
            portability.DONOR_SILENCES.labels(donor, message)
    for service in SERVICES:
        portability.PORTS_EXECUTED.labels(service)
        portability.NUMBERS_PORTED.labels(service)
        portability.REQUESTS_FILED.labels(service)
    for source in LOOKUP_SOURCES:
        LOOKUPS.labels(source)
    for channel in CHANNELS:
        SENT.labels(channel)
        FAILED.labels(channel)
        ABANDONED.labels(channel)


def initialise_rpc_series(
    services: Iterable[GrpcService], callers: Iterable[tuple[str, str]]
) -> None:
    """Create at zero the started and OK-handled RPC series of every method of `services` for
    each caller (operator id, country) whose country the service serves, and for the
    unidentified caller: an operator's error ratio is defined before its first call."""
    pool = descriptor_pool.Default()
    callers = list(callers)
    for service in services:
        descriptor = pool.FindServiceByName(service.full_name)
        operators = [o for o, country in callers if service.country in (None, country)]
        for method in descriptor.methods:
            for operator in (*operators, UNIDENTIFIED):
                RPC_STARTED.labels(descriptor.name, method.name, operator)
                RPC_HANDLED.labels(descriptor.name, method.name, operator, "OK")
