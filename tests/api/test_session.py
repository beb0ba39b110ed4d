"""SessionService: every command and the operator's events on one bidirectional stream, answered
exactly as the unary RPCs answer, resumed across broken connections without loss or repeat."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from npc.api import session as session_module
from npc.api.events import EventServicer
from npc.api.messages import Command
from npc.api.session import dispatch_table
from npc.core.flow import GrpcService
from npc.v1 import (
    cancellations_pb2,
    events_pb2,
    events_pb2_grpc,
    pqr_pb2,
    session_pb2,
    session_pb2_grpc,
)
from npc.v1 import portability_pb2 as pb
from npc_clients import CommandError, FilePositionStore, OperatorClient, Session
from tests.helpers import (
    advance,
    advance_to,
    block,
    collect,
    head,
    port_request,
    rid,
    rpc_error_details,
    running,
    settle,
    ts,
)


def window_start(app: Any, request: pb.PortRequest) -> datetime:
    """Opening of the last change window the request may be scheduled in."""
    limit = request.execution_limit.ToDatetime(tzinfo=UTC)
    window = app.portability.handler.timeline.window_containing(limit - timedelta(seconds=1))
    assert window is not None
    return window[0]


def accept(case_id: str) -> pb.AnswerPortRequestRequest:
    return pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=case_id, accept=True)


def schedule(case_id: str, at: datetime) -> pb.SchedulePortRequest:
    return pb.SchedulePortRequest(request_id=rid(), port_request_id=case_id, scheduled_at=ts(at))


def confirm(case_id: str, step: pb.ExecutionStep.ValueType) -> pb.ConfirmPortExecutionRequest:
    return pb.ConfirmPortExecutionRequest(request_id=rid(), port_request_id=case_id, step=step)


async def events_until(
    session: Session, done: Callable[[list[events_pb2.Event]], bool], timeout: float = 10.0
) -> list[events_pb2.Event]:
    """The session's events until `done` says enough."""
    got: list[events_pb2.Event] = []

    async def read() -> None:
        async for event in session.events():
            got.append(event)
            if done(got):
                return

    await asyncio.wait_for(read(), timeout)
    return got


def told(kind: str, cases: Iterable[Any]) -> Callable[[list[events_pb2.Event]], bool]:
    """Whether events of `kind` about each of `cases` were received."""
    wanted = {c.id for c in cases}
    return lambda got: wanted <= {e.case_id for e in got if e.type == kind}


async def admissible_cases(
    app: Any, clock: Any, claro: Session, movistar: Session, first: int, n: int
) -> list[pb.PortRequest]:
    """`n` port requests claro files and movistar accepts, each side's commands pipelined."""
    filed = await asyncio.gather(
        *(claro.send(port_request(clock, numbers=[block(str(first + i))])) for i in range(n))
    )
    await advance(app, clock, timedelta(minutes=1))
    return list(await asyncio.gather(*(movistar.send(accept(case.id)) for case in filed)))


def test_dispatch_table_covers_every_command_rpc_and_refuses_a_gap(handlers, monkeypatch):
    services = [s for flow in handlers.core.flows.values() for s in flow.grpc_services()]
    routes = dispatch_table(services)
    declared = {
        (s.full_name, name)
        for s in services
        for klass in type(s.servicer).__mro__
        for name, value in vars(klass).items()
        if isinstance(value, Command) and name not in session_module.UPLOADS
    }
    assert {(r.full_service, r.method) for r in routes.values()} == declared
    assert len(routes) == len(
        session_pb2.SessionCommand.DESCRIPTOR.oneofs_by_name["request"].fields
    )
    # Each field goes to the unary RPC's own binding (same validation, ids and stored answers).
    port = routes["submit_port_request"]
    assert (port.method, port.outcome, port.case_field) == (
        "SubmitPortRequest",
        "port_request",
        None,
    )
    assert routes["schedule_port"].case_field == "port_request_id"
    # A Command RPC without a field refuses to start (the upload, were it a Command line)...
    cancellations = next(s for s in services if s.full_name == "npc.v1.CancellationsService")
    servicer_type: Any = type(cancellations.servicer)

    class UploadAsCommand(servicer_type):  # type: ignore[misc]
        SubmitDailyReport = Command(servicer_type._submit, cancellations_pb2.DailyReportReceipt)

    upload = dataclasses.replace(cancellations, servicer=UploadAsCommand.__new__(UploadAsCommand))
    monkeypatch.setattr(session_module, "UPLOADS", frozenset())
    with pytest.raises(
        ValueError, match="CancellationsService.SubmitDailyReport has no SessionCommand field"
    ):
        dispatch_table([upload if s is cancellations else s for s in services])
    monkeypatch.undo()
    # ...and so does a field no served RPC answers.
    without_pqr = [s for s in services if s.full_name != "npc.v1.PqrService"]
    with pytest.raises(ValueError, match="SessionCommand.file_pqr is no Command RPC"):
        dispatch_table(without_pqr)
    events = GrpcService(
        "npc.v1.EventService",
        EventServicer(handlers.core.hub),
        events_pb2_grpc.add_EventServiceServicer_to_server,
    )
    assert dispatch_table([events, *services]).keys() == routes.keys()


