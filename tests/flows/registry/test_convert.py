"""The registry's answers built in place equal the messages built field by field (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from npc.core.instants import to_timestamp
from npc.flows.registry import convert, model
from npc.flows.registry.rules import Service
from npc.v1 import common_pb2
from npc.v1 import registry_pb2 as pb

AT = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


CASES = [
    (model.Routing("5", False), pb.NumberRouting(number="5", in_plan=False)),
    (  # from PostgreSQL: the exact instant
        model.Routing(
            "940000001", True, "claro", "21", True, AT_MS, "movistar", Service.MOBILE, AT
        ),
        pb.NumberRouting(
            number="940000001",
            in_plan=True,
            serving_operator="claro",
            routing_code="21",
            ported=True,
            ported_since=to_timestamp(AT),
            range_holder="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
        ),
    ),
    (  # from the hot data: milliseconds
        model.Routing("940000002", True, "claro", "21", True, AT_MS, "movistar", Service.MOBILE),
        pb.NumberRouting(
            number="940000002",
            in_plan=True,
            serving_operator="claro",
            routing_code="21",
            ported=True,
            ported_since=to_timestamp(datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
            range_holder="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
        ),
    ),
    (
        model.Routing("12000005", True, "movistar", "22", False, 0, "movistar", Service.FIXED),
        pb.NumberRouting(
            number="12000005",
            in_plan=True,
            serving_operator="movistar",
            routing_code="22",
            range_holder="movistar",
            service=common_pb2.SERVICE_TYPE_FIXED,
        ),
    ),
]


def test_routing_answers_render_every_field_once() -> None:
    answers = [answer for answer, _ in CASES]
    expected = [message for _, message in CASES]
    for answer, message in CASES:
        assert convert.routing_message(answer).SerializeToString() == message.SerializeToString()
    rows = convert.lookup_response(model.Lookup(rows=answers))
    assert (
        rows.SerializeToString() == pb.LookupNumbersResponse(results=expected).SerializeToString()
    )
    returned = convert.disconnection_response(answers)
    assert returned == pb.ReportDisconnectionResponse(returned=expected)


def test_columns_map_service_slots_to_wire_numbers() -> None:
    columns = model.RoutingColumns(
        ["claro"], ["21"], [1, 0, 1], [1, 0, 1], [AT_MS, 0, 0], [1, 0, 2]
    )
    message = convert.lookup_response(model.Lookup(columns=columns)).columns
    assert list(message.service) == [
        common_pb2.SERVICE_TYPE_MOBILE,
        common_pb2.SERVICE_TYPE_UNSPECIFIED,
        common_pb2.SERVICE_TYPE_FIXED,
    ]
    assert (list(message.serving), list(message.ported_since_ms)) == ([1, 0, 1], [AT_MS, 0, 0])


def test_a_snapshot_chunk_renders_its_plan_and_its_ported_numbers() -> None:
    chunk = model.SnapshotChunk(
        7,
        [model.PlanRange(1200000, 1299999, "movistar", "22", Service.FIXED)],
        [("940000001", "claro", "21", AT), ("940000002", "entel", "23", None)],
        last=True,
    )
    expected = pb.SnapshotChunk(
        position=7,
        ranges=[
            pb.PlanRange(
                first="01200000",
                last="01299999",
                operator="movistar",
                routing_code="22",
                service=common_pb2.SERVICE_TYPE_FIXED,
            )
        ],
        ported=[
            pb.PortedNumber(
                number="940000001",
                serving_operator="claro",
                routing_code="21",
                ported_since=to_timestamp(AT),
            ),
            pb.PortedNumber(number="940000002", serving_operator="entel", routing_code="23"),
        ],
        last=True,
    )
    assert convert.snapshot_chunk(chunk).SerializeToString() == expected.SerializeToString()
