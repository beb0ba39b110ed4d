"""Calling any RPC as any identity, and proving that a refused call changed nothing.

The RPCs come from the generated descriptors (`npc.v1.*_pb2`), so a new RPC shows up here without
anyone listing it; `tests/authz/table.py` must then classify it.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

import npc.v1
from npc.app import Clearinghouse
from tests.authz.table import ANONYMOUS, AUTHZ, IDENTITIES, Access
from tests.helpers import settle


def exposed_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of every service in the generated `npc.v1` modules, by "Service/Method"."""
    found: dict[str, MethodDescriptor] = {}
    for module in pkgutil.iter_modules(npc.v1.__path__):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(f"npc.v1.{module.name}").DESCRIPTOR
        for service in descriptor.services_by_name.values():
            for method in service.methods:
                found[f"{service.name}/{method.name}"] = method
    return found


METHODS = exposed_methods()


def metadata_of(identity: str) -> tuple[tuple[str, str], ...]:
    """The call metadata presenting `identity` (a demo operator, or one of `ANONYMOUS`)."""
    if identity == "no token":
        return ()
    if identity == "unknown token":
        return (("authorization", "Bearer not-a-registered-token"),)
    return (("authorization", f"Bearer dev-token-{identity}"),)


async def invoke(
    channel: grpc.aio.Channel, rpc: str, request: Message | list[Message], identity: str
) -> Any:
    """Call `rpc` with `request` (a list of messages for a client stream) as `identity`.

    A server stream answers its first message (None when it ends at once, or when nothing comes
    within two seconds, as a live stream may wait for news).
    """
    method = METHODS[rpc]
    path = f"/{method.containing_service.full_name}/{method.name}"
    reply_type = message_factory.GetMessageClass(method.output_type)
    metadata = metadata_of(identity)

    def serialize(message: Message) -> bytes:
        return message.SerializeToString()

    if method.client_streaming:
        messages = request if isinstance(request, list) else [request]
        stream_unary = channel.stream_unary(path, serialize, reply_type.FromString)
        return await stream_unary(iter(messages), metadata=metadata, timeout=10)
    assert not isinstance(request, list)
    if method.server_streaming:
        call = channel.unary_stream(path, serialize, reply_type.FromString)(
            request, metadata=metadata, timeout=10
        )
        try:
            first = await asyncio.wait_for(call.read(), 2)
        except TimeoutError:
            return None
        finally:
            call.cancel()
        return None if first is grpc.aio.EOF else first
    unary = channel.unary_unary(path, serialize, reply_type.FromString)
    return await unary(request, metadata=metadata, timeout=10)


async def snapshot(app: Clearinghouse) -> dict[str, str]:
    """A digest of every table the flows write (all of the public schema but the migrations
    ledger), and the head of the event log this process follows."""
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations' ORDER BY tablename"
            )
        ]
        # A refusal stores itself as the answer a retry gets: only accepted answers count.
        query = " UNION ALL ".join(
            f"SELECT '{name}' AS name,"
            f" md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS digest"
            f' FROM "{name}" t' + (" WHERE t.status_code = 0" if name == "command_results" else "")
            for name in tables
        )
        digests = {r["name"]: r["digest"] for r in await conn.fetch(query)}
    digests["event log head"] = str(app.core.hub.head)
    return digests


@dataclass
class Outcome:
    """What a wrong caller got."""

    rpc: str
    identity: str
    code: grpc.StatusCode | None
    details: str
    status: bytes = b""  # the serialized google.rpc.Status of a refusal


def _status_bytes(error: grpc.aio.AioRpcError) -> bytes:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return bytes(value)
    return b""


def missing_case(request: Message, field_name: str) -> tuple[Message, str, str]:
    """`request` naming a case that does not exist instead (an id of the same length, so that
    the two statuses can be compared byte for byte), with the rendering of both ids."""
    present: int | str = getattr(request, field_name)
    shown: tuple[str, str]
    if isinstance(present, int):
        absent: int | str = present + 900
        shown = (f"{present:06d}", f"{absent:06d}")  # as the case id pads it
    else:
        absent = present[:-3] + ("999" if not present.endswith("999") else "998")
        shown = (present, str(absent))
    setattr(request, field_name, absent)
    return request, *shown