async def test_a_whole_port_pipelined_over_sessions(app, operators, clock, tmp_path):
    start = head(app)
    store = FilePositionStore(tmp_path / "claro.position")
    store.save(start)  # claro's system processed everything before
    claro_session = operators["claro"].session(store=store)
    movistar_session = operators["movistar"].session(from_position=start)
    async with claro_session as claro, movistar_session as movistar:
        cases = await admissible_cases(app, clock, claro, movistar, 940000301, 4)
        assert [c.state for c in cases] == [pb.PORT_REQUEST_STATE_ADMISSIBLE] * 4
        opens = window_start(app, cases[0])
        scheduled = await asyncio.gather(*(claro.send(schedule(c.id, opens)) for c in cases))
        assert {s.state for s in scheduled} == {pb.PORT_REQUEST_STATE_SCHEDULED}
        await advance_to(app, clock, opens)
        await asyncio.gather(
            *(movistar.send(confirm(c.id, pb.EXECUTION_STEP_DONOR_DISABLED)) for c in cases)
        )
        done = await asyncio.gather(
            *(claro.send(confirm(c.id, pb.EXECUTION_STEP_RECIPIENT_ENABLED)) for c in cases)
        )
        assert [d.id for d in done] == [c.id for c in cases]
        assert {d.state for d in done} == {pb.PORT_REQUEST_STATE_COMPLETED}
        # The donor learnt of each request, and both of each completion, on their sessions.
        for session, first in ((movistar, "sent_to_donor"), (claro, "registered")):
            got = await events_until(session, told("portability.request.completed", cases))
            positions = [e.position for e in got]
            assert positions == sorted(set(positions))
            assert got == await collect(operators[session.client.operator], start, positions[-1])
            assert told(f"portability.request.{first}", cases)(got)
            session.processed(got[-1])
        assert store.load() == got[-1].position > start  # the last of claro's, processed


async def test_pipelined_results_are_matched_to_their_request_ids_errors_included(
    app, operators, clock
):
    async with operators["claro"].session() as claro:
        good = port_request(clock, numbers=[block("940000401")])
        own_number = port_request(clock, donor="claro", numbers=[block("940000402")])
        no_case = confirm("SP0000009999", pb.EXECUTION_STEP_RECIPIENT_ENABLED)
        foreign = pqr_pb2.AssignCunRangeRequest(request_id=rid(), provider="claro")
        outcomes = await asyncio.gather(
            *(claro.send(r) for r in (good, own_number, no_case, foreign)),
            return_exceptions=True,
        )
    filed, invalid, missing, denied = outcomes
    assert isinstance(filed, pb.PortRequest)
    assert (filed.recipient, [b.first for b in filed.numbers]) == ("claro", ["940000401"])
    for error, code, request in (
        (invalid, grpc.StatusCode.INVALID_ARGUMENT, own_number),
        (missing, grpc.StatusCode.NOT_FOUND, no_case),
        (denied, grpc.StatusCode.PERMISSION_DENIED, foreign),
    ):
        assert isinstance(error, CommandError), error
        assert (error.code(), error.request_id) == (code, request.request_id)
        assert error.detail(error_details_pb2.ErrorInfo) is not None
    assert isinstance(invalid, CommandError) and isinstance(denied, CommandError)
    bad = invalid.detail(error_details_pb2.BadRequest)
    assert bad is not None and [v.field for v in bad.field_violations] == ["donor"]
    # The country check of the service, per command: PqrService is Colombia's.
    assert "CO" in denied.details()


