"""Fixtures of the API fuzzing: one clearinghouse per test, with cases in several states."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import grpc
import pytest
from google.protobuf.message import Message

from npc.app import Clearinghouse
from npc.core.clock import FakeClock
from npc.flows.cancellations.handler import register_reporting_operator
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import (
    cancellations_pb2,
    common_pb2,
    inoperability_pb2,
    portability_pb2,
    pqr_pb2,
    sgu_pb2,
    suspension_pb2,
)
from tests.fuzz.rpcs import (
    CODES,
    COUNTS,
    FAILURES,
    PATHS,
    VIOLATED,
    Outcome,
    Pools,
    Rpc,
    broken_invariants,
    discover,
    invoke,
)
from tests.helpers import advance_to, block, day, port_request, rid, settle, ts


class Troubles(logging.Handler):
    """Errors logged by the server (a failed deadline or event hook never reaches a caller)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or "failed" in record.getMessage():
            self.seen.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")
            if record.exc_info:
                self.seen[-1] += "".join(traceback.format_exception(*record.exc_info))[-2000:]


CORPUS_SIZE = 40  # accepted requests kept per RPC, as seeds of mutants


@dataclass
class Fuzzing:
    """The clearinghouse under fuzzing, a raw channel to it, the plausible values, and a corpus
    of requests it accepted (by RPC path, with their callers) to mutate."""

    app: Clearinghouse
    clock: FakeClock
    channel: grpc.aio.Channel
    pools: Pools
    rpcs: dict[str, Rpc]
    corpus: dict[str, list[tuple[Message, str | None]]] = field(default_factory=dict)
    troubles: Troubles = field(default_factory=Troubles)

    async def call(self, rpc: Rpc, requests: list[Message], token: str | None) -> Outcome:
        """Call `rpc` as the holder of `token`; keep an accepted unary request in the corpus."""
        outcome = await invoke(self.channel, rpc, requests, token)
        if outcome.code == grpc.StatusCode.OK and not rpc.client_streaming:
            kept = self.corpus.setdefault(rpc.path, [])
            kept.append((requests[0], token))
            del kept[:-CORPUS_SIZE]
        return outcome

    async def must(self, path: str, request: Message, token: str) -> Message:
        """Call the RPC at `path` and return its answer, which must be OK."""
        outcome = await self.call(self.rpcs[path], [request], token)
        assert outcome.code == grpc.StatusCode.OK and outcome.response is not None, outcome
        return outcome.response

    async def refresh(self) -> None:
        """Reload the plausible values from the database."""
        assert self.app.core is not None
        await self.pools.refresh(self.app.core.db, self.clock.now())

    async def stored(self) -> tuple[int, int]:
        """(last event id, stored accepted answers): what a rejected request must not change
        (a refusal stores itself as the answer a retry gets, never an accepted one)."""
        assert self.app.core is not None
        async with self.app.core.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) AS e,"
                " (SELECT count(*) FROM command_results WHERE status_code = 0) AS c"
            )
        assert row is not None
        return int(row["e"]), int(row["c"])


async def _seed_cases(fuzzing: Fuzzing) -> None:
    """Cases in several states, filed through the fuzzer so that their requests seed the corpus:
    a pending port request, a completed port, a PQR."""
    app, clock = fuzzing.app, fuzzing.clock
    service = "/npc.v1.PortabilityService/"
    await fuzzing.must(
        service + "SubmitPortRequest",
        port_request(clock, numbers=[block("940000001")]),
        "dev-token-claro",
    )
    filed = await fuzzing.must(
        service + "SubmitPortRequest",
        port_request(clock, numbers=[block("940000002")]),
        "dev-token-entel",
    )
    assert isinstance(filed, portability_pb2.PortRequest)
    await fuzzing.must(
        service + "AnswerPortRequest",
        portability_pb2.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=filed.id, accept=True
        ),
        "dev-token-movistar",
    )
    # The default change window is 00:00-06:00, ending at the execution limit.
    window_opens = filed.execution_limit.ToDatetime(tzinfo=UTC) - timedelta(hours=6)
    await fuzzing.must(
        service + "SchedulePort",
        portability_pb2.SchedulePortRequest(
            request_id=rid(), port_request_id=filed.id, scheduled_at=ts(window_opens)
        ),
        "dev-token-entel",
    )
    await advance_to(app, clock, window_opens)
    for token, step in (
        ("dev-token-movistar", portability_pb2.EXECUTION_STEP_DONOR_DISABLED),
        ("dev-token-entel", portability_pb2.EXECUTION_STEP_RECIPIENT_ENABLED),
    ):
        await fuzzing.must(
            service + "ConfirmPortExecution",
            portability_pb2.ConfirmPortExecutionRequest(
                request_id=rid(), port_request_id=filed.id, step=step
            ),
            token,
        )
    await fuzzing.must(
        "/npc.v1.PqrService/FilePqr",
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
        ),
        "dev-token-claro-co",
    )
    await _seed_other_flows(fuzzing, filed.id)
    await settle(app)


