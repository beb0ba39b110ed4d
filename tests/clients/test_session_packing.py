"""The SDK's session writes the commands queued behind one another as one `CommandBatch`, in
order, the subscription never inside one (pure: a queue in, the messages to write out)."""

from __future__ import annotations

import asyncio

from npc.v1 import events_pb2, session_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients.session import MAX_BATCH, _packed


def command(case: int) -> session_pb2.SessionRequest:
    confirm = pb.ConfirmPortExecutionRequest(request_id=f"r{case}", port_request_id=f"SP{case}")
    return session_pb2.SessionRequest(
        command=session_pb2.SessionCommand(confirm_port_execution=confirm)
    )


def queued(*messages: session_pb2.SessionRequest) -> asyncio.Queue[session_pb2.SessionRequest]:
    queue: asyncio.Queue[session_pb2.SessionRequest] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    return queue


def ids(message: session_pb2.SessionRequest) -> list[str]:
    return [c.confirm_port_execution.request_id for c in message.commands.commands]


def test_queued_commands_go_in_one_batch_in_order_and_bounded() -> None:
    alone = _packed(command(0), queued())
    assert alone == [command(0)]  # nothing behind it: sent as it is
    queue = queued(*(command(k) for k in range(1, MAX_BATCH + 5)))
    first = _packed(command(0), queue)
    assert len(first) == 1 and ids(first[0]) == [f"r{k}" for k in range(MAX_BATCH)]
    rest = _packed(queue.get_nowait(), queue)
    assert ids(rest[0]) == [f"r{k}" for k in range(MAX_BATCH, MAX_BATCH + 5)]


def test_a_subscription_is_never_packed_and_keeps_its_place() -> None:
    subscribe = session_pb2.SessionRequest(subscribe=events_pb2.SubscribeRequest(from_position=7))
    assert _packed(subscribe, queued(command(1))) == [subscribe]
    batch, after = _packed(command(1), queued(command(2), subscribe, command(3)))
    assert (ids(batch), after) == (["r1", "r2"], subscribe)
