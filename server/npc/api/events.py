"""EventService: the ordered stream of every message addressed to the calling operator."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from npc.api.event_bodies import canonical_content, event_message
from npc.api.identity import current_caller
from npc.core.errors import FieldViolation, InvalidArgument, OutOfRange, PermissionDenied
from npc.core.events import LoggedEvent
from npc.core.fanout import EventHub
from npc.v1 import events_pb2, events_pb2_grpc


@dataclass
class _Built:
    """An event's message, and the same with its canonical content once someone asked."""

    plain: events_pb2.Event
    with_content: events_pb2.Event | None = None


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Subscribe from a position; the regulator receives every event of its country's flows."""

    # Recent events as messages, by position: a broadcast goes to every operator's stream, and
    # building the message (typed body, timestamps) costs more than sending it. Each entry keeps
    # the message without canonical content and, once a subscriber asked for it, the one with.
    MESSAGE_CACHE = 4096

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._flows_of: dict[str, set[str]] = {}
        self._messages: OrderedDict[int, _Built] = OrderedDict()

    def _message(self, event: LoggedEvent, with_content: bool = False) -> events_pb2.Event:
        built = self._messages.get(event.position)
        if built is None:
            built = self._messages[event.position] = _Built(event_message(event))
            if len(self._messages) > self.MESSAGE_CACHE:
                self._messages.popitem(last=False)
        if not with_content:
            return built.plain
        if built.with_content is None:
            built.with_content = events_pb2.Event()
            built.with_content.CopyFrom(built.plain)
            built.with_content.canonical_content = canonical_content(event)
        return built.with_content

    def add_flow(self, flow: str, countries: set[str]) -> None:
        """Let the callers of `countries` receive the events of `flow`."""
        for country in countries:
            self._flows_of.setdefault(country, set()).add(flow)

    async def Subscribe(  # noqa: N802
        self, request: events_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.Event]:
        """Every event after `from_position` addressed to the caller, then live ones."""
        operator, flows, foreign = await self._scope(request)
        async for event in self.hub.subscribe(operator, request.from_position, flows, foreign):
            yield self._message(event, request.with_canonical_content)

    async def push(
        self,
        request: events_pb2.SubscribeRequest,
        sink: Callable[[list[events_pb2.Event]], bool],
        room: asyncio.Event,
    ) -> None:
        """`Subscribe`'s messages, checked alike, handed to `sink` in batches until cancelled
        (a session's stream: see `EventHub.push` for `sink` and `room`)."""
        operator, flows, foreign = await self._scope(request)
        content = request.with_canonical_content

        def messages(events: list[LoggedEvent]) -> bool:
            return sink([self._message(event, content) for event in events])

        await self.hub.push(operator, request.from_position, flows, foreign, messages, room)

    async def _scope(
        self, request: events_pb2.SubscribeRequest
    ) -> tuple[str | None, list[str], list[str]]:
        """Check a subscription; return whose events it reads (None: all, the regulator's),
        the flows asked and the other countries' flows it never reads."""
        if request.from_position < 0:
            raise InvalidArgument(
                FieldViolation("from_position", "must be 0 or a position already received")
            )
        if len(request.flows) > 20 or any(
            len(f) > 40 or not f.isidentifier() for f in request.flows
        ):
            raise InvalidArgument(FieldViolation("flows", "up to 20 flow names"))
        if request.from_position > self.hub.head:
            await self.hub.refresh()
            if request.from_position > self.hub.head:
                raise OutOfRange("from_position", f"beyond the head of the log ({self.hub.head})")
        caller = current_caller()
        operator = None if caller.is_regulator else caller.operator
        # Never the flows of another country: OSIPTEL reads no Colombian PQR, the SIC no
        # Peruvian port, and a provider gets no other country's broadcasts.
        own = self._flows_of.get(caller.country, set())
        foreign = set().union(*self._flows_of.values()) - own
        asked = sorted(foreign & set(request.flows))
        if asked:
            raise PermissionDenied(f"the events of {asked} are not {caller.country}'s")
        return operator, list(request.flows), sorted(foreign)

    async def GetStreamHead(  # noqa: N802
        self, request: events_pb2.GetStreamHeadRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.GetStreamHeadResponse:
        """The highest position assigned so far."""
        return events_pb2.GetStreamHeadResponse(position=self.hub.head)
