"""Builders and drivers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from google.type.date_pb2 import Date

from npc.admin import seed_demo
from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import Clock, FakeClock
from npc.core.errors import DomainError
from npc.core.flow import Flow
from npc.core.identity import Caller
from npc.core.runtime import Core
from npc.store.database import Txn
from npc.v1 import common_pb2, events_pb2, portability_pb2
from npc_clients import OperatorClient

_ids = itertools.count(1)


T = TypeVar("T")


class Handlers:
    """The flows' handlers called directly, as a command runs them but without gRPC.

    `perform` opens the transaction a command would (the clock's instant), commits what a
    refusal keeps (`keep_effects`: FLEP, a recorded breach) and raises the refusal, exactly as the
    command runner does; idempotency and the wire translation are the API's and tested there.
    """

    def __init__(self, core: Core, clock: FakeClock) -> None:
        self.core = core
        self.clock = clock

    def flow(self, name: str) -> Flow:
        """The started flow called `name` ("portability", "suspension"...)."""
        return self.core.flows[name]

    @staticmethod
    def caller(operator: str, country: str = "PE") -> Caller:
        """An operator's identity as the transports establish it."""
        return Caller(operator, country=country)

    async def perform(self, name: str, command: Callable[[Txn], Awaitable[T]]) -> T:
        """Run `command` in one transaction named `name`; settle afterwards (events positioned,
        due deadlines fired)."""
        kept: DomainError | None = None
        async with self.core.db.transaction(name, self.clock.now()) as txn:
            try:
                result = await command(txn)
            except DomainError as error:
                if not error.keep_effects:
                    raise
                kept = error
        await self.core.settle()
        if kept is not None:
            raise kept
        return result

    async def advance(self, delta: timedelta) -> None:
        """Move the clock and fire what fell due."""
        self.clock.advance(delta)
        await self.core.settle()


async def around_instant(
    handlers: Handlers,
    due: datetime,
    step: Callable[[Handlers, str], Awaitable[object]],
    cases: tuple[str, str, str],
) -> None:
    """`step` on the first case one second before `due`; on the second at `due`, in a transaction
    begun before the deadline could fire (the clock still shows the second before); on the third
    at `due`, after the deadlines of that instant fired. The order is fixed, not raced."""
    handlers.clock.set(due - timedelta(seconds=1))
    await step(handlers, cases[0])
    await step(Handlers(handlers.core, FakeClock(due)), cases[1])
    await handlers.advance(timedelta(seconds=1))
    await step(handlers, cases[2])


def rid() -> str:
    """A fresh request id."""
    return f"req-{next(_ids)}"


def ts(instant: datetime) -> Timestamp:
    """A protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def day(value: date | str) -> Date:
    """A calendar date on the wire. As YYYY-MM-DD text it may name no day (2026-02-30, 2026-13-01)
    so that tests can send what the checks refuse."""
    if isinstance(value, date):
        return Date(year=value.year, month=value.month, day=value.day)
    year, month, dom = (int(part) for part in value.split("-"))
    return Date(year=year, month=month, day=dom)


def subscriber(dni: str = "44556677") -> common_pb2.Subscriber:
    """A natural person with a DNI."""
    return common_pb2.Subscriber(
        name="Rosa Quispe Mamani",
        document=common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number=dni),
        email="rosa@example.pe",
    )


def block(
    first: str, last: str = "", modality: int = common_pb2.MODALITY_POSTPAID
) -> common_pb2.NumberBlock:
    """A number or an inclusive range."""
    # Any number, unknown ones included: tests send those on purpose.
    return common_pb2.NumberBlock(
        first=first, last=last, modality=common_pb2.Modality.ValueType(modality)
    )


def port_request(
    clock: Clock,
    donor: str = "movistar",
    numbers: list[common_pb2.NumberBlock] | None = None,
    **fields: Any,
) -> portability_pb2.SubmitPortRequestRequest:
    """A valid mobile port request received just now."""
    values: dict[str, Any] = {
        "request_id": rid(),
        "donor": donor,
        "service": common_pb2.SERVICE_TYPE_MOBILE,
        "subscriber": subscriber(),
        "numbers": numbers or [block("940000001")],
        "received_at": ts(clock.now()),
        "form_number": "F-0001",
    }
    values.update(fields)
    return portability_pb2.SubmitPortRequestRequest(**values)


async def settle(app: Clearinghouse) -> None:
    """Fire what is due, sequence and fan out everything committed."""
    assert app.core is not None
    await app.core.settle()


async def advance(app: Clearinghouse, clock: FakeClock, delta: timedelta) -> None:
    """Move the fake clock and let the clearinghouse react."""
    clock.advance(delta)
    await settle(app)


async def advance_to(app: Clearinghouse, clock: FakeClock, instant: datetime) -> None:
    """Move the fake clock to `instant` and let the clearinghouse react."""
    clock.set(instant)
    await settle(app)


def rpc_error_details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried by an RPC error."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    raise AssertionError("no google.rpc.Status in the trailers")


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo detail of an error (every error carries one)."""
    for detail in rpc_error_details(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo detail in {error.code().name}: {error.details()}")


def live_case(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """The live case an ALREADY_EXISTS names, and what collided with it: the same id in the
    ResourceInfo, the ErrorInfo and the message."""
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error.details()
    info = error_info(error)
    named = info.metadata["resource_name"]
    resources = [
        d
        for d in rpc_error_details(error).details
        if d.Is(error_details_pb2.ResourceInfo.DESCRIPTOR)
    ]
    assert len(resources) == 1, error.details()
    resource = error_details_pb2.ResourceInfo()
    resources[0].Unpack(resource)
    assert named and resource.resource_name == named and named in (error.details() or "")
    return named, info.metadata["collided"]


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """Field -> description of the BadRequest detail of an error."""
    status = rpc_error_details(error)
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


async def collect(
    client: OperatorClient,
    from_position: int,
    until: int,
    timeout: float = 5.0,
    *,
    with_canonical_content: bool = False,
) -> list[events_pb2.Event]:
    """Events of `client`'s stream after `from_position` up to position `until` (inclusive)."""
    got: list[events_pb2.Event] = []
    call = client.events.Subscribe(
        events_pb2.SubscribeRequest(
            from_position=from_position, with_canonical_content=with_canonical_content
        ),
        metadata=client.metadata,
    )

    async def read() -> None:
        async for event in call:
            got.append(event)
            if event.position >= until:
                return

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        pass
    finally:
        call.cancel()
    return got


def head(app: Clearinghouse) -> int:
    """The current head of the event log in this process."""
    assert app.core is not None
    return app.core.hub.head


async def port_end_to_end(
    app: Clearinghouse,
    clock: FakeClock,
    recipient: OperatorClient,
    donor: OperatorClient,
    numbers: list[common_pb2.NumberBlock],
) -> portability_pb2.PortRequest:
    """File, accept and schedule a port, and move the clock to its execution."""
    filed = await recipient.call(
        "SubmitPortRequest", port_request(clock, donor=donor.operator, numbers=numbers)
    )
    await donor.call(
        "AnswerPortRequest",
        portability_pb2.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=filed.id, accept=True
        ),
    )
    limit = filed.execution_limit.ToDatetime(tzinfo=clock.now().tzinfo)
    window_opens = limit - timedelta(hours=6)  # the default window is 00:00-06:00
    await recipient.call(
        "SchedulePort",
        portability_pb2.SchedulePortRequest(
            request_id=rid(), port_request_id=filed.id, scheduled_at=ts(window_opens)
        ),
    )
    await advance_to(app, clock, window_opens)
    return filed


# The channel of `wait_serving` tries to connect every 200 ms (gRPC's default backoff, 1 s growing
# to 120 s, could leave a started server unnoticed for seconds); refused connections cost the
# kernel, not Python.
_WAIT_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 200),
]


