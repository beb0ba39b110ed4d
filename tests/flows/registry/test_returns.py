"""Disconnection returns: a ported number whose service ended goes home, and everyone is told."""

from __future__ import annotations

import grpc
import pytest

from npc.v1 import events_pb2, registry_pb2
from tests.helpers import block, collect, head, port_end_to_end, port_request, rid, settle


def _report(numbers, request_id=None):
    return registry_pb2.ReportDisconnectionRequest(request_id=request_id or rid(), numbers=numbers)


async def _count(app, sql, *args):
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def test_disconnected_number_goes_home_and_every_operator_is_told(app, operators, clock):
    claro, movistar, entel = operators["claro"], operators["movistar"], operators["entel"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000001", "940000002")])
    await settle(app)
    start = head(app)

    reply = await claro.returns.ReportDisconnection(_report(["940000001"]), metadata=claro.metadata)
    assert [(r.number, r.serving_operator, r.ported) for r in reply.returned] == [
        ("940000001", "movistar", False)
    ]
    await settle(app)
    for client in (entel, movistar, claro):
        events = await collect(client, start, head(app))
        changes = [e for e in events if e.type == "registry.numbers_changed"]
        assert len(changes) == 1, client.operator
        changed = changes[0].numbers_changed
        assert changed.to_operator == "movistar"
        assert changed.reason == events_pb2.NUMBERS_CHANGE_REASON_DISCONNECTION
        assert [list(m.numbers) for m in changed.moves] == [["940000001"]]
    assert await _count(app, "SELECT count(*) FROM ported_numbers WHERE number = '940000001'") == 0
    assert (
        await _count(app, "SELECT serving_operator FROM ported_numbers WHERE number = '940000002'")
        == "claro"
    )
    assert (
        await _count(
            app,
            "SELECT count(*) FROM number_history WHERE number = '940000001' AND reason = 'disconnection'",
        )
        == 1
    )


async def test_disconnection_is_idempotent_by_request_id(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000010")])
    request = _report(["940000010"])
    first = await claro.returns.ReportDisconnection(request, metadata=claro.metadata)
    again = await claro.returns.ReportDisconnection(request, metadata=claro.metadata)
    assert again == first
    await settle(app)
    assert (
        await _count(
            app,
            "SELECT count(*) FROM events WHERE type = 'registry.numbers_changed' AND payload->>'reason' = 'disconnection'",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("caller", "numbers", "code"),
    [
        (
            "movistar",
            ["940000020"],
            grpc.StatusCode.FAILED_PRECONDITION,
        ),  # not ported: home already
        ("entel", ["940000021"], grpc.StatusCode.PERMISSION_DENIED),  # served by claro, not entel
        ("osiptel", ["940000021"], grpc.StatusCode.PERMISSION_DENIED),  # the regulator only reads
        ("claro", [], grpc.StatusCode.INVALID_ARGUMENT),
        ("claro", ["940000021", "940000021"], grpc.StatusCode.INVALID_ARGUMENT),
        ("claro", ["94000002x"], grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_wrong_disconnections_change_nothing(app, operators, clock, caller, numbers, code):
    await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000021")]
    )
    await settle(app)
    before = await _count(app, "SELECT count(*) FROM events")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        client = operators[caller]
        await client.returns.ReportDisconnection(_report(numbers), metadata=client.metadata)
    assert refused.value.code() == code
    await settle(app)
    assert await _count(app, "SELECT count(*) FROM events") == before
    assert (
        await _count(app, "SELECT serving_operator FROM ported_numbers WHERE number = '940000021'")
        == "claro"
    )


async def test_a_number_with_a_live_port_request_cannot_be_disconnected(app, operators, clock):
    claro, movistar, entel = operators["claro"], operators["movistar"], operators["entel"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000030")])
    await entel.call(
        "SubmitPortRequest", port_request(clock, donor="claro", numbers=[block("940000030")])
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claro.returns.ReportDisconnection(_report(["940000030"]), metadata=claro.metadata)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "live port request" in refused.value.details()
