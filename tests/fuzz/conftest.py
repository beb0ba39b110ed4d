"""Fixtures of the API fuzzing: one clearinghouse per test, with cases in several states."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from npc.app import Clearinghouse
from npc.core.clock import FakeClock
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import portability_pb2, pqr_pb2
from tests.conftest import Operators
from tests.fuzz.rpcs import (
    CODES,
    COUNTS,
    PATHS,
    VIOLATED,
    Outcome,
    Pools,
    Rpc,
    broken_invariants,
    discover,
    invoke,
)
from tests.helpers import block, port_end_to_end, port_request, rid


@dataclass
class Fuzzing:
    """The clearinghouse under fuzzing, a raw channel to it and the plausible values."""

    app: Clearinghouse
    clock: FakeClock
    channel: grpc.aio.Channel
    pools: Pools
    rpcs: dict[str, Rpc]

    async def call(self, rpc: Rpc, requests: list, token: str | None) -> Outcome:
        """Call `rpc` as the holder of `token`."""
        return await invoke(self.channel, rpc, requests, token)

    async def refresh(self) -> None:
        """Reload the plausible values from the database."""
        assert self.app.core is not None
        await self.pools.refresh(self.app.core.db, self.clock.now())

    async def stored(self) -> tuple[int, int]:
        """(last event id, stored command answers): what a rejected request must not change."""
        assert self.app.core is not None
        async with self.app.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) AS e,"
                " (SELECT count(*) FROM command_results) AS c"
            )
        assert row is not None
        return int(row["e"]), int(row["c"])


async def _seed_cases(fuzzing: Fuzzing, operators: Operators) -> None:
    """A pending port request, a completed port, a PQR: existing cases for wrong-state calls."""
    app, clock = fuzzing.app, fuzzing.clock
    await operators["claro"].call(
        "SubmitPortRequest", port_request(clock, numbers=[block("940000001")])
    )
    ported = await port_end_to_end(
        app, clock, operators["entel"], operators["movistar"], [block("940000002")]
    )
    for who, step in (
        ("movistar", portability_pb2.EXECUTION_STEP_DONOR_DISABLED),
        ("entel", portability_pb2.EXECUTION_STEP_RECIPIENT_ENABLED),
    ):
        await operators[who].call(
            "ConfirmPortExecution",
            portability_pb2.ConfirmPortExecutionRequest(
                request_id=rid(), port_request_id=ported.id, step=step
            ),
        )
    filed = await fuzzing.call(
        fuzzing.rpcs["npc.v1.PqrService/FilePqr"],
        [
            pqr_pb2.FilePqrRequest(
                request_id=rid(),
                kind=pqr_pb2.PQR_KIND_COMPLAINT,
                channel=pqr_pb2.PQR_CHANNEL_WEBSITE,
                subject=pqr_pb2.PQR_SUBJECT_BILLING,
                user=pqr_pb2.UserData(
                    name="Luz Marina Gómez",
                    document_type=pqr_pb2.USER_DOCUMENT_TYPE_CC,
                    document_number="52123456",
                    email="luz@example.co",
                    phone="3001234567",
                ),
                facts="Me cobraron dos veces el plan de noviembre.",
            )
        ],
        "dev-token-claro-co",
    )
    assert filed.code == grpc.StatusCode.OK, filed
    assert app.core is not None
    await app.core.settle()


@pytest.fixture
async def fuzzing(
    app: Clearinghouse, operators: Operators, clock: FakeClock
) -> AsyncIterator[Fuzzing]:
    """The clearinghouse with the Colombian providers and a few cases; after the test, the
    stored state must still satisfy every invariant."""
    assert app.core is not None and app.authenticator is not None and app.grpc is not None
    rpcs = {f"{r.service}/{r.name}": r for r in discover()}
    # Every served service is fuzzed, and every fuzzed service is served.
    assert {r.service for r in rpcs.values()} == set(app.grpc.service_names)
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{app.grpc_port}",
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    fuzzing = Fuzzing(app, clock, channel, Pools(), rpcs)
    await _seed_cases(fuzzing, operators)
    await fuzzing.refresh()
    try:
        yield fuzzing
    finally:
        await channel.close()
    await app.core.settle()
    problems = await broken_invariants(app.core.db)
    assert not problems, problems


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many fuzz cases ran (examples and RPC calls)."""
    if COUNTS["examples"]:
        terminalreporter.write_line(
            f"fuzz: {COUNTS['examples']} examples, {COUNTS['rpc calls']} RPC calls,"
            f" {COUNTS['replays']} replays, {COUNTS['invariant checks']} invariant checks"
        )
        terminalreporter.write_line(
            "fuzz answers: " + ", ".join(f"{code} {n}" for code, n in CODES.most_common())
        )
        if os.environ.get("NPC_FUZZ_PATHS"):
            for (path, code), n in sorted(PATHS.items()):
                terminalreporter.write_line(f"  {path} {code} {n}")
            for (method, name), n in VIOLATED.most_common(60):
                terminalreporter.write_line(f"  violated {method} {name} {n}")
