"""Portability SLA metrics."""

from prometheus_client import Counter, Histogram

DONOR_ANSWER_SECONDS = Histogram(
    "npc_donor_answer_seconds",
    "Time the donor took to answer, by donor operator and message (CP: prior consultation, SP: request).",
    ["operator", "message"],
    # Dense around the 5-minute limit (art. 20 and 22) so the SLO's le="300" bucket is exact.
    buckets=(1, 5, 15, 30, 60, 120, 180, 240, 270, 290, 300, 310, 360, 420, 600),
)
DONOR_SILENCES = Counter(
    "npc_donor_silences_total",
    "Donor answers that never came: the 5-minute window closed (infractions 18 and 21), by donor"
    " and message (CP, SP). With npc_donor_answer_seconds_count it is every message owed.",
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
    """The donor let the 5 minutes for `message` pass without answering."""
    DONOR_SILENCES.labels(operator, message).inc()
    DONOR_ANSWER_SECONDS.labels(operator, message)