async def wait_serving(
    target: str,
    process: asyncio.subprocess.Process,
    limit: float = 30.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Wait until the server process at `target` reports SERVING on grpc.health.v1, or exits
    (over TLS with `credentials`).

    One health Watch that waits for the connection (`wait_for_ready`) and for the server to
    push SERVING: no polling from Python while the server starts."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = (
        grpc.aio.insecure_channel(target, options=_WAIT_CHANNEL_OPTIONS)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials, options=_WAIT_CHANNEL_OPTIONS)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def serving() -> None:
            while True:
                call = stub.Watch(health_pb2.HealthCheckRequest(), wait_for_ready=True)
                try:
                    async for reply in call:
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                except grpc.aio.AioRpcError:
                    # The connection broke before SERVING (a listener starting over): watch again.
                    await asyncio.sleep(0.1)

        watch = asyncio.ensure_future(serving())
        exited = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                {watch, exited}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            watch.cancel()
            exited.cancel()
        if watch in done:
            return
        if exited in done:
            raise AssertionError(f"server exited with {process.returncode}")
        raise AssertionError("server did not become SERVING")


@contextlib.contextmanager
def _npc_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Exactly `env`'s NPC_* variables in os.environ (the others removed), as a process started
    with them would see; os.environ restored afterwards."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("NPC_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key in [key for key in os.environ if key.startswith("NPC_")]:
            del os.environ[key]
        os.environ.update(saved)


