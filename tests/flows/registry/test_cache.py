"""The registry's hot data: answers from Redis equal the truth in PostgreSQL, follow every change,
survive Redis going away, and repair themselves."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from npc.admin import add_range
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.events import LoggedEvent
from npc.core.numbers import NUMBERS_CHANGED, move_numbers
from npc.embedded import EmbeddedRedis
from npc.flows.registry.cache import LOOKUPS, RegistryCache
from npc.flows.registry.convert import routing_message
from npc.flows.registry.importer import import_ported
from npc.flows.registry.model import Routing
from npc.v1 import registry_pb2
from tests.helpers import block, port_end_to_end, running, settle

NUMBERS = ["940000001", "940000002", "910000005", "12000005", "13000009", "99999999", "5"]


def _cache(app: Clearinghouse) -> RegistryCache:
    assert app.core is not None
    cache = app.core.flows["registry"].cache  # type: ignore[attr-defined]
    assert isinstance(cache, RegistryCache)
    return cache


def _served(source: str) -> float:
    return LOOKUPS.labels(source)._value.get()


async def _ready(app: Clearinghouse) -> None:
    """Wait (bounded) until lookups come from Redis."""
    cache = _cache(app)
    for _ in range(200):
        if await cache.lookup(["940000001"]) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the registry cache never became ready")


async def _truth(app: Clearinghouse, numbers: list[str]) -> list[registry_pb2.NumberRouting]:
    assert app.core is not None
    handler = app.core.flows["registry"].handler  # type: ignore[attr-defined]
    async with app.core.db.pool.acquire() as conn:
        answers: list[Routing] = await handler.lookup(numbers, conn=conn)
    return [routing_message(answer) for answer in answers]


async def _move(app: Clearinghouse, numbers: list[str], to: str, case: str) -> None:
    assert app.core is not None
    async with app.core.db.transaction("test.move", app.clock.now()) as txn:
        await move_numbers(txn, numbers, to, reason="test", case_id=case)
    await settle(app)


async def test_answers_from_redis_equal_postgresql_after_ports_and_returns(app, operators, clock):
    await _move(app, ["940000001", "12000005"], "claro", "c1")
    await _move(app, ["910000005"], "entel", "c2")
    await _move(app, ["12000005"], "movistar", "c3")  # home again
    await _ready(app)
    before = _served("redis")
    client = operators["bitel"]
    reply = await client.registry.LookupNumbers(
        registry_pb2.LookupNumbersRequest(numbers=NUMBERS), metadata=client.metadata
    )
    assert _served("redis") - before == len(NUMBERS)
    assert list(reply.results) == await _truth(app, NUMBERS)
    answers = {r.number: r for r in reply.results}
    assert (answers["940000001"].serving_operator, answers["940000001"].ported) == ("claro", True)
    assert answers["940000001"].ported_since.ToDatetime().year == 2026
    assert (answers["12000005"].serving_operator, answers["12000005"].ported) == ("movistar", False)
    assert not answers["5"].in_plan


async def test_columnar_answers_carry_the_same_data_as_rows(app, operators):
    await _move(app, ["940000001"], "claro", "c1")
    client = operators["entel"]
    for phase in ("postgres", "redis"):
        if phase == "redis":
            await _ready(app)
        else:
            _cache(app)._redis_down_until = float("inf")  # force the PostgreSQL path
        rows = await client.registry.LookupNumbers(
            registry_pb2.LookupNumbersRequest(numbers=NUMBERS), metadata=client.metadata
        )
        columnar = await client.registry.LookupNumbers(
            registry_pb2.LookupNumbersRequest(numbers=NUMBERS, columnar=True),
            metadata=client.metadata,
        )
        assert not columnar.results
        c = columnar.columns
        for i, row in enumerate(rows.results):
            if not row.in_plan:
                assert (c.serving[i], c.range_holder[i]) == (0, 0), phase
                continue
            serving = c.operators[c.serving[i] - 1]
            assert serving == row.serving_operator, phase
            assert c.routing_codes[c.serving[i] - 1] == row.routing_code, phase
            assert c.operators[c.range_holder[i] - 1] == row.range_holder, phase
            assert (c.serving[i] != c.range_holder[i]) == row.ported, phase
            assert c.service[i] == row.service, phase
            expected_ms = row.ported_since.ToMilliseconds() if row.ported else 0
            assert c.ported_since_ms[i] == expected_ms, phase
        _cache(app)._redis_down_until = 0.0


async def test_a_new_range_is_answered_once_the_plan_change_is_in_the_log(app, clock):
    await _ready(app)
    cache = _cache(app)
    assert (await cache.lookup(["970000001"]))[0].in_plan is False  # type: ignore[index]
    await add_range(app.core.db, "entel", "mobile", "970000000", "970999999", now=clock.now())
    await settle(app)
    answer = await cache.lookup(["970000001"])
    assert answer is not None and answer[0].serving_operator == "entel"


async def test_a_batch_out_of_order_is_refused_and_repaired_from_the_log(app, clock):
    await _ready(app)
    cache = _cache(app)
    head = app.core.hub.head

    def change(position: int, number: str, to: str) -> LoggedEvent:
        return LoggedEvent(
            position=position,
            occurred_at=clock.now(),
            flow="registry",
            type=NUMBERS_CHANGED,
            code=None,
            case_id="x",
            sender="clearinghouse",
            audience=(),
            broadcast=True,
            payload={
                "to_operator": to,
                "changed_at": clock.now().isoformat(),
                "moves": [{"from_operator": "movistar", "numbers": [number]}],
            },
        )

    cache.request_repair = lambda: None  # type: ignore[method-assign]  # observe the refusal
    # A batch that starts after a position the keys have not reached is refused...
    await cache.on_events([change(head + 2, "940000003", "bitel")])
    meta = await app.core.redis.hmget(cache.meta_key, ["pos"])
    assert int(meta[0]) == head
    assert await app.core.redis.get(cache.number_prefix + "940000003") is None
    # ...and one already applied changes nothing (another process got there first).
    await cache.on_events([change(head, "940000004", "bitel")])
    assert await app.core.redis.get(cache.number_prefix + "940000004") is None


@pytest.mark.slow
async def test_lookups_survive_redis_going_away_and_the_cache_repairs_itself(
    settings: Settings, clock: FakeClock, own_redis: EmbeddedRedis
):
    redis = own_redis
    async with running(replace(settings, redis_url=redis.url), clock) as house:
        await _move(house, ["940000001"], "claro", "c1")
        await _ready(house)

        redis.kill()
        await _move(house, ["940000001"], "entel", "c2")  # applied while Redis is away
        await _move(house, ["940000002"], "bitel", "c3")
        before = _served("postgres")
        answers = await _cache_or_truth(house, ["940000001", "940000002"])
        assert [a.serving_operator for a in answers] == ["entel", "bitel"]
        assert _served("postgres") - before == 2

        redis.start()  # empty: the cache loads everything again from a snapshot
        _cache(house)._redis_down_until = 0.0
        await _ready(house)
        answers = await _cache_or_truth(house, ["940000001", "940000002"])
        assert [a.serving_operator for a in answers] == ["entel", "bitel"]


async def _cache_or_truth(app: Clearinghouse, numbers: list[str]) -> list[Routing]:
    assert app.core is not None
    handler = app.core.flows["registry"].handler  # type: ignore[attr-defined]
    answers: list[Routing] = await handler.lookup(numbers)
    return answers


async def test_changes_missed_while_redis_was_away_are_replayed(app, clock):
    await _ready(app)
    cache = _cache(app)
    cache._redis_down_until = float("inf")  # this process cannot write for a while
    cache.request_repair = lambda: None  # type: ignore[method-assign]
    await _move(app, ["940000005"], "claro", "c1")
    await _move(app, ["940000006"], "entel", "c2")
    assert await cache.lookup(["940000005"]) is None  # behind the head: PostgreSQL answers
    cache._redis_down_until = 0.0
    assert await cache.repair_once()
    answers = await cache.lookup(["940000005", "940000006"])
    assert answers is not None
    assert [a.serving_operator for a in answers] == ["claro", "entel"]


async def test_a_bulk_import_of_ported_numbers_reloads_the_cache(app, clock, tmp_path):
    await _ready(app)
    path = tmp_path / "ported.csv"
    path.write_text(
        "number,serving_operator,ported_at\n"
        "940000007,bitel,2025-01-02T03:00:00Z\n"
        "960000008,claro,2025-01-02T03:00:00Z\n",
        encoding="utf-8",
    )
    await import_ported(app.core.db, path, now=clock.now())
    await settle(app)
    await _ready(app)
    answers = await _cache(app).lookup(["940000007", "960000008", "940000009"])
    assert answers is not None
    assert [a.serving_operator for a in answers] == ["bitel", "claro", "movistar"]


async def test_two_processes_share_the_keys_and_each_answers_current_data(
    app, operators, clock, settings
):
    second = Clearinghouse(settings, clock)
    await second.start(serve_http=False)
    try:
        await _ready(app)
        await _ready(second)
        await port_end_to_end(
            app, clock, operators["claro"], operators["movistar"], [block("940000010")]
        )
        await settle(app)
        # The second process's hub may not have seen the change yet: the keys it reads already have.
        answer = await _cache(second).lookup(["940000010"])
        if answer is None:  # its own head moved past the keys: it answers from PostgreSQL
            answer_rows = await _cache_or_truth(second, ["940000010"])
            assert answer_rows[0].serving_operator == "claro"
        else:
            assert answer[0].serving_operator == "claro"
    finally:
        await second.stop()
