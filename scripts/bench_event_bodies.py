"""Build cost of one stream message's body: the JSON payload as a google.protobuf.Struct (what
Event carried before typed bodies) against the typed body, for an SPR port request event.

    PYTHONPATH=server python scripts/bench_event_bodies.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from npc.api.event_bodies import event_message
from npc.core.events import LoggedEvent

now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
payload = {
    "port_request_id": "SP0000000001",
    "recipient": "claro",
    "donor": "movistar",
    "service": "mobile",
    "state": "admissible",
    "numbers": [{"first": "940000001", "last": "940000001", "modality": "prepaid"}],
    "number_count": 1,
    "special_client": False,
    "submitted_at": now.isoformat(),
    "donor_deadline": now.isoformat(),
    "admissible_at": now.isoformat(),
    "schedule_deadline": now.isoformat(),
    "execution_limit": now.isoformat(),
    "objection": None,
    "rejection_reason": None,
    "scheduled_at": None,
    "executed_at": None,
}
event = LoggedEvent(
    1,
    now,
    "portability",
    "portability.request.admissible",
    "SPR",
    "SP0000000001",
    "clearinghouse",
    ("claro", "movistar"),
    False,
    payload,
    bytes(32),
)


def struct_message(event: LoggedEvent) -> tuple[timestamp_pb2.Timestamp, struct_pb2.Struct]:
    """What the servicer built before: the instant and the payload as a Struct."""
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(event.occurred_at)
    body = struct_pb2.Struct()
    body.update(event.payload)
    return occurred, body


for name, build in (("struct", struct_message), ("typed", event_message)):
    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        m = build(event)
    us = (time.perf_counter() - t) / n * 1e6
    built: Any = m
    body = built[1] if name == "struct" else built.port_request
    print(f"{name}: {us:.1f} us per message, body {body.ByteSize()} bytes")
