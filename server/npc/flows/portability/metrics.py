"""Portability SLA metrics."""

from prometheus_client import Counter, Histogram

from npc.flows.portability.rules import DONOR_ANSWER_MINUTES, DONOR_ANSWER_TERM

# The donor's term in seconds: a bucket bound of its own, so the SLO's le="300" bucket is exact.
_TERM = int(DONOR_ANSWER_TERM.total_seconds())

DONOR_ANSWER_SECONDS = Histogram(
    "npc_donor_answer_seconds",
    "Time the donor took to answer, by donor operator and message (CP: prior consultation, SP: request).",
    ["operator", "message"],
    # Dense around the donor's term (art. 20 and 22): 240 270 290 300 310 360 420 600.
    buckets=(
        *(1, 5, 15, 30, 60, 120, 180),
        *(_TERM + d for d in (-60, -30, -10, 0, 10, 60, 120)),
        2 * _TERM,
    ),
)
DONOR_SILENCES = Counter(
    "npc_donor_silences_total",
    f"Donor answers that never came: the {DONOR_ANSWER_MINUTES}-minute window closed (infractions"
    " 18 and 21), by donor and message (CP, SP). With npc_donor_answer_seconds_count it is every"
    " message owed.",
    ["operator", "message"],
)
DEADLINE_MISSES = Counter(
    "npc_portability_deadline_misses_total",
    "Portability deadlines missed, by operator and rule.",
    ["operator", "rule"],
)
PORTS_EXECUTED = Counter("npc_ports_executed_total", "Port requests executed.", ["service"])
NUMBERS_PORTED = Counter(
    "npc_numbers_ported_total", "Numbers moved by executed ports.", ["service"]
)
REQUESTS_FILED = Counter("npc_port_requests_filed_total", "Port requests registered.", ["service"])
REQUEST_OUTCOMES = Counter(
    "npc_port_request_outcomes_total", "Port requests by final or branching outcome.", ["outcome"]
)


def donor_answered(operator: str, message: str, seconds: float) -> None:
    """The donor answered `message` after `seconds`."""
    DONOR_ANSWER_SECONDS.labels(operator, message).observe(seconds)
    # Both series exist for every donor seen, so the SLO's ratio (answers in time over answers
    # plus silences) is defined for a donor that only answered or only kept silent.
    DONOR_SILENCES.labels(operator, message)


def donor_silent(operator: str, message: str) -> None:
    """The donor let its term for `message` pass without answering."""
    DONOR_SILENCES.labels(operator, message).inc()
    DONOR_ANSWER_SECONDS.labels(operator, message)