@contextlib.contextmanager
def _own_logging() -> Iterator[None]:
    """Logging as a fresh process has it while `npc.cli.main` runs: no root handlers, so its
    `logging.basicConfig` installs its handler on the captured stderr; afterwards that handler
    is removed (repeated calls never stack) and pytest's handlers and levels come back."""
    root = logging.getLogger()
    asyncio_logger = logging.getLogger("asyncio")
    handlers, level, asyncio_level = root.handlers[:], root.level, asyncio_logger.level
    root.handlers = []
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)
        asyncio_logger.setLevel(asyncio_level)


def _npc_main(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    from npc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (
        _npc_environment(env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _own_logging(),
    ):
        try:
            code: int | str | None = main(argv)
        except SystemExit as exit_:  # argparse's refusals and --help
            code = exit_.code
    if not isinstance(code, int):
        # What the interpreter makes of sys.exit(None) and sys.exit("message").
        err.write("" if code is None else f"{code}\n")
        code = 0 if code is None else 1
    return subprocess.CompletedProcess(["npc", *argv], code, out.getvalue(), err.getvalue())


async def run_npc(
    *argv: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`npc ARGV` as `python -m npc` runs it, without the process (whose imports alone cost more
    than a second of CPU): the command's own parsing, code and exit status, on its own event
    loop in a thread, with exactly the NPC_* variables of `env` set during the call (one call at
    a time: they are the process's), its stdout and stderr (log lines included) captured.
    Tests about the process itself (the exit status the entry point gives the shell, signals)
    start one instead."""
    return await asyncio.to_thread(_npc_main, list(argv), env or {})


@contextlib.asynccontextmanager
async def server_process(
    database_url: str, redis_url: str, log_path: Path, redis_prefix: str = "npc"
) -> AsyncIterator[str]:
    """`npc serve` in its own process on the given database and Redis (keys under
    `redis_prefix`, shared with the processes serving the same clearinghouse); yields its gRPC
    target."""
    from npc.embedded import free_port

    grpc_port = free_port()
    env = {
        **os.environ,
        "NPC_DATABASE_URL": database_url,
        "NPC_REDIS_URL": redis_url,
        "NPC_REDIS_PREFIX": redis_prefix,
        "NPC_DEV_MODE": "1",
        "NPC_GRPC_PORT": str(grpc_port),
        "NPC_HTTP_PORT": str(free_port()),
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npc",
            "serve",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        target = f"127.0.0.1:{grpc_port}"
        try:
            await wait_serving(target, process)
            yield target
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 15)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, clock: Clock, *, serve_http: bool = True
) -> AsyncIterator[Clearinghouse]:
    """A started clearinghouse on `settings` with the demo market loaded and positioned."""
    house = Clearinghouse(settings, clock)
    await house.start(serve_http=serve_http)
    try:
        assert house.core is not None and house.authenticator is not None
        await seed_demo(house.core.db, now=clock.now())
        await house.core.settle()
        await house.authenticator.load()
        yield house
    finally:
        await house.stop()


async def stream_head(client: OperatorClient) -> int:
    """The log head as `client` sees it (EventService.GetStreamHead)."""
    reply = await client.events.GetStreamHead(
        events_pb2.GetStreamHeadRequest(), metadata=client.metadata, timeout=5
    )
    return int(reply.position)


async def port_through_handlers(
    handlers: Handlers, recipient: str, donor: str, numbers: list[common_pb2.NumberBlock]
) -> str:
    """File, accept and schedule a port through the portability handler (no gRPC) at the opening
    of the next change window, move the clock there (it executes), and return its id."""
    from npc.flows.portability import convert

    handler = handlers.flow("portability").handler  # type: ignore[attr-defined]
    request = port_request(handlers.clock, donor=donor, numbers=numbers)
    filed = await handlers.perform(
        "test.submit",
        lambda txn: handler.submit_port_request(
            txn, handlers.caller(recipient), convert.port_request_submission(request)
        ),
    )
    answer = portability_pb2.AnswerPortRequestRequest(
        request_id=rid(), port_request_id=filed["id"], accept=True
    )
    await handlers.perform(
        "test.answer",
        lambda txn: handler.answer_port_request(
            txn, handlers.caller(donor), convert.port_request_answer(answer)
        ),
    )
    # The first change window to open, whatever the settings make it.
    window = handlers.flow("registry").consent.window  # type: ignore[attr-defined]
    today = window.calendar.local_date(handlers.clock.now())
    window_opens = window.start_on(today)
    if window_opens <= handlers.clock.now():
        window_opens = window.start_on(today + timedelta(days=1))
    schedule = portability_pb2.SchedulePortRequest(
        request_id=rid(), port_request_id=filed["id"], scheduled_at=ts(window_opens)
    )
    await handlers.perform(
        "test.schedule",
        lambda txn: handler.schedule_port(
            txn, handlers.caller(recipient), convert.port_schedule(schedule)
        ),
    )
    handlers.clock.set(window_opens)
    await handlers.core.settle()
    return str(filed["id"])
