"""An empty request to a mutating RPC is refused with INVALID_ARGUMENT listing every required
field it lacks at once, not only the first: an integrator fixes a request in one round trip.

The RPCs are the `Command` entries of the flows' servicers, each called as a caller allowed on it
(`tests/authz/table.py`), so a new command is checked without anyone listing it here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import message_factory

import npc.flows
from npc.api.messages import Command
from npc.flows.pqr.seed import seed_colombia
from tests.authz.harness import METHODS, invoke
from tests.authz.table import AUTHZ
from tests.helpers import field_violations

# What an empty request of each command may leave unreported, and why: fields with a meaningful
# zero value (booleans, optional choices), or ones checked only once the others are known.
_ACCEPT = "a boolean: false is an answer (then other fields are required)"
OPTIONAL: dict[str, dict[str, str]] = {
    "InoperabilityService/CloseInoperability": {"closing_note": "optional text"},
    "InoperabilityService/RegisterInoperability": {"detail": "optional text"},
    "PortabilityService/AnswerPortRequest": {"accept": _ACCEPT},
    "PortabilityService/AnswerPriorConsultation": {"accept": _ACCEPT},
    "PortabilityService/ConfirmPortExecution": {"done_at": "optional: the call's instant"},
    "PortabilityService/SubmitPortRequest": {
        "form_number": "optional",
        "installation_date": "fixed-line ports only",
        "prior_consultation_id": "optional",
    },
    "PqrService/AnswerPqr": {"notified_at": "optional: the call's instant"},
    "PqrService/FilePqr": {"presented_at": "optional: the call's instant", "verbal": "a boolean"},
    "PqrService/FileReconsideration": {
        "appeal_in_subsidy": "a boolean",
        "presented_at": "optional: the call's instant",
    },
    "PqrService/RecordCallAttempt": {"answered": "a boolean", "complaint": "answered calls only"},
    "ReturnsService/AnswerReturn": {
        "accept": _ACCEPT,
        "disable_at": "when accepting only",
        "denial_reason": "optional, but with RETURN_DENIAL_REASON_OTHER",
    },
    "ReturnsService/RequestReturn": {"numbers": "optional: all of the port's"},
    "SguService/AnswerProblem": {"solved": "a boolean"},
    "SguService/RateAnswer": {"satisfied": "a boolean"},
    "SguService/RecordOutage": {"operator": "optional: every operator's service"},
    "SguService/RegisterProblem": {"office": "office channel only", "registered_by": "same"},
}


def command_rpcs() -> list[str]:
    """ "Service/Method" of every `Command` of every flow's servicer."""
    names: set[str] = set()
    for module in pkgutil.iter_modules(npc.flows.__path__):
        try:
            api = importlib.import_module(f"npc.flows.{module.name}.api")
        except ModuleNotFoundError:
            continue
        for servicer in vars(api).values():
            if isinstance(servicer, type):
                names |= {n for n, v in vars(servicer).items() if isinstance(v, Command)}
    found = sorted(rpc for rpc in METHODS if rpc.split("/")[1] in names)
    assert len(found) == len(names), "a Command of no service, or of two"
    return found


COMMANDS = command_rpcs()


@pytest.fixture
async def channel(app, clock) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to one clearinghouse, with the Colombian providers and the SIC registered."""
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as opened:
        yield opened


async def test_an_empty_command_lists_every_missing_field(channel) -> None:
    assert len(COMMANDS) > 30, COMMANDS
    unreported: dict[str, list[str]] = {}
    for rpc in COMMANDS:
        method = METHODS[rpc]
        empty = message_factory.GetMessageClass(method.input_type)()
        caller = sorted(AUTHZ[rpc].allowed)[0]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await invoke(channel, rpc, [empty] if method.client_streaming else empty, caller)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
            f"{rpc}: {refused.value.details()}"
        )
        reported = {f.split("[")[0].split(".")[0] for f in field_violations(refused.value)}
        expected = {f.name for f in method.input_type.fields} - set(OPTIONAL.get(rpc, {}))
        if expected - reported:
            unreported[rpc] = sorted(expected - reported)
    assert not unreported, f"required fields an empty request does not report: {unreported}"
