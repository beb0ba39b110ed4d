"""EventService: every operator's stream is exactly its slice of the log, in order and gap-free,
resumable from any position, and served from PostgreSQL when a subscriber is behind the in-memory
window."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
from datetime import timedelta
from typing import Any

import grpc
import pytest

from npc.v1 import events_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients.chain import follows
from tests.helpers import (
    advance,
    block,
    collect,
    field_violations,
    head,
    port_request,
    rid,
    settle,
    ts,
)

OPERATORS = ("claro", "movistar", "entel", "bitel")


class Stream:
    """An open Subscribe call, read in the background into a queue."""

    def __init__(self, client, from_position: int, flows: tuple[str, ...] = ()) -> None:
        self.call = client.events.Subscribe(
            events_pb2.SubscribeRequest(from_position=from_position, flows=list(flows)),
            metadata=client.metadata,
        )
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.call:
                await self.queue.put(event)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                await self.queue.put(error)

    async def _next(self, timeout: float) -> events_pb2.Event:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(item, Exception):
            raise item
        return item

    async def until(self, position: int, timeout: float = 10.0) -> list[events_pb2.Event]:
        """Events up to and including `position`."""
        got: list[events_pb2.Event] = []
        while not got or got[-1].position < position:
            got.append(await self._next(timeout))
        return got

    async def quiet(self, seconds: float = 0.3) -> list[events_pb2.Event]:
        """Whatever arrives within `seconds` (nothing, when the stream is caught up)."""
        got: list[events_pb2.Event] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self._next(seconds))
        return got

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@contextlib.asynccontextmanager
async def stream(client, from_position: int = 0, flows: tuple[str, ...] = ()):
    opened = Stream(client, from_position, flows)
    try:
        yield opened
    finally:
        await opened.close()


async def log_for(app, operator: str | None, after: int = 0, flows: tuple[str, ...] = ()):
    """The log as `operator` must see it (everything for None), straight from PostgreSQL."""
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetch(
            "SELECT position, type, code, case_id, sender, broadcast, audience FROM events"
            " WHERE position > $1 AND ($2::text IS NULL OR broadcast OR $2 = ANY(audience))"
            " AND (cardinality($3::text[]) = 0 OR flow = ANY($3))"
            " ORDER BY position",
            after,
            operator,
            list(flows),
        )


def shape(event: Any) -> tuple[Any, ...]:
    """The comparable envelope of an API event or an events row."""
    if isinstance(event, events_pb2.Event):
        return (
            event.position,
            event.type,
            event.code or None,
            event.case_id or None,
            event.sender,
            event.broadcast,
            tuple(event.audience),
        )
    return (
        event["position"],
        event["type"],
        event["code"],
        event["case_id"],
        event["sender"],
        event["broadcast"],
        tuple(event["audience"] or ()),
    )


async def read_all(app, client, operator: str | None, after: int = 0, flows=()):
    """Open a stream from `after`, read what the log says it must deliver, check nothing else
    comes, and return (delivered, expected)."""
    expected = await log_for(app, operator, after, flows)
    async with stream(client, after, flows) as s:
        got = await s.until(expected[-1]["position"]) if expected else []
        got += await s.quiet()
    return got, expected


async def traffic(app, operators, clock, n: int) -> None:
    """A little of everything: an accepted and scheduled request (SPR, PEP broadcast), an
    objected one (RABDCP), a prior consultation (ANCP, ECPC). `n` keeps the numbers apart."""
    claro, movistar, entel, bitel = (operators[o] for o in OPERATORS)
    accepted = await claro.call(
        "SubmitPortRequest", port_request(clock, numbers=[block(f"9400001{n:02d}")])
    )
    objected = await entel.call(
        "SubmitPortRequest",
        port_request(clock, donor="bitel", numbers=[block(f"9800001{n:02d}")]),
    )
    await bitel.call(
        "SubmitPriorConsultation",
        pb.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="claro",
            service=accepted.service,
            document=accepted.subscriber.document,
            numbers=[block(f"9100001{n:02d}")],
        ),
    )
    admissible = await movistar.call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=accepted.id, accept=True),
    )
    await bitel.call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(
            request_id=rid(),
            port_request_id=objected.id,
            accept=False,
            objection=pb.Objection(reason=pb.OBJECTION_REASON_WRONG_MODALITY),
        ),
    )
    window = app.portability.handler.timeline.window_containing(
        admissible.execution_limit.ToDatetime(tzinfo=clock.now().tzinfo) - timedelta(seconds=1)
    )
    await claro.call(
        "SchedulePort",
        pb.SchedulePortRequest(
            request_id=rid(), port_request_id=accepted.id, scheduled_at=ts(window[0])
        ),
    )
    await settle(app)


async def test_each_operator_receives_exactly_its_slice_of_the_log(app, operators, clock):
    await traffic(app, operators, clock, 1)
    await traffic(app, operators, clock, 2)

    delivered_anywhere: set[int] = set()
    for operator in OPERATORS:
        got, expected = await read_all(app, operators[operator], operator)
        assert expected, operator
        assert [shape(e) for e in got] == [shape(r) for r in expected], operator
        positions = [e.position for e in got]
        assert positions == sorted(set(positions))
        assert all(e.broadcast or operator in e.audience for e in got)
        # The market's seeding is one registry.imported broadcast; everything else is traffic.
        assert [e.type for e in got if e.flow != "portability"] == ["registry.imported"]
        assert all(e.HasField("occurred_at") for e in got)
        delivered_anywhere.update(positions)

    # Each broadcast reached everyone; every addressed event reached its audience.
    everything = await log_for(app, None)
    for row in everything:
        if row["broadcast"] or row["audience"]:
            assert row["position"] in delivered_anywhere
    codes = {row["code"] for row in everything}
    assert {"ANS", "ESC", "SPR", "RABDCP", "ANCP", "ECPC", "PEP"} <= codes


async def test_stream_bodies_match_the_log(app, operators, clock):
    await traffic(app, operators, clock, 1)
    got, _ = await read_all(app, operators["claro"], "claro")
    async with app.core.db.pool.acquire() as conn:
        payloads = {
            r["position"]: r["payload"]
            for r in await conn.fetch("SELECT position, payload FROM events")
        }
    assert [e.type for e in got if e.flow != "portability"] == ["registry.imported"]
    for event in got:
        stored = payloads[event.position]
        assert not event.canonical_content  # only on request
        if event.flow != "portability":
            assert event.registry_imported.kind == events_pb2.REGISTRY_IMPORT_KIND_SEED
            assert event.registry_imported.rows == stored["rows"]
            continue
        if event.WhichOneof("body") == "port_request":
            case = event.port_request.port_request
            states: Any = pb.PortRequestState
        else:
            case = event.prior_consultation
            states = pb.PriorConsultationState
        assert event.case_id == case.id
        assert states.Name(case.state).lower().endswith(stored["state"])
        assert case.number_count == stored["number_count"]
        assert [b.first for b in case.numbers] == [b["first"] for b in stored["numbers"]]


async def test_canonical_content_is_what_the_hash_covers(app, operators, clock):
    await traffic(app, operators, clock, 1)
    async with app.core.db.pool.acquire() as conn:
        rows = {
            r["position"]: r for r in await conn.fetch("SELECT position, payload, hash FROM events")
        }
    got: list[events_pb2.Event] = []
    # The SDK's subscribe asks for the content as the regulator's verifier would.
    events = operators["osiptel"].subscribe(0, with_canonical_content=True)
    async for event in events:
        got.append(event)
        if event.position >= head(app):
            break
    await events.aclose()
    assert [e.position for e in got] == list(range(1, head(app) + 1))
    previous = bytes(32)
    for event in got:
        content = event.canonical_content
        assert hashlib.sha256(previous + content).digest() == event.hash
        assert json.loads(content)[9] == rows[event.position]["payload"]
        assert event.WhichOneof("body") is not None
        previous = event.hash
    assert all(follows(a, b) for a, b in itertools.pairwise(got))
    # A plain subscriber of the same (cached) positions still gets them without the content.
    plain = await collect(operators["osiptel"], 0, head(app))
    assert [e.position for e in plain] == [e.position for e in got]
    assert not any(e.canonical_content for e in plain)
    assert [e.port_request for e in plain] == [e.port_request for e in got]


async def test_reconnecting_from_the_last_position_misses_nothing_and_repeats_nothing(
    app, operators, clock
):
    claro = operators["claro"]
    await traffic(app, operators, clock, 1)
    first_part = await log_for(app, "claro")
    assert len(first_part) >= 4
    stop_at = first_part[len(first_part) // 2]["position"]

    async with stream(claro, 0) as s:
        read = await s.until(stop_at)
    assert [e.position for e in read] == [
        r["position"] for r in first_part if r["position"] <= stop_at
    ]
    last = read[-1].position

    # While claro is away, more happens (for it and for others), and time passes.
    await traffic(app, operators, clock, 2)
    await advance(app, clock, timedelta(minutes=10))
    await traffic(app, operators, clock, 3)

    async with stream(claro, last) as s:
        rest_expected = await log_for(app, "claro", last)
        rest = await s.until(rest_expected[-1]["position"])
        assert [shape(e) for e in rest] == [shape(r) for r in rest_expected]
        assert not await s.quiet()
        # And the same connection follows the log live.
        mark = head(app)
        await traffic(app, operators, clock, 4)
        live_expected = await log_for(app, "claro", mark)
        live = await s.until(live_expected[-1]["position"])
        assert [shape(e) for e in live] == [shape(r) for r in live_expected]
        assert not await s.quiet()

    positions = [e.position for e in read + rest + live]
    assert positions == [r["position"] for r in await log_for(app, "claro")]


async def test_regulator_stream_sees_everything(app, operators, clock):
    await traffic(app, operators, clock, 1)
    await traffic(app, operators, clock, 2)
    got, expected = await read_all(app, operators["osiptel"], None)
    assert [e.position for e in got] == list(range(1, head(app) + 1))
    assert [shape(e) for e in got] == [shape(r) for r in expected]
    # Including what no operator receives (the inbound SP, SAC, OCC records).
    assert any(not e.broadcast and not e.audience for e in got)


async def test_stream_head_is_the_highest_position(app, operators, clock):
    async def heads() -> set[int]:
        found = set()
        for who in ("claro", "osiptel"):
            client = operators[who]
            response = await client.events.GetStreamHead(
                events_pb2.GetStreamHeadRequest(), metadata=client.metadata
            )
            found.add(response.position)
        return found

    assert await heads() == {1}  # the market's seeding: one registry.imported broadcast
    await traffic(app, operators, clock, 1)
    async with app.core.db.pool.acquire() as conn:
        highest = await conn.fetchval("SELECT max(position) FROM events")
        recorded = await conn.fetchval("SELECT position FROM event_head")
        count = await conn.fetchval("SELECT count(*) FROM events")
    assert highest == recorded == count == head(app)
    assert await heads() == {highest}


@pytest.mark.parametrize("beyond", [1, 2, 1000])
async def test_from_position_beyond_the_head_is_out_of_range(app, operators, clock, beyond):
    await traffic(app, operators, clock, 1)
    client = operators["claro"]
    async with stream(client, head(app) + beyond) as s:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await s._next(5)
    assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert list(field_violations(raised.value)) == ["from_position"]
    # The head itself is fine: nothing to replay, the stream waits for live events.
    async with stream(client, head(app)) as s:
        assert not await s.quiet()


async def test_subscriber_behind_the_window_catches_up_from_postgres(app, operators, clock):
    app.core.hub.window = collections.deque(maxlen=5)
    for n in range(8):
        await traffic(app, operators, clock, n)
    assert head(app) > 5 * 8
    assert len(app.core.hub.window) == 5

    for operator in (*OPERATORS, None):
        client = operators[operator or "osiptel"]
        got, expected = await read_all(app, client, operator)
        assert [shape(e) for e in got] == [shape(r) for r in expected], operator
    # Starting anywhere in the middle works too.
    middle = head(app) // 3
    got, expected = await read_all(app, operators["movistar"], "movistar", middle)
    assert [shape(e) for e in got] == [shape(r) for r in expected]


async def test_live_subscriber_overtaken_by_a_burst(app, operators, clock):
    """A burst larger than the window lands while subscribers wait at the head: they fall
    behind the window at once and must read the burst from PostgreSQL, in order."""
    await traffic(app, operators, clock, 1)
    app.core.hub.window = collections.deque(maxlen=5)
    start = head(app)
    streams = {
        "claro": Stream(operators["claro"], start),
        "entel": Stream(operators["entel"], start),
        None: Stream(operators["osiptel"], start),
    }
    portability_only = Stream(operators["claro"], start, ("portability",))
    try:
        await asyncio.sleep(0.2)  # every stream is waiting at the head
        audiences = [("claro",), ("movistar",), (), ("entel", "claro")]
        async with app.core.db.transaction("test-burst", clock.now()) as txn:
            for index in range(60):
                txn.emit(
                    "burst",
                    "burst.event",
                    case_id=f"B{index}",
                    sender="clearinghouse",
                    payload={"index": index},
                    audience=audiences[index % 4],
                    broadcast=index % 7 == 0,
                )
        await traffic(app, operators, clock, 2)
        assert head(app) - start > 60

        for operator, s in streams.items():
            expected = await log_for(app, operator, start)
            got = await s.until(expected[-1]["position"])
            assert [shape(e) for e in got] == [shape(r) for r in expected], operator
            assert not await s.quiet(0.2)
        expected = await log_for(app, "claro", start, ("portability",))
        got = await portability_only.until(expected[-1]["position"])
        assert [shape(e) for e in got] == [shape(r) for r in expected]
        assert all(e.flow == "portability" for e in got)
    finally:
        for s in (*streams.values(), portability_only):
            await s.close()


async def test_many_concurrent_subscribers_get_the_same_order(app, operators, clock):
    await traffic(app, operators, clock, 1)
    streams = [Stream(operators["osiptel"], 0) for _ in range(5)]
    try:
        await traffic(app, operators, clock, 2)
        target = head(app)
        results = await asyncio.gather(*(s.until(target) for s in streams))
    finally:
        for s in streams:
            await s.close()
    orders = {tuple(e.position for e in r) for r in results}
    assert orders == {tuple(range(1, target + 1))}
