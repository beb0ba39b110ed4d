"""The central registry: lookups that follow executions in every server process, and snapshots
that, followed by the stream, give an exact copy."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from npc.core.numbers import move_numbers
from npc.v1 import events_pb2, registry_pb2
from npc_clients import OperatorClient
from tests.flows.registry.test_consent_returns import NOTIFIED, WINDOW, _answer, _ask
from tests.helpers import (
    advance_to,
    block,
    field_violations,
    port_end_to_end,
    rid,
    server_process,
    settle,
    ts,
)


async def _lookup(client, numbers):
    reply = await client.registry.LookupNumbers(
        registry_pb2.LookupNumbersRequest(numbers=numbers), metadata=client.metadata
    )
    return {r.number: r for r in reply.results}


@pytest.mark.slow
async def test_lookups_follow_a_port_in_two_server_processes(
    app, operators, clock, settings, tmp_path
):
    async with (
        server_process(
            settings.database_url,
            settings.redis_url,
            tmp_path / "second.log",
            settings.redis_prefix,
        ) as target,
        OperatorClient(target, "dev-token-entel") as entel_there,
    ):
        before = await _lookup(entel_there, ["940000001", "940000002", "12000005", "99999999"])
        assert before["940000001"].serving_operator == "movistar"
        assert before["940000001"].routing_code == "22"
        assert not before["940000001"].ported
        assert before["12000005"].service == 2  # SERVICE_TYPE_FIXED
        assert not before["99999999"].in_plan
        odd = await _lookup(entel_there, ["9400000011", "120000050"])
        assert not odd["9400000011"].in_plan  # wrong shapes are simply not in the plan
        assert not odd["120000050"].in_plan

        await port_end_to_end(
            app, clock, operators["claro"], operators["movistar"], [block("940000001")]
        )
        for client in (operators["bitel"], entel_there):
            after = await _lookup(client, ["940000001", "940000002"])
            assert after["940000001"].serving_operator == "claro"
            assert after["940000001"].routing_code == "21"
            assert after["940000001"].ported
            assert after["940000001"].range_holder == "movistar"
            assert after["940000002"].serving_operator == "movistar"

        # Ported back home: no longer ported, served by its range holder again.
        await port_end_to_end(
            app, clock, operators["movistar"], operators["claro"], [block("940000001")]
        )
        single = await entel_there.registry.LookupNumber(
            registry_pb2.LookupNumberRequest(number="940000001"), metadata=entel_there.metadata
        )
        assert (single.serving_operator, single.ported) == ("movistar", False)


@pytest.mark.parametrize(
    ("numbers", "field"),
    [
        ([], "numbers"),
        (["94000000a"], "numbers[0]"),
        (["940000001", "+940000001"], "numbers[1]"),
        (["940000001\n"], "numbers[0]"),
        (["012000005"], "numbers[0]"),
        (["940000001,940000002"], "numbers[0]"),  # two numbers in one entry
        (["940000001", ""], "numbers[1]"),
        (["９４００００００１"], "numbers[0]"),  # full-width digits are not ASCII digits
        (["9" * 16], "numbers[0]"),
        (["9" * 8] * 10_001, "numbers"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_malformed_lookups_are_refused(module_operators, numbers, field):
    client = module_operators["entel"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.registry.LookupNumbers(
            registry_pb2.LookupNumbersRequest(numbers=numbers), metadata=client.metadata
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)


async def test_lookups_need_an_identified_caller(app):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        from npc.v1 import registry_pb2_grpc

        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.LookupNumber(registry_pb2.LookupNumberRequest(number="940000001"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _apply(copy: dict[str, str], event: events_pb2.Event) -> None:
    """What a local copy does with a registry change: who serves each number now."""
    changed = event.numbers_changed
    for move in changed.moves:
        for number in move.numbers:
            copy[number] = changed.to_operator


async def test_snapshot_plus_stream_is_exact_while_ports_execute(app, operators, clock):
    claro, movistar, bitel = operators["claro"], operators["movistar"], operators["bitel"]
    # Some ported numbers before the snapshot.
    await port_end_to_end(app, clock, claro, movistar, [block("940000100", "940000119")])
    await settle(app)

    async def download() -> tuple[int, dict[str, str], dict[str, str]]:
        chunks = bitel.registry.StreamSnapshot(
            registry_pb2.StreamSnapshotRequest(chunk_size=7), metadata=bitel.metadata
        )
        ported: dict[str, str] = {}
        holders: dict[str, str] = {}
        position = -1
        async for chunk in chunks:
            position = chunk.position
            for plan in chunk.ranges:
                holders[plan.first] = plan.operator
            for number in chunk.ported:
                assert number.number not in ported
                ported[number.number] = number.serving_operator
            await asyncio.sleep(0.01)  # a slow reader: ports go on meanwhile
        return position, ported, holders

    async def more_ports() -> None:
        await port_end_to_end(app, clock, bitel, movistar, [block("940000200", "940000209")])
        await port_end_to_end(app, clock, movistar, claro, [block("940000100", "940000104")])

    (position, copy, holders), _ = await asyncio.gather(download(), more_ports())
    assert holders["940000000"] == "movistar"
    await settle(app)
    async for event in _follow(bitel, position, await _last_for(app, "bitel")):
        if event.type == "registry.numbers_changed":
            _apply(copy, event)
    # Numbers back at their range holder are not ported.
    copy = {
        n: op
        for n, op in copy.items()
        if not ("940000000" <= n <= "949999999" and op == "movistar")
    }
    async with app.core.db.pool.acquire() as conn:
        truth = {
            r["number"]: r["serving_operator"]
            for r in await conn.fetch("SELECT * FROM ported_numbers")
        }
    assert copy == truth
    assert len(truth) == 15 + 10


async def _follow(client, after: int, until: int):
    call = client.events.Subscribe(
        events_pb2.SubscribeRequest(from_position=after),
        metadata=client.metadata,
    )
    last = after
    try:
        async with asyncio.timeout(10):
            async for event in call:
                assert event.position > last
                last = event.position
                yield event
                if event.position >= until:
                    return
    except TimeoutError:
        return
    finally:
        call.cancel()


async def test_snapshot_excludes_committed_changes_that_have_no_position_yet(app, operators, clock):
    bitel = operators["bitel"]
    await app.core.stop()  # no background sequencing: the change below stays without a position
    async with app.core.db.transaction("test", clock.now()) as txn:
        moved = await move_numbers(
            txn, ["940000300", "940000301"], "entel", reason="port", case_id="SP9"
        )
    assert moved == 2
    chunks = [
        c
        async for c in bitel.registry.StreamSnapshot(
            registry_pb2.StreamSnapshotRequest(), metadata=bitel.metadata
        )
    ]
    assert chunks[-1].last
    position = chunks[0].position
    in_snapshot = {n.number for c in chunks for n in c.ported}
    assert "940000300" not in in_snapshot  # still movistar's at `position`
    await settle(app)
    events = [e async for e in _follow(bitel, position, await _last_for(app, "bitel"))]
    changes = [e for e in events if e.type == "registry.numbers_changed"]
    assert len(changes) == 1
    assert changes[0].position > position
    copy: dict[str, str] = {}
    _apply(copy, changes[0])
    assert copy == {"940000300": "entel", "940000301": "entel"}


async def _last_for(app, operator: str) -> int:
    """The last position of the log that `operator`'s stream delivers."""
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT max(position) FROM events WHERE broadcast OR $1 = ANY(audience)", operator
        )


