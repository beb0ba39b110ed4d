"""Portability SLA metrics."""

from prometheus_client import Counter, Histogram

DONOR_ANSWER_SECONDS = Histogram(
    "npc_donor_answer_seconds",
    "Time the donor took to answer, by donor operator and message (CP: prior consultation, SP: request).",
    ["operator", "message"],
    buckets=(1, 5, 15, 30, 60, 120, 180, 240, 270, 290, 300, 330, 420, 600),
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
