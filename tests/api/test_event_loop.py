"""NPC_EVENT_LOOP: `npc serve` on asyncio's loop or uvloop's. grpc.aio binds its completion
queue to whichever loop runs it (a socket it watches with add_reader): the server's calls, unary
and streamed both ways, must work on uvloop as on asyncio."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
import uvloop

from npc.cli.serve import event_loop_factory
from npc.config import ConfigError

SERVICE = "npc.test.Loop"


async def _round_trips() -> tuple[str, bytes, list[bytes]]:
    """A unary call and a bidirectional stream against a grpc.aio server on the running loop."""

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request.upper()

    async def bidi(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request[::-1]

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(unary),
                    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = await channel.unary_unary(f"/{SERVICE}/Unary")(b"port", timeout=10)
            call = channel.stream_stream(f"/{SERVICE}/Bidi")(timeout=10)
            streamed = []
            for message in (b"abc", b"donor"):
                await call.write(message)
                streamed.append(await call.read())
            await call.done_writing()
        return type(asyncio.get_running_loop()).__module__, answer, streamed
    finally:
        await server.stop(None)


@pytest.mark.parametrize(("name", "module"), [("asyncio", "asyncio"), ("UVLOOP", "uvloop")])
def test_grpc_aio_serves_on_the_loop_chosen(name: str, module: str) -> None:
    factory = event_loop_factory({"NPC_EVENT_LOOP": name})
    with asyncio.Runner(loop_factory=factory) as runner:
        loop_module, answer, streamed = runner.run(_round_trips())
    assert loop_module.split(".")[0] == module
    assert (answer, streamed) == (b"PORT", [b"cba", b"ronod"])


def test_an_unknown_loop_is_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigError, match="NPC_EVENT_LOOP"):
        event_loop_factory({"NPC_EVENT_LOOP": "trio"})
    assert event_loop_factory({"NPC_EVENT_LOOP": "uvloop"}) is uvloop.new_event_loop
    assert event_loop_factory({"NPC_EVENT_LOOP": "asyncio"}) is asyncio.new_event_loop


def test_uvloop_is_the_default_and_asyncio_where_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert event_loop_factory({}) is uvloop.new_event_loop
    assert event_loop_factory({"NPC_EVENT_LOOP": ""}) is uvloop.new_event_loop
    # An import of uvloop that fails, as where it does not build.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert event_loop_factory({}) is asyncio.new_event_loop
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        event_loop_factory({"NPC_EVENT_LOOP": "uvloop"})