async def test_a_retry_gets_the_same_answer_over_unary_and_session(app, operators, clock):
    claro = operators["claro"]
    async with claro.session() as session:
        first = port_request(clock, numbers=[block("940000501")])
        unary = await claro.call("SubmitPortRequest", first)
        assert await session.send(first) == unary
        second = port_request(clock, numbers=[block("940000502")])
        streamed = await session.send(second)
        assert await claro.call("SubmitPortRequest", second) == streamed
        assert streamed.id != unary.id
        # A refusal is an answer too, kept under its request id whichever way it came.
        refused = port_request(clock, donor="claro", numbers=[block("940000503")])
        with pytest.raises(CommandError) as over_session:
            await session.send(refused)
        with pytest.raises(grpc.aio.AioRpcError) as over_unary:
            await claro.call("SubmitPortRequest", refused)
        assert rpc_error_details(over_unary.value) == over_session.value.status
    async with app.core.db.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM port_requests WHERE recipient = 'claro'")
    assert count == 2


async def test_commands_on_one_case_run_in_the_order_sent(app, operators, clock):
    async with operators["claro"].session() as claro, operators["movistar"].session() as movistar:
        cases = await admissible_cases(app, clock, claro, movistar, 940000601, 8)
        opens = window_start(app, cases[0])
        # Two schedules per case: only the first sent may find it admissible.
        pairs = [(schedule(c.id, opens), schedule(c.id, opens + timedelta(hours=1))) for c in cases]
        outcomes = await asyncio.gather(
            *(claro.send(r) for pair in pairs for r in pair), return_exceptions=True
        )
    for (first, _), case, won, lost in zip(
        pairs, cases, outcomes[::2], outcomes[1::2], strict=True
    ):
        assert isinstance(won, pb.PortRequest), won
        assert (won.id, won.scheduled_at) == (case.id, first.scheduled_at)
        assert isinstance(lost, CommandError) and lost.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_command_batch_is_answered_command_by_command_and_bounded(app, operators, clock):
    claro = operators["claro"]
    call = session_pb2_grpc.SessionServiceStub(claro.channel).Session(metadata=claro.metadata)
    good = port_request(clock, numbers=[block("940000701")])
    own_number = port_request(clock, donor="claro", numbers=[block("940000702")])
    commands = [session_pb2.SessionCommand(submit_port_request=r) for r in (good, own_number)]
    await call.write(
        session_pb2.SessionRequest(commands=session_pb2.CommandBatch(commands=commands))
    )
    results: dict[str, session_pb2.CommandResult] = {}
    while len(results) < 2:
        response = await call.read()
        results.update((r.request_id, r) for r in response.results)
    assert results[good.request_id].port_request.recipient == "claro"
    assert results[own_number.request_id].error.code == code_pb2.INVALID_ARGUMENT
    over = session_module.MAX_COMMANDS_PER_REQUEST + 1
    await call.write(
        session_pb2.SessionRequest(commands=session_pb2.CommandBatch(commands=commands[:1] * over))
    )
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "commands.commands" in str(rpc_error_details(ended.value))


