"""Helpers shared by the flows' API layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from npc.api.commands import CommandRunner
from npc.api.identity import current_caller
from npc.core.identity import Caller
from npc.store.database import Txn


class CommandServicer:
    """Base of servicers whose mutating RPCs run as idempotent commands of a handler."""

    commands: CommandRunner

    async def _command(
        self,
        method: str,
        request: Any,
        response_type: Any,
        fn: Callable[[Txn, Caller, Any], Awaitable[Any]],
    ) -> Any:
        caller = current_caller()
        return await self.commands.run(
            caller, method, request, response_type, lambda txn: fn(txn, caller, request)
        )


class _Rpc:
    """A servicer method declared by one line of its class's method table (see `Command`)."""

    def __init__(self, method: Callable[..., Awaitable[Any]], on: str) -> None:
        # Named through its class, so a typo fails at import; looked up on the instance at each
        # call, as the hand-written delegations did.
        self.method = method.__name__
        self.on = on
        self.rpc = ""

    def __set_name__(self, owner: type, name: str) -> None:
        if not any(callable(vars(base).get(name)) for base in owner.__mro__[1:]):
            raise TypeError(f"{owner.__name__}.{name} is not an RPC of its service")
        self.rpc = name

    def __get__(self, servicer: Any, owner: type | None = None) -> Any:
        if servicer is None:
            return self
        return self.bind(servicer, getattr(getattr(servicer, self.on), self.method))

    def bind(
        self, servicer: Any, target: Callable[..., Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """The servicer's method for this RPC, calling `target`."""
        raise NotImplementedError


class Command(_Rpc):
    """A mutating RPC, one line of a servicer's method table::

        SubmitPortRequest = Command(
            PortabilityHandler.submit_port_request,
            pb.PortRequest,
            parse=convert.port_request_submission,
            render=convert.port_request_message,
        )

    runs ``servicer.handler.submit_port_request(txn, caller, parse(request))`` as the idempotent
    command "SubmitPortRequest" (``CommandServicer._command``: the caller, the request id, the
    stored answer), whose answer ``render(result)`` is a `response`. `parse` turns the wire
    message into the flow's own command (the handler never sees protobuf) and `render` the
    handler's result into the wire answer; both run inside the command, so a refusal either raises
    is stored like any other. Without them the handler takes and returns the wire messages. `on`
    names the servicer's attribute holding the handler.
    """

    def __init__(
        self,
        method: Callable[..., Awaitable[Any]],
        response: Any,
        *,
        parse: Callable[[Any], Any] | None = None,
        render: Callable[[Any], Any] | None = None,
        on: str = "handler",
    ) -> None:
        super().__init__(method, on)
        self.response = response
        self.parse = parse
        self.render = render

    def bind(
        self, servicer: Any, target: Callable[..., Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """``servicer._command`` over `target`, parsing and rendering around it."""
        rpc, response = self.rpc, self.response
        parse, render = self.parse, self.render
        if parse is not None or render is not None:
            handler = target

            async def translated(txn: Txn, caller: Caller, request: Any) -> Any:
                result = await handler(txn, caller, request if parse is None else parse(request))
                return result if render is None else render(result)

            target = translated

        async def command(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await servicer._command(rpc, request, response, target)

        return command


class Query(_Rpc):
    """A read RPC, one line of a servicer's method table::

        GetPortRequest = Query(PortabilityHandler.get_port_request, render=convert.port_request_message)

    answers ``render(servicer.handler.get_port_request(caller, parse(request)))``, or
    ``...(parse(request))`` when `caller` is False (a lookup any identified caller may do).
    """

    def __init__(
        self,
        method: Callable[..., Awaitable[Any]],
        *,
        parse: Callable[[Any], Any] | None = None,
        render: Callable[[Any], Any] | None = None,
        on: str = "handler",
        caller: bool = True,
    ) -> None:
        super().__init__(method, on)
        self.caller = caller
        self.parse = parse
        self.render = render

    def bind(
        self, servicer: Any, target: Callable[..., Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """`target` with the caller, or without, parsing and rendering around it."""
        parse = self.parse or _same
        render = self.render or _same
        if not self.caller:

            async def lookup(request: Any, context: grpc.aio.ServicerContext) -> Any:
                return render(await target(parse(request)))

            return lookup

        async def read(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return render(await target(current_caller(), parse(request)))

        return read


def _same(value: Any) -> Any:
    return value