async def _seed_other_flows(fuzzing: Fuzzing, ported_id: str) -> None:
    """Best effort: a case in the other flows, whose requests join the corpus when accepted."""
    clock = fuzzing.clock
    assert fuzzing.app.core is not None
    for operator in ("claro", "movistar"):
        await register_reporting_operator(
            fuzzing.app.core.db,
            fuzzing.app.settings.cancellations,
            operator=operator,
            since=(clock.now() - timedelta(days=3)).date(),
            subscribers=12_000_000,
            now=clock.now(),
        )
    document = common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677")
    attempts: list[tuple[str, Message, str]] = [
        (
            "/npc.v1.SguService/RegisterProblem",
            sgu_pb2.RegisterProblemRequest(
                request_id=rid(),
                channel=sgu_pb2.CHANNEL_WEB,
                subscriber=common_pb2.Subscriber(
                    name="Rosa Quispe Mamani", document=document, email="rosa@example.pe"
                ),
                number="940000001",
                subcategory="REC-01",
                description="Recargué 10 soles el lunes y no se acreditaron.",
            ),
            "dev-token-osiptel",
        ),
        (
            "/npc.v1.InoperabilityService/RegisterAttentionPoint",
            inoperability_pb2.RegisterAttentionPointRequest(
                request_id=rid(),
                code="CAC-LIMA-01",
                name="Punto CAC-LIMA-01",
                type=inoperability_pb2.ATTENTION_POINT_TYPE_STORE,
                address="Av. Javier Prado Este 123",
                location="San Isidro, Lima, Lima",
            ),
            "dev-token-claro",
        ),
        (
            "/npc.v1.InoperabilityService/RegisterInoperability",
            inoperability_pb2.RegisterInoperabilityRequest(
                request_id=rid(),
                attention_point_code="CAC-LIMA-01",
                request_type=inoperability_pb2.REQUEST_TYPE_CLAIMS,
                scenario=inoperability_pb2.SCENARIO_MASS_FAILURE,
                started_at=ts(clock.now()),
                detail="SIAC ÚNICO sin respuesta",
            ),
            "dev-token-claro",
        ),
        (
            "/npc.v1.CancellationsService/SubmitDailyReport",
            cancellations_pb2.SubmitDailyReportRequest(
                request_id=rid(),
                report_date=day((clock.now() - timedelta(days=1)).date()),
                records=[
                    cancellations_pb2.RequestRecord(
                        request_code="BJ-0001",
                        kind=cancellations_pb2.REQUEST_KIND_CANCELLATION,
                        service=cancellations_pb2.TRACKED_SERVICE_MOBILE_TELEPHONY,
                        channel=cancellations_pb2.ATTENTION_CHANNEL_STORE,
                        requested_at=ts(clock.now() - timedelta(days=1)),
                        subscriber_document=document,
                        service_number="910000001",
                        service_status=cancellations_pb2.SERVICE_STATUS_ACTIVE,
                        scheduled_date=day((clock.now() + timedelta(days=2)).date()),
                        state=cancellations_pb2.TRACKED_REQUEST_STATE_PENDING,
                    )
                ],
            ),
            "dev-token-claro",
        ),
        (
            "/npc.v1.SuspensionService/RequestSuspension",
            suspension_pb2.RequestSuspensionRequest(
                request_id=rid(),
                port_request_id=ported_id,
                number="940000002",
                bill_number="B001-000123",
                due_date=day((clock.now() - timedelta(days=8)).date()),
                owed=common_pb2.Money(amount="89.90", currency="PEN"),
            ),
            "dev-token-movistar",
        ),
    ]
    for path, request, token in attempts:
        await fuzzing.call(fuzzing.rpcs[path], [request], token)


@pytest.fixture
async def fuzzing(app: Clearinghouse, clock: FakeClock) -> AsyncIterator[Fuzzing]:
    """The clearinghouse with the Colombian providers and a few cases; after the test, the
    stored state must still satisfy every invariant."""
    assert app.core is not None and app.authenticator is not None and app.grpc is not None
    rpcs = {r.path: r for r in discover()}
    # Every served service is fuzzed, and every fuzzed service is served.
    assert {r.service for r in rpcs.values()} == set(app.grpc.service_names)
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{app.grpc_port}",
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    fuzzing = Fuzzing(app, clock, channel, Pools(), rpcs)
    logging.getLogger("npc").addHandler(fuzzing.troubles)
    await _seed_cases(fuzzing)
    await fuzzing.refresh()
    try:
        yield fuzzing
    finally:
        logging.getLogger("npc").removeHandler(fuzzing.troubles)
        await channel.close()
    await app.core.settle()
    problems = await broken_invariants(app.core.db)
    assert not problems, problems


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many fuzz cases ran (examples and RPC calls), and the first failures."""
    for failure in FAILURES[:3]:
        terminalreporter.write_line(f"fuzz failure: {failure}")
    if COUNTS["rpc calls"]:
        terminalreporter.write_line(
            f"fuzz: {COUNTS['examples']} examples, {COUNTS['sweep cases']} sweep cases,"
            f" {COUNTS['rpc calls']} RPC calls, {COUNTS['replays']} replays,"
            f" {COUNTS['invariant checks']} invariant checks"
        )
        terminalreporter.write_line(
            "fuzz answers: " + ", ".join(f"{code} {n}" for code, n in CODES.most_common())
        )
        if os.environ.get("NPC_FUZZ_PATHS"):
            for (path, code), n in sorted(PATHS.items()):
                terminalreporter.write_line(f"  {path} {code} {n}")
            for (method, name), n in VIOLATED.most_common(60):
                terminalreporter.write_line(f"  violated {method} {name} {n}")