class Relay:
    """A TCP relay between a client and the server whose connections the test cuts, as a network
    failure would (the client sees the connection reset)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.writers.discard(sink)
            sink.transport.abort()

    def cut(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_session_cut_ten_times_misses_nothing_and_gets_nothing_twice(app, operators, clock):
    relay = Relay(app.grpc_port)
    client = OperatorClient(f"127.0.0.1:{await relay.start()}", "dev-token-claro", operator="claro")
    start = head(app)
    answers: list[pb.PortRequest] = []
    try:
        async with client.session(from_position=start) as session:
            for cut in range(10):
                requests = [
                    port_request(clock, numbers=[block(f"94007{cut:02d}{i:02d}")]) for i in range(3)
                ]
                sends = [asyncio.create_task(session.send(r)) for r in requests]
                # The stream is up (a call not yet on the wire would be retried by grpc itself);
                # then cut with the other answers in flight, or after them.
                await asyncio.wait(sends, timeout=10, return_when=asyncio.FIRST_COMPLETED)
                await asyncio.sleep(0.01 * (cut % 3))
                before = session.reconnects
                relay.cut()
                answers += await asyncio.wait_for(asyncio.gather(*sends), 20)
                # The stream noticed (the next cut must cut the stream that replaced it).
                for _ in range(200):  # noqa: ASYNC110 (polled: the SDK has no event for it)
                    if session.reconnects > before:
                        break
                    await asyncio.sleep(0.02)
                assert session.reconnects > before
            await settle(app)
            got = await events_until(session, told("portability.request.registered", answers))
    finally:
        await relay.close()
        await client.close()
    assert len({a.id for a in answers}) == 30
    async with app.core.db.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM port_requests WHERE recipient = 'claro'")
    assert count == 30  # every command sent again was answered from its first run
    reference = await collect(operators["claro"], start, got[-1].position)
    assert [e.position for e in got] == [e.position for e in reference]


async def test_an_idle_session_gets_heartbeats(settings, clock):
    quick = dataclasses.replace(settings, session_heartbeat=0.2)
    async with running(quick, clock, serve_http=False) as app:
        client = OperatorClient(f"127.0.0.1:{app.grpc_port}", "dev-token-entel")
        call = session_pb2_grpc.SessionServiceStub(client.channel).Session(metadata=client.metadata)
        try:
            subscribe = events_pb2.SubscribeRequest(from_position=head(app))
            await call.write(session_pb2.SessionRequest(subscribe=subscribe))
            beats = [await asyncio.wait_for(call.read(), 10) for _ in range(2)]
        finally:
            call.cancel()
            await client.close()
    for beat in beats:
        assert beat.HasField("heartbeat") and not beat.results and not beat.events
        assert beat.heartbeat.head_position == head(app)
    assert beats[1].heartbeat.sent_at.ToNanoseconds() > beats[0].heartbeat.sent_at.ToNanoseconds()


async def test_a_draining_server_answers_the_commands_it_read_then_ends_the_session(
    app, operators, clock
):
    claro = operators["claro"]
    start = head(app)
    call = session_pb2_grpc.SessionServiceStub(claro.channel).Session(metadata=claro.metadata)
    subscribe = events_pb2.SubscribeRequest(from_position=start)
    await call.write(session_pb2.SessionRequest(subscribe=subscribe))
    requests = [port_request(clock, numbers=[block(f"9400008{i:02d}")]) for i in range(6)]
    for request in requests:
        command = session_pb2.SessionCommand(submit_port_request=request)
        await call.write(session_pb2.SessionRequest(command=command))
    received: list[session_pb2.SessionResponse] = [await asyncio.wait_for(call.read(), 10)]
    drained = asyncio.create_task(app.grpc.drain.start(5))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while True:
            response = await asyncio.wait_for(call.read(), 10)
            assert response is not grpc.aio.EOF
            received.append(response)
    assert await drained
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    results = {r.request_id: r for response in received for r in response.results}
    # Every command read is answered: run to the end, or refused before it ran (sent again later).
    assert set(results) == {r.request_id for r in requests}
    done = [r for r in results.values() if r.HasField("port_request")]
    assert all(r.error.code == code_pb2.UNAVAILABLE for r in results.values() if r not in done)
    async with app.core.db.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM port_requests WHERE recipient = 'claro'")
    assert count == len(done) > 0
    # It ends with where to subscribe again: after the last event it sent.
    positions = [e.position for response in received for e in response.events]
    trailers = dict(ended.value.trailing_metadata() or ())
    assert int(trailers["npc-resume-position"]) == (positions[-1] if positions else start)


async def test_a_session_is_refused_without_an_identity(app):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        call = session_pb2_grpc.SessionServiceStub(channel).Session(
            metadata=(("authorization", "Bearer not-a-registered-token"),)
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(call.read(), 10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