@pytest.mark.slow
async def test_lookups_follow_a_disconnection_and_a_return_in_two_server_processes(
    app, operators, clock, settings, tmp_path
):
    claro, movistar = operators["claro"], operators["movistar"]
    await port_end_to_end(app, clock, claro, movistar, [block("940000001")])
    filed = await port_end_to_end(app, clock, claro, movistar, [block("940000002")])
    async with (
        server_process(
            settings.database_url,
            settings.redis_url,
            tmp_path / "second.log",
            settings.redis_prefix,
        ) as target,
        OperatorClient(target, "dev-token-entel") as entel_there,
    ):
        before = await _lookup(entel_there, ["940000001", "940000002"])
        assert [before[n].serving_operator for n in ("940000001", "940000002")] == ["claro"] * 2

        await claro.returns.ReportDisconnection(
            registry_pb2.ReportDisconnectionRequest(request_id=rid(), numbers=["940000001"]),
            metadata=claro.metadata,
        )
        await settle(app)
        after = await _lookup(entel_there, ["940000001", "940000002"])
        assert (after["940000001"].serving_operator, after["940000001"].ported) == (
            "movistar",
            False,
        )
        assert (after["940000002"].serving_operator, after["940000002"].ported) == ("claro", True)

        # A lack-of-consent return of the other number, executed in its change window.
        await advance_to(app, clock, NOTIFIED)
        asked = await _ask(movistar, filed.id)
        await _answer(claro, asked.id, accept=True, disable_at=ts(WINDOW + timedelta(hours=1)))
        await advance_to(app, clock, WINDOW + timedelta(hours=1))
        returned = await _lookup(entel_there, ["940000001", "940000002"])
        assert [(returned[n].serving_operator, returned[n].ported) for n in returned] == [
            ("movistar", False)
        ] * 2
