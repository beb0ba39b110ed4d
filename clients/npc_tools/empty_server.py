"""The bare grpc.aio server of `npc bench all`'s RPC ceiling, in a module of its own.

It imports grpc and, of npc, only `npc.event_loops`: the ceiling process starts in a fraction of
the time a clearinghouse import takes (about 1.7 s of CPU), which on a small machine the rest of
the benchmark would otherwise wait for.

    python -m npc_tools.empty_server PORT
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

import grpc

from npc.event_loops import loop_factory

EMPTY_SERVICE = "npc.bench.Empty"
EMPTY_METHOD = f"/{EMPTY_SERVICE}/Call"


def serve_empty(port: int) -> None:
    """A bare grpc.aio server answering `/npc.bench.Empty/Call` with empty bytes, until killed.

    It shares `port` with its siblings (SO_REUSEPORT, grpc's default on Linux) as `npc serve
    --workers N` does, and prints `ready` once it listens.
    """

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    EMPTY_SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(call)}
                ),
            )
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop `npc serve` runs on: the ceiling is an empty call on the same loop as the
    clearinghouse's calls, or the ratio would credit the clearinghouse with the loop's gain."""
    return loop_factory(os.environ.get("NPC_EVENT_LOOP", ""))


if __name__ == "__main__":
    serve_empty(int(sys.argv[1]))