async def assert_hidden_as_missing(
    channel: grpc.aio.Channel, rpc: str, request: Message, field_name: str, outcome: Outcome
) -> None:
    """The stranger's refusal of a case is byte for byte the refusal of a missing case."""
    absent_request, present, absent = missing_case(request, field_name)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await invoke(channel, rpc, absent_request, outcome.identity)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND, missing.value.details()
    expected = _status_bytes(missing.value).replace(absent.encode(), present.encode())
    assert expected and outcome.status == expected, (
        f"{rpc} as {outcome.identity}: another operator's case is told apart from a missing one:"
        f" {outcome.details!r} vs {missing.value.details()!r}"
    )


@dataclass
class Prober:
    """Runs the wrong callers of each RPC against one scenario of one clearinghouse."""

    app: Clearinghouse
    channel: grpc.aio.Channel
    exercised: set[str] = field(default_factory=set)
    wrong_calls: int = 0
    hidden_checks: int = 0

    async def check(
        self,
        rpc: str,
        build: Callable[[], Message | list[Message]],
        *,
        right: str | None = None,
        allowed: Iterable[str] | None = None,
        hidden: Iterable[str] = (),
    ) -> Any:
        """Call `rpc` as every identity not allowed on it, expect a refusal and no change; then,
        when `right` names an allowed caller, call it as that caller and expect it to work (the
        scenario really is one the RPC applies to).

        `build` makes a fresh request each time (a new request id for commands). `allowed`
        narrows the table's allowed callers for one variant of a request (e.g. one execution step).
        `hidden` are wrong callers a read answers NOT_FOUND (the table must say why). The table's
        `strangers` (no party of the case) get NOT_FOUND too; for both the status must be byte
        for byte that of a case id that does not exist.
        """
        access: Access = AUTHZ[rpc]
        permitted = frozenset(allowed) if allowed is not None else access.allowed
        assert permitted <= access.allowed, f"{rpc}: {permitted - access.allowed} not in the table"
        concealed = frozenset(hidden)
        assert not concealed or access.hides, f"{rpc}: the table does not say why it hides cases"
        wrong = [i for i in IDENTITIES if i not in permitted and i not in access.exempt]
        await settle(self.app)
        before = await snapshot(self.app)
        refused: list[Outcome] = []
        for identity in [*wrong, *ANONYMOUS]:
            self.wrong_calls += 1
            try:
                reply = await invoke(self.channel, rpc, build(), identity)
            except grpc.aio.AioRpcError as error:
                refused.append(
                    Outcome(
                        rpc, identity, error.code(), error.details() or "", _status_bytes(error)
                    )
                )
            else:
                refused.append(Outcome(rpc, identity, None, f"answered {type(reply).__name__}"))
        await settle(self.app)
        after = await snapshot(self.app)
        unexpected = [
            f"{o.identity}: {o.code.name if o.code else 'OK'} ({o.details})"
            for o in refused
            if o.code
            not in access.refusals(o.identity)
            | ({grpc.StatusCode.NOT_FOUND} if o.identity in concealed else set())
        ]
        assert not unexpected, f"{rpc} was not refused as expected:\n" + "\n".join(unexpected)
        for outcome in refused:
            if outcome.identity in access.strangers | concealed:
                built = build()
                assert isinstance(built, Message) and access.case, f"{rpc}: no case field"
                await assert_hidden_as_missing(self.channel, rpc, built, access.case, outcome)
                self.hidden_checks += 1
        changed = sorted(name for name in before if before[name] != after.get(name))
        assert not changed, f"refused calls of {rpc} changed {changed}"
        self.exercised.add(rpc)
        if right is None:
            return None
        assert right in permitted, f"{rpc}: {right} is not an allowed caller"
        return await invoke(self.channel, rpc, build(), right)

    def assert_covered(self, service: str) -> None:
        """Every RPC of `service` was probed."""
        missing = sorted(
            rpc for rpc in METHODS if rpc.startswith(f"{service}/") and rpc not in self.exercised
        )
        assert not missing, f"RPCs of {service} without a scenario: {missing}"
