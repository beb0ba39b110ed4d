"""PortabilityService behaviour beyond the happy path: the checks the clearinghouse makes on its own
data, objections, authorization, idempotency, concurrency, many numbers and pagination."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2

from npc.v1 import common_pb2, events_pb2
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import (
    advance,
    advance_to,
    block,
    collect,
    day,
    field_violations,
    live_case,
    port_request,
    rid,
    rpc_error_details,
    settle,
    ts,
)

OPERATORS = ("claro", "movistar", "entel", "bitel")
# Numbers no other case of the module files: cases on the shared clearinghouse (`module_app`) each
# take one, as a fresh database would give them 940000001.
_unused_numbers = itertools.count(940_000_500)

TABLES = (
    "port_requests",
    "port_request_numbers",
    "prior_consultations",
    "events",
    "command_results",
    "deadlines",
    "compliance_records",
    "ported_numbers",
)


# ------------------------------------------------------------------------------ helpers


def at(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


async def row_counts(app) -> dict[str, int]:
    async with app.core.db.pool.acquire() as conn:
        # A refusal stores its answer (a retry gets it again); only accepted answers count.
        return {
            t: await conn.fetchval(
                "SELECT count(*) FROM command_results WHERE status_code = 0"
                if t == "command_results"
                else f"SELECT count(*) FROM {t}"
            )
            for t in TABLES
        }


async def fetchval(app, sql: str, *args: Any) -> Any:
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def rejected(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await `call`, which must fail with `code`."""
    try:
        answer = await call
    except grpc.aio.AioRpcError as error:
        assert error.code() == code, f"{error.code()}: {error.details()}"
        return error
    pytest.fail(f"accepted instead of {code.name}: {str(answer)[:300]!r}")


def precondition(
    error: grpc.aio.AioRpcError,
) -> list[error_details_pb2.PreconditionFailure.Violation]:
    found = []
    for detail in rpc_error_details(error).details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            found.extend(failure.violations)
    return found


def resource_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ResourceInfo | None:
    for detail in rpc_error_details(error).details:
        if detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            info = error_details_pb2.ResourceInfo()
            detail.Unpack(info)
            return info
    return None


async def addressed_positions(app, operator: str | None, after: int = 0) -> list[int]:
    """Positions of the log `operator` must receive (everything for the regulator)."""
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT position FROM events WHERE position > $1"
            " AND ($2::text IS NULL OR broadcast OR $2 = ANY(audience)) ORDER BY position",
            after,
            operator,
        )
    return [r["position"] for r in rows]


async def stream_of(app, operators, operator: str, after: int = 0) -> list[Any]:
    """What `operator`'s event stream delivers after `after`, once the log has settled."""
    await settle(app)
    expected = await addressed_positions(app, None if operator == "osiptel" else operator, after)
    if not expected:
        return []
    got = await collect(operators[operator], after, expected[-1])
    assert [e.position for e in got] == expected
    return got


def window_start(app, request: pb.PortRequest) -> datetime:
    """Opening of the last change window the request may be scheduled in."""
    timeline = app.portability.handler.timeline
    limit = at(request.execution_limit)
    window = timeline.window_containing(limit - timedelta(seconds=1))
    assert window is not None
    return window[0]


async def file(
    operators, clock, numbers: list[str] | list[common_pb2.NumberBlock], **kw: Any
) -> pb.PortRequest:
    recipient = kw.pop("recipient", "claro")
    blocks = [block(n) if isinstance(n, str) else n for n in numbers]
    return await operators[recipient].call(
        "SubmitPortRequest", port_request(clock, numbers=blocks, **kw)
    )


async def accept(operators, donor: str, case_id: str) -> pb.PortRequest:
    return await operators[donor].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=case_id, accept=True),
    )


async def object_to(
    operators, donor: str, case_id: str, reason: pb.ObjectionReason.ValueType, **kw: Any
) -> pb.PortRequest:
    return await operators[donor].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(
            request_id=rid(),
            port_request_id=case_id,
            accept=False,
            objection=pb.Objection(reason=reason, **kw),
        ),
    )


async def port_end_to_end(
    app, operators, clock, recipient: str, donor: str, numbers: list[Any]
) -> pb.PortRequest:
    """File, accept, schedule, execute and confirm a port; return the completed request."""
    filed = await file(operators, clock, numbers, recipient=recipient, donor=donor)
    await advance(app, clock, timedelta(minutes=1))
    answered = await accept(operators, donor, filed.id)
    assert answered.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    start = window_start(app, answered)
    scheduled = await operators[recipient].call(
        "SchedulePort",
        pb.SchedulePortRequest(request_id=rid(), port_request_id=filed.id, scheduled_at=ts(start)),
    )
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED
    await advance_to(app, clock, start)
    executed = await operators[recipient].call(
        "GetPortRequest", pb.GetPortRequestRequest(port_request_id=filed.id)
    )
    assert executed.state == pb.PORT_REQUEST_STATE_EXECUTED
    await operators[donor].call(
        "ConfirmPortExecution",
        pb.ConfirmPortExecutionRequest(
            request_id=rid(), port_request_id=filed.id, step=pb.EXECUTION_STEP_DONOR_DISABLED
        ),
    )
    done = await operators[recipient].call(
        "ConfirmPortExecution",
        pb.ConfirmPortExecutionRequest(
            request_id=rid(), port_request_id=filed.id, step=pb.EXECUTION_STEP_RECIPIENT_ENABLED
        ),
    )
    assert done.state == pb.PORT_REQUEST_STATE_COMPLETED
    await settle(app)
    return done


async def get(operators, who: str, case_id: str) -> pb.PortRequest:
    return await operators[who].call(
        "GetPortRequest", pb.GetPortRequestRequest(port_request_id=case_id)
    )


def dni(number: str = "44556677") -> common_pb2.IdentityDocument:
    return common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number=number)


def consultation_request(numbers: list[str], donor: str = "movistar", **kw: Any):
    return pb.SubmitPriorConsultationRequest(
        request_id=kw.pop("request_id", rid()),
        donor=donor,
        service=kw.pop("service", common_pb2.SERVICE_TYPE_MOBILE),
        document=dni(),
        numbers=[block(n) for n in numbers],
        **kw,
    )


# ------------------------------------------------------------- checks on the clearinghouse data


@pytest.mark.parametrize(
    ("donor", "numbers", "violation", "subject"),
    [
        pytest.param(
            "movistar",
            ["960000001"],
            "NUMBER_NOT_SERVED_BY_DONOR",
            "numbers:960000001",
            id="entel's number filed against movistar",
        ),
        pytest.param(
            "movistar",
            ["910000001"],
            "NUMBER_NOT_SERVED_BY_DONOR",
            "numbers:910000001",
            id="the recipient's own number",
        ),
        pytest.param(
            "movistar",
            ["930000001"],
            "NUMBER_NOT_IN_PLAN",
            "numbers:930000001",
            id="number outside the numbering plan",
        ),
        pytest.param(
            "movistar",
            [block("949999999", "950000001")],
            "NUMBER_NOT_IN_PLAN",
            "numbers:950000000",
            id="range running past the donor's range",
        ),
        pytest.param(
            "entel",
            ["960000001", "940000001"],
            "NUMBER_NOT_SERVED_BY_DONOR",
            "numbers:940000001",
            id="one foreign number among good ones",
        ),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_number_must_be_served_by_the_donor(
    module_app, module_operators, module_clock, donor, numbers, violation, subject
):
    app, operators, clock = module_app, module_operators, module_clock
    before = await row_counts(app)
    error = await rejected(
        file(operators, clock, numbers, donor=donor), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert [(v.type, v.subject) for v in precondition(error)] == [(violation, subject)]
    assert await row_counts(app) == before


async def test_fixed_number_must_be_in_the_donors_fixed_range(app, operators, clock):
    before = await row_counts(app)
    # 12000001 is a movistar fixed number; claro cannot take it from entel.
    error = await rejected(
        file(
            operators,
            clock,
            ["12000001"],
            recipient="claro",
            donor="entel",
            service=common_pb2.SERVICE_TYPE_FIXED,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert precondition(error)[0].type == "NUMBER_NOT_SERVED_BY_DONOR"
    assert await row_counts(app) == before


async def test_prior_consultation_number_must_be_served_by_the_donor(app, operators, clock):
    before = await row_counts(app)
    error = await rejected(
        operators["claro"].call("SubmitPriorConsultation", consultation_request(["960000001"])),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert precondition(error)[0].type == "NUMBER_NOT_SERVED_BY_DONOR"
    assert await row_counts(app) == before


@pytest.mark.parametrize(
    ("donor", "number", "text"),
    [
        pytest.param("claro", "910000001", "differ", id="recipient is the donor"),
        pytest.param("tuenti", "940000001", "unknown", id="unknown donor"),
        pytest.param("osiptel", "940000001", "unknown", id="the regulator as donor"),
    ],
)
@pytest.mark.parametrize("method", ["SubmitPortRequest", "SubmitPriorConsultation"])
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_donor_must_be_another_registered_operator(
    module_app, module_operators, module_clock, method, donor, number, text
):
    app, operators, clock = module_app, module_operators, module_clock
    before = await row_counts(app)
    request = (
        port_request(clock, donor=donor, numbers=[block(number)])
        if method == "SubmitPortRequest"
        else consultation_request([number], donor=donor)
    )
    error = await rejected(
        operators["claro"].call(method, request), grpc.StatusCode.INVALID_ARGUMENT
    )
    violations = field_violations(error)
    assert list(violations) == ["donor"]
    assert text in violations["donor"]
    assert await row_counts(app) == before


async def test_a_ported_number_is_requested_from_the_operator_serving_it(app, operators, clock):
    done = await port_end_to_end(app, operators, clock, "claro", "movistar", ["940000001"])
    assert (
        await fetchval(
            app, "SELECT serving_operator FROM ported_numbers WHERE number = $1", "940000001"
        )
        == "claro"
    )

    # Movistar holds the range but no longer serves the number: it cannot be the donor.
    before = await row_counts(app)
    error = await rejected(
        file(operators, clock, ["940000001"], recipient="bitel", donor="movistar"),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert [(v.type, v.subject) for v in precondition(error)] == [
        ("NUMBER_NOT_SERVED_BY_DONOR", "numbers:940000001")
    ]
    assert await row_counts(app) == before

    # Claro serves it now: bitel files against claro and the request goes ahead.
    second = await file(operators, clock, ["940000001"], recipient="bitel", donor="claro")
    assert second.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    assert second.id != done.id
    assert (second.recipient, second.donor) == ("bitel", "claro")

    # And the number can go home: claro's donor answer lets bitel port it on to its own network.
    await advance(app, clock, timedelta(minutes=1))
    answered = await accept(operators, "claro", second.id)
    assert answered.state == pb.PORT_REQUEST_STATE_ADMISSIBLE


async def test_a_number_ported_back_to_its_range_holder_leaves_the_ported_registry(
    app, operators, clock
):
    await port_end_to_end(app, operators, clock, "claro", "movistar", ["940000001"])
    await port_end_to_end(app, operators, clock, "movistar", "claro", ["940000001"])
    assert (
        await fetchval(app, "SELECT count(*) FROM ported_numbers WHERE number = '940000001'") == 0
    )
    # Back home: movistar is the donor again for a new request.
    again = await file(operators, clock, ["940000001"], recipient="entel", donor="movistar")
    assert again.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR


# ------------------------------------------------------------------------------ objections

OBJECTION_CODES = {
    pb.OBJECTION_REASON_SERVICE_SUSPENDED: "REC01PRT01",
    pb.OBJECTION_REASON_NUMBER_NOT_OWNED: "REC01PRT05",
    pb.OBJECTION_REASON_WRONG_SERVICE_TYPE: "REC01PRT06",
    pb.OBJECTION_REASON_DOCUMENT_MISMATCH: "REC01PRT07",
    pb.OBJECTION_REASON_WRONG_MODALITY: "REC01PRT08",
    pb.OBJECTION_REASON_CONTRACT_TERMINATED: "",
    pb.OBJECTION_REASON_JUDICIAL_SUSPENSION: "",
    pb.OBJECTION_REASON_INSOLVENCY: "",
    pb.OBJECTION_REASON_MISUSE: "",
}


def test_every_objection_reason_is_covered():
    reasons = set(pb.ObjectionReason.values()) - {
        pb.OBJECTION_REASON_UNSPECIFIED,
        pb.OBJECTION_REASON_DEBT,
    }
    assert reasons == set(OBJECTION_CODES)


@pytest.mark.parametrize(
    "reason", list(OBJECTION_CODES), ids=[pb.ObjectionReason.Name(r) for r in OBJECTION_CODES]
)
async def test_objection_rejects_the_request(app, operators, clock, reason):
    filed = await file(operators, clock, ["940000001", "940000002"])
    await settle(app)
    from_position = app.core.hub.head
    await advance(app, clock, timedelta(minutes=2))

    answer = await object_to(
        operators, "movistar", filed.id, reason, detail="según sistema comercial"
    )

    assert answer.state == pb.PORT_REQUEST_STATE_REJECTED
    assert answer.objection.reason == reason
    assert answer.objection.code == OBJECTION_CODES[reason]
    assert answer.objection.detail == "según sistema comercial"
    assert answer.rejection_reason
    assert at(answer.closed_at) == clock.now()
    assert at(answer.answered_at) == clock.now()
    assert not answer.donor_silent
    stored = await get(operators, "claro", filed.id)
    assert stored == answer
    # The numbers are free again and no deadline is left to fire.
    assert (
        await fetchval(
            app,
            "SELECT count(*) FROM port_request_numbers WHERE port_request_id = $1 AND live",
            filed.id,
        )
        == 0
    )
    assert (
        await fetchval(
            app,
            "SELECT count(*) FROM deadlines WHERE case_id = $1 AND fired_at IS NULL"
            " AND cancelled_at IS NULL",
            filed.id,
        )
        == 0
    )

    for party in ("claro", "movistar"):
        events = await stream_of(app, operators, party, from_position)
        rabdcp = [e for e in events if e.code == "RABDCP" and e.case_id == filed.id]
        assert len(rabdcp) == 1, [(e.type, e.code) for e in events]
        body = rabdcp[0].port_request.port_request
        assert body.state == pb.PORT_REQUEST_STATE_REJECTED
        assert body.objection.code == OBJECTION_CODES[reason]
    for outsider in ("entel", "bitel"):
        assert not [
            e
            for e in await stream_of(app, operators, outsider, from_position)
            if e.case_id == filed.id
        ]

    # A late silence deadline must not resurrect the request.
    await advance(app, clock, timedelta(minutes=10))
    assert (await get(operators, "claro", filed.id)).state == pb.PORT_REQUEST_STATE_REJECTED


def debt(**kw: Any) -> pb.Debt:
    values = {"amount": "120.50", "currency": "PEN", "due_date": day("2026-10-31"), **kw}
    return pb.Debt(
        owed=common_pb2.Money(amount=values["amount"], currency=values["currency"]),
        due_date=values["due_date"] or None,
        bill_number=values.get("bill_number", ""),
    )


@pytest.mark.parametrize(
    ("missing", "path"),
    [
        ("amount", "objection.debt.owed.amount"),
        ("currency", "objection.debt.owed.currency"),
        ("due_date", "objection.debt.due_date"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_debt_objection_needs_amount_currency_and_due_date(
    module_app, module_operators, module_clock, missing, path
):
    app, operators, clock = module_app, module_operators, module_clock
    filed = await file(operators, clock, [str(next(_unused_numbers))])
    await settle(app)
    before = await row_counts(app)

    error = await rejected(
        object_to(
            operators, "movistar", filed.id, pb.OBJECTION_REASON_DEBT, debt=debt(**{missing: ""})
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    assert list(field_violations(error)) == [path]
    await settle(app)
    assert await row_counts(app) == before
    current = await get(operators, "claro", filed.id)
    assert current.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    assert not current.HasField("objection")
    assert not current.HasField("answered_at")


async def test_complete_debt_objection_waits_for_proof_of_payment(app, operators, clock):
    filed = await file(operators, clock, ["940000001"])
    await settle(app)
    from_position = app.core.hub.head
    await advance(app, clock, timedelta(minutes=3))

    objected = await object_to(
        operators,
        "movistar",
        filed.id,
        pb.OBJECTION_REASON_DEBT,
        debt=debt(bill_number="B001-000123"),
    )

    assert objected.state == pb.PORT_REQUEST_STATE_OBJECTED_DEBT
    assert objected.objection.code == "REC01PRT09"
    assert objected.objection.debt.owed.amount == "120.50"
    assert objected.objection.debt.owed.currency == "PEN"
    assert objected.objection.debt.due_date == day("2026-10-31")
    assert objected.objection.debt.bill_number == "B001-000123"
    assert not objected.HasField("closed_at")
    occ = [e for e in await stream_of(app, operators, "claro", from_position) if e.code == "OCC"]
    assert len(occ) == 1 and occ[0].case_id == filed.id
    assert occ[0].port_request.port_request.objection.debt.owed.amount == "120.50"

    # The number stays blocked while the objection is open.
    blocked = await rejected(
        file(operators, clock, ["940000001"], recipient="entel"), grpc.StatusCode.ALREADY_EXISTS
    )
    assert live_case(blocked) == (filed.id, "940000001")

    # APD: proof of payment lifts it, APDC reaches the donor, SPR follows.
    mark = app.core.hub.head
    lifted = await operators["claro"].call(
        "SubmitDebtPaymentProof",
        pb.SubmitDebtPaymentProofRequest(
            request_id=rid(),
            port_request_id=filed.id,
            receipt_number="REC-998877",
            paid_at=ts(clock.now() - timedelta(minutes=1)),
        ),
    )
    assert lifted.state == pb.PORT_REQUEST_STATE_ADMISSIBLE
    codes = [e.code for e in await stream_of(app, operators, "movistar", mark)]
    assert "APDC" in codes and "SPR" in codes


async def test_prior_consultation_objected_is_rejected(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    consultation = await claro.call(
        "SubmitPriorConsultation", consultation_request(["940000001", "940000002"])
    )
    assert consultation.state == pb.PRIOR_CONSULTATION_STATE_AWAITING_DONOR
    assert consultation.id.startswith("CP")
    await settle(app)
    ecpc = [e for e in await stream_of(app, operators, "movistar") if e.code == "ECPC"]
    assert [e.case_id for e in ecpc] == [consultation.id]
    mark = app.core.hub.head

    answer = await movistar.call(
        "AnswerPriorConsultation",
        pb.AnswerPriorConsultationRequest(
            request_id=rid(),
            consultation_id=consultation.id,
            accept=False,
            objection=pb.Objection(reason=pb.OBJECTION_REASON_DOCUMENT_MISMATCH),
        ),
    )

    assert answer.state == pb.PRIOR_CONSULTATION_STATE_REJECTED
    assert answer.objection.code == "REC01PRT07"
    events = await stream_of(app, operators, "claro", mark)
    assert [(e.code, e.case_id) for e in events] == [("CPRABD", consultation.id)]
    assert events[0].prior_consultation.objection.code == "REC01PRT07"
    assert events[0].prior_consultation.state == pb.PRIOR_CONSULTATION_STATE_REJECTED
    # A rejected consultation cannot back a port request.
    error = await rejected(
        file(operators, clock, ["940000001"], prior_consultation_id=consultation.id),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert precondition(error)[0].type == "PRIOR_CONSULTATION"
    # The consultation blocks nothing: a port request without it is accepted.
    assert (await file(operators, clock, ["940000001"])).state == (
        pb.PORT_REQUEST_STATE_AWAITING_DONOR
    )


async def test_prior_consultation_accepted_is_admissible(app, operators, clock):
    claro, movistar = operators["claro"], operators["movistar"]
    consultation = await claro.call("SubmitPriorConsultation", consultation_request(["940000001"]))
    await settle(app)
    mark = app.core.hub.head
    await advance(app, clock, timedelta(minutes=1))

    answer = await movistar.call(
        "AnswerPriorConsultation",
        pb.AnswerPriorConsultationRequest(
            request_id=rid(), consultation_id=consultation.id, accept=True
        ),
    )

    assert answer.state == pb.PRIOR_CONSULTATION_STATE_ADMISSIBLE
    assert not answer.donor_silent
    assert at(answer.answered_at) == clock.now()
    events = await stream_of(app, operators, "claro", mark)
    assert [(e.code, e.case_id) for e in events] == [("CPPR", consultation.id)]
    read = await claro.call(
        "GetPriorConsultation", pb.GetPriorConsultationRequest(consultation_id=consultation.id)
    )
    assert read == answer
    # An admissible consultation backs the port request for the same donor...
    filed = await file(operators, clock, ["940000001"], prior_consultation_id=consultation.id)
    assert filed.prior_consultation_id == consultation.id
    # ...but not one filed against another donor.
    error = await rejected(
        file(
            operators,
            clock,
            ["960000001"],
            donor="entel",
            prior_consultation_id=consultation.id,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert precondition(error)[0].type == "PRIOR_CONSULTATION"
    # Another recipient cannot use claro's consultation.
    error = await rejected(
        file(
            operators,
            clock,
            ["940000005"],
            recipient="bitel",
            prior_consultation_id=consultation.id,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert precondition(error)[0].type == "PRIOR_CONSULTATION"


async def test_answering_twice_is_refused(app, operators, clock):
    filed = await file(operators, clock, ["940000001"])
    await accept(operators, "movistar", filed.id)
    await settle(app)
    before = await row_counts(app)
    await rejected(
        object_to(operators, "movistar", filed.id, pb.OBJECTION_REASON_MISUSE),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert await row_counts(app) == before
    assert (await get(operators, "claro", filed.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE


# ---------------------------------------------------------------------------- authorization


@pytest.fixture
async def raw_client(app):
    """Clients with hand-made credentials."""
    made: list[OperatorClient] = []

    def make(token: str) -> OperatorClient:
        client = OperatorClient(f"127.0.0.1:{app.grpc_port}", token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((), id="no metadata"),
        pytest.param((("authorization", "Bearer wrong-token"),), id="unknown token"),
        pytest.param((("authorization", "Bearer "),), id="empty bearer"),
        pytest.param((("authorization", "Basic dev-token-claro"),), id="basic scheme"),
        pytest.param((("authorization", "dev-token-claro"),), id="no scheme"),
        pytest.param((("authorization", "Bearer DEV-TOKEN-CLARO"),), id="wrong case"),
        pytest.param((("x-api-key", "dev-token-claro"),), id="other header"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_unidentified_callers_are_refused(
    module_app, module_operators, module_clock, metadata
):
    app, operators, clock = module_app, module_operators, module_clock
    stub = operators["claro"].portability
    events = operators["claro"].events
    filed = await file(operators, clock, [str(next(_unused_numbers))])
    await settle(app)
    before = await row_counts(app)

    for call in (
        stub.SubmitPortRequest(
            port_request(clock, numbers=[block("940000002")]), metadata=metadata
        ),
        stub.AnswerPortRequest(
            pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
            metadata=metadata,
        ),
        stub.GetPortRequest(pb.GetPortRequestRequest(port_request_id=filed.id), metadata=metadata),
        stub.ListPortRequests(pb.ListPortRequestsRequest(), metadata=metadata),
        events.GetStreamHead(
            events_pb2.GetStreamHeadRequest(),
            metadata=metadata,
        ),
    ):
        await rejected(call, grpc.StatusCode.UNAUTHENTICATED)

    stream = events.Subscribe(events_pb2.SubscribeRequest(), metadata=metadata)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(stream.read(), 5)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stream.cancel()
    assert await row_counts(app) == before
    assert (await get(operators, "claro", filed.id)).state == pb.PORT_REQUEST_STATE_AWAITING_DONOR


async def test_unknown_token_client_is_refused(app, raw_client, clock):
    client = raw_client("not-a-token")
    await rejected(
        client.call("SubmitPortRequest", port_request(clock)), grpc.StatusCode.UNAUTHENTICATED
    )
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == 0


async def _admissible(app, operators, clock, number: str = "940000001") -> pb.PortRequest:
    filed = await file(operators, clock, [number])
    answered = await accept(operators, "movistar", filed.id)
    await settle(app)
    return answered


def _answer(case_id: str) -> pb.AnswerPortRequestRequest:
    return pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=case_id, accept=True)


def _object(case_id: str) -> pb.AnswerPortRequestRequest:
    return pb.AnswerPortRequestRequest(
        request_id=rid(),
        port_request_id=case_id,
        accept=False,
        objection=pb.Objection(reason=pb.OBJECTION_REASON_SERVICE_SUSPENDED),
    )


def _schedule(app, request: pb.PortRequest) -> pb.SchedulePortRequest:
    return pb.SchedulePortRequest(
        request_id=rid(),
        port_request_id=request.id,
        scheduled_at=ts(window_start(app, request)),
    )


def _confirm(case_id: str, step: pb.ExecutionStep.ValueType) -> pb.ConfirmPortExecutionRequest:
    return pb.ConfirmPortExecutionRequest(request_id=rid(), port_request_id=case_id, step=step)


def _proof(case_id: str, clock) -> pb.SubmitDebtPaymentProofRequest:
    return pb.SubmitDebtPaymentProofRequest(
        request_id=rid(),
        port_request_id=case_id,
        receipt_number="R-1",
        paid_at=ts(clock.now()),
    )


REFUSALS = {
    # (state of the request, caller, method, builder)
    "third operator accepts": (
        "awaiting",
        "entel",
        "AnswerPortRequest",
        lambda a, r, c: _answer(r.id),
    ),
    "third operator objects": (
        "awaiting",
        "bitel",
        "AnswerPortRequest",
        lambda a, r, c: _object(r.id),
    ),
    "recipient accepts its own request": (
        "awaiting",
        "claro",
        "AnswerPortRequest",
        lambda a, r, c: _answer(r.id),
    ),
    "recipient objects its own request": (
        "awaiting",
        "claro",
        "AnswerPortRequest",
        lambda a, r, c: _object(r.id),
    ),
    "regulator answers": (
        "awaiting",
        "osiptel",
        "AnswerPortRequest",
        lambda a, r, c: _answer(r.id),
    ),
    "donor schedules": ("admissible", "movistar", "SchedulePort", lambda a, r, c: _schedule(a, r)),
    "third operator schedules": (
        "admissible",
        "entel",
        "SchedulePort",
        lambda a, r, c: _schedule(a, r),
    ),
    "regulator schedules": (
        "admissible",
        "osiptel",
        "SchedulePort",
        lambda a, r, c: _schedule(a, r),
    ),
    "donor presents payment proof": (
        "awaiting",
        "movistar",
        "SubmitDebtPaymentProof",
        lambda a, r, c: _proof(r.id, c),
    ),
    "donor reports installation": (
        "awaiting",
        "movistar",
        "ReportInstallation",
        lambda a, r, c: pb.ReportInstallationRequest(
            request_id=rid(), port_request_id=r.id, installation_date=day("2026-11-23")
        ),
    ),
    "recipient confirms the donor's step": (
        "admissible",
        "claro",
        "ConfirmPortExecution",
        lambda a, r, c: _confirm(r.id, pb.EXECUTION_STEP_DONOR_DISABLED),
    ),
    "donor confirms the recipient's step": (
        "admissible",
        "movistar",
        "ConfirmPortExecution",
        lambda a, r, c: _confirm(r.id, pb.EXECUTION_STEP_RECIPIENT_ENABLED),
    ),
    "third operator confirms": (
        "admissible",
        "entel",
        "ConfirmPortExecution",
        lambda a, r, c: _confirm(r.id, pb.EXECUTION_STEP_DONOR_DISABLED),
    ),
    "regulator files a port request": (
        "awaiting",
        "osiptel",
        "SubmitPortRequest",
        lambda a, r, c: port_request(c, numbers=[block("940000009")]),
    ),
    "regulator files a prior consultation": (
        "awaiting",
        "osiptel",
        "SubmitPriorConsultation",
        lambda a, r, c: consultation_request(["940000009"]),
    ),
    "third operator reads the request": (
        "awaiting",
        "entel",
        "GetPortRequest",
        lambda a, r, c: pb.GetPortRequestRequest(port_request_id=r.id),
    ),
}


# The refusals store nothing and never move the clock: they share one clearinghouse.
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("name"), list(REFUSALS))
async def test_callers_act_only_in_their_role(module_app, module_operators, module_clock, name):
    app, operators, clock = module_app, module_operators, module_clock
    state, caller, method, build = REFUSALS[name]
    number = str(next(_unused_numbers))
    if state == "awaiting":
        request = await file(operators, clock, [number])
    else:
        request = await _admissible(app, operators, clock, number)
    await settle(app)
    before = await row_counts(app)
    snapshot = await get(operators, "claro", request.id)

    # A third operator is no party: the request does not exist for it. A party in the wrong
    # role and the regulator know the request, and are denied.
    await rejected(
        operators[caller].call(method, build(app, request, clock)),
        grpc.StatusCode.NOT_FOUND
        if caller in ("entel", "bitel")
        else grpc.StatusCode.PERMISSION_DENIED,
    )

    await settle(app)
    assert await row_counts(app) == before
    assert await get(operators, "claro", request.id) == snapshot


async def test_prior_consultation_roles(app, operators, clock):
    consultation = await operators["claro"].call(
        "SubmitPriorConsultation", consultation_request(["940000001"])
    )
    await settle(app)
    before = await row_counts(app)
    read = pb.GetPriorConsultationRequest(consultation_id=consultation.id)
    for caller, code in (
        ("claro", grpc.StatusCode.PERMISSION_DENIED),
        ("entel", grpc.StatusCode.NOT_FOUND),
        ("osiptel", grpc.StatusCode.PERMISSION_DENIED),
    ):
        await rejected(
            operators[caller].call(
                "AnswerPriorConsultation",
                pb.AnswerPriorConsultationRequest(
                    request_id=rid(), consultation_id=consultation.id, accept=True
                ),
            ),
            code,
        )
    await rejected(operators["bitel"].call("GetPriorConsultation", read), grpc.StatusCode.NOT_FOUND)
    for reader in ("claro", "movistar", "osiptel"):
        assert (await operators[reader].call("GetPriorConsultation", read)).id == consultation.id
    assert await row_counts(app) == before


async def test_regulator_reads_everything(app, operators, clock):
    first = await file(operators, clock, ["940000001"])
    second = await file(operators, clock, ["980000001"], recipient="entel", donor="bitel")
    osiptel = operators["osiptel"]
    for request in (first, second):
        assert (await get(operators, "osiptel", request.id)) == request
    listed = await osiptel.call("ListPortRequests", pb.ListPortRequestsRequest())
    assert {r.id for r in listed.port_requests} == {first.id, second.id}
    # Parties see their own; outsiders see none of it.
    entel = await operators["entel"].call("ListPortRequests", pb.ListPortRequestsRequest())
    assert [r.id for r in entel.port_requests] == [second.id]
    movistar = await operators["movistar"].call("ListPortRequests", pb.ListPortRequestsRequest())
    assert [r.id for r in movistar.port_requests] == [first.id]


async def test_unknown_case_is_not_found(app, operators):
    error = await rejected(
        operators["claro"].call(
            "GetPortRequest", pb.GetPortRequestRequest(port_request_id="SP0000009999")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    info = resource_info(error)
    assert info is not None and info.resource_name == "SP0000009999"
    await rejected(
        operators["movistar"].call("AnswerPortRequest", _answer("SP0000009999")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await fetchval(app, "SELECT count(*) FROM command_results WHERE status_code = 0") == 0


# ------------------------------------------------------------------------------ idempotency


async def test_retry_returns_the_first_answer_and_creates_nothing(app, operators, clock):
    claro = operators["claro"]
    request = port_request(clock, numbers=[block("940000001")])
    first = await claro.call("SubmitPortRequest", request)
    await settle(app)
    before = await row_counts(app)

    await advance(app, clock, timedelta(minutes=1))
    retry = await claro.call("SubmitPortRequest", request)
    await settle(app)

    assert retry == first
    assert retry.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert await row_counts(app) == before
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == 1
    assert (
        await fetchval(
            app,
            "SELECT count(*) FROM command_results WHERE caller = 'claro' AND request_id = $1",
            request.request_id,
        )
        == 1
    )

    # Even once the case moved on, the retry still gets the answer of the first attempt.
    await accept(operators, "movistar", first.id)
    await settle(app)
    before = await row_counts(app)
    assert await claro.call("SubmitPortRequest", request) == first
    assert await row_counts(app) == before


async def test_retry_of_a_donor_answer(app, operators, clock):
    filed = await file(operators, clock, ["940000001"])
    answer = _answer(filed.id)
    first = await operators["movistar"].call("AnswerPortRequest", answer)
    await settle(app)
    before = await row_counts(app)
    assert await operators["movistar"].call("AnswerPortRequest", answer) == first
    await settle(app)
    assert await row_counts(app) == before


async def test_request_id_reused_for_different_content_is_refused(app, operators, clock):
    claro = operators["claro"]
    first = port_request(clock, numbers=[block("940000001")])
    await claro.call("SubmitPortRequest", first)
    await settle(app)
    before = await row_counts(app)

    changed = port_request(clock, numbers=[block("940000002")], request_id=first.request_id)
    error = await rejected(
        claro.call("SubmitPortRequest", changed), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert list(field_violations(error)) == ["request_id"]
    # Same key, another method.
    error = await rejected(
        claro.call(
            "SchedulePort",
            pb.SchedulePortRequest(
                request_id=first.request_id,
                port_request_id="SP0000000001",
                scheduled_at=ts(clock.now() + timedelta(hours=14)),
            ),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == ["request_id"]
    await settle(app)
    assert await row_counts(app) == before
    assert (
        await fetchval(app, "SELECT count(*) FROM port_request_numbers WHERE number = '940000002'")
        == 0
    )


async def test_request_ids_are_per_caller(app, operators, clock):
    one = await operators["claro"].call(
        "SubmitPortRequest", port_request(clock, numbers=[block("940000001")], request_id="same")
    )
    two = await operators["entel"].call(
        "SubmitPortRequest", port_request(clock, numbers=[block("940000002")], request_id="same")
    )
    assert one.id != two.id
    assert (one.recipient, two.recipient) == ("claro", "entel")


async def test_retry_of_a_refused_schedule_returns_the_same_refusal(app, operators, clock):
    """FLEP: a schedule beyond the execution limit is refused, and the refusal is recorded (the
    FLEP message is kept). A retry gets the same refusal and records nothing more."""
    admissible = await _admissible(app, operators, clock)
    too_late = window_start(app, admissible) + timedelta(days=1)
    assert too_late > at(admissible.execution_limit)
    mark = app.core.hub.head
    before = await row_counts(app)
    request = pb.SchedulePortRequest(
        request_id=rid(), port_request_id=admissible.id, scheduled_at=ts(too_late)
    )

    first = await rejected(
        operators["claro"].call("SchedulePort", request), grpc.StatusCode.OUT_OF_RANGE
    )
    assert list(field_violations(first)) == ["scheduled_at"]
    await settle(app)
    after_first = await row_counts(app)
    assert after_first["events"] == before["events"] + 1
    assert after_first["command_results"] == before["command_results"]  # the refusal: below
    flep = [e for e in await stream_of(app, operators, "claro", mark) if e.code == "FLEP"]
    assert len(flep) == 1 and flep[0].case_id == admissible.id
    stored = await fetchval(
        app,
        "SELECT status_code FROM command_results WHERE caller = 'claro' AND request_id = $1",
        request.request_id,
    )
    assert stored == code_pb2.OUT_OF_RANGE

    await advance(app, clock, timedelta(minutes=1))
    retry = await rejected(
        operators["claro"].call("SchedulePort", request), grpc.StatusCode.OUT_OF_RANGE
    )
    await settle(app)
    assert retry.details() == first.details()
    assert rpc_error_details(retry) == rpc_error_details(first)
    assert await row_counts(app) == after_first
    assert (await get(operators, "claro", admissible.id)).state == pb.PORT_REQUEST_STATE_ADMISSIBLE

    # The refusal leaves the request schedulable inside the limit.
    scheduled = await operators["claro"].call("SchedulePort", _schedule(app, admissible))
    assert scheduled.state == pb.PORT_REQUEST_STATE_SCHEDULED


async def test_concurrent_identical_retries_create_one_request(app, operators, clock):
    request = port_request(clock, numbers=[block("940000001", "940000003")])
    answers = await asyncio.gather(
        *(operators["claro"].call("SubmitPortRequest", request) for _ in range(5))
    )
    assert len({a.id for a in answers}) == 1
    assert all(a == answers[0] for a in answers)
    await settle(app)
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == 1
    assert await fetchval(app, "SELECT count(*) FROM port_request_numbers") == 3
    assert await fetchval(app, "SELECT count(*) FROM command_results") == 1
    sp = await fetchval(app, "SELECT count(*) FROM events WHERE code = 'SP'")
    assert sp == 1


# ------------------------------------------------------------------------------ concurrency


async def test_two_recipients_race_for_one_number(app, operators, clock):
    claro_request = port_request(clock, numbers=[block("940000001")])
    entel_request = port_request(clock, numbers=[block("940000001")])
    results = await asyncio.gather(
        operators["claro"].call("SubmitPortRequest", claro_request),
        operators["entel"].call("SubmitPortRequest", entel_request),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, pb.PortRequest)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0].code() == grpc.StatusCode.ALREADY_EXISTS
    winner = winners[0]
    assert live_case(losers[0]) == (winner.id, "940000001")
    loser = "entel" if winner.recipient == "claro" else "claro"
    loser_request = entel_request if loser == "entel" else claro_request
    await settle(app)
    assert await fetchval(app, "SELECT count(*) FROM port_requests") == 1
    assert await fetchval(app, "SELECT count(*) FROM command_results WHERE status_code = 0") == 1
    assert (
        await fetchval(app, "SELECT count(*) FROM port_request_numbers WHERE number = '940000001'")
        == 1
    )

    # The loser's retry gets the same refusal while the winner's request is live.
    await rejected(
        operators[loser].call("SubmitPortRequest", loser_request), grpc.StatusCode.ALREADY_EXISTS
    )

    # Once the donor objects the winner's request, the number is free again.
    await object_to(operators, "movistar", winner.id, pb.OBJECTION_REASON_WRONG_MODALITY)
    again = await operators[loser].call(
        "SubmitPortRequest", port_request(clock, numbers=[block("940000001")])
    )
    assert again.state == pb.PORT_REQUEST_STATE_AWAITING_DONOR
    assert again.recipient == loser


async def test_range_overlapping_a_live_request_is_refused(app, operators, clock):
    live = await file(operators, clock, ["940000003"])
    await settle(app)
    before = await row_counts(app)
    error = await rejected(
        file(operators, clock, [block("940000001", "940000005")], recipient="bitel"),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert live_case(error) == (live.id, "940000003")
    assert await row_counts(app) == before


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("940000001\n", id="trailing newline"),
        pytest.param("9٤٠٠٠٠٠٠١", id="arabic-indic digits"),
        pytest.param("９４００００００１", id="fullwidth digits"),
    ],
)
async def test_another_spelling_of_a_number_does_not_open_a_second_live_request(
    app, operators, clock, spelling
):
    """The one-live-request rule holds whatever the spelling: a number written with a trailing
    newline or non-ASCII digits is refused, and never stored under another key."""
    await file(operators, clock, ["940000001"])
    await settle(app)
    before = await row_counts(app)
    error = await rejected(
        file(operators, clock, [spelling], recipient="entel"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert list(field_violations(error)) == ["numbers[0].first"]
    assert await row_counts(app) == before
    async with app.core.db.pool.acquire() as conn:
        live = await conn.fetch("SELECT number FROM port_request_numbers WHERE live")
    assert [r["number"] for r in live] == ["940000001"]


# ----------------------------------------------------------------------------- many numbers


async def test_range_of_fifty_numbers_ports_end_to_end(app, operators, clock):
    numbers = [block("940000100", "940000149", modality=common_pb2.MODALITY_PREPAID)]
    mark = app.core.hub.head
    done = await port_end_to_end(app, operators, clock, "claro", "movistar", numbers)

    assert done.number_count == 50
    assert done.special_client
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number, serving_operator, range_holder FROM ported_numbers"
            " WHERE case_id = $1 ORDER BY number",
            done.id,
        )
    assert [r["number"] for r in rows] == [str(940000100 + i) for i in range(50)]
    assert {(r["serving_operator"], r["range_holder"]) for r in rows} == {("claro", "movistar")}

    for operator in (*OPERATORS, "osiptel"):
        events = await stream_of(app, operators, operator, mark)
        broadcasts = [e for e in events if e.case_id == done.id and e.broadcast]
        assert [e.type for e in broadcasts] == [
            "portability.request.scheduled_for_execution",
            "registry.numbers_changed",
            "portability.request.executed",
        ], operator
        changed = broadcasts[1].numbers_changed
        assert changed.to_operator == "claro"
        assert [m.from_operator for m in changed.moves] == ["movistar"]
        assert len(changed.moves[0].numbers) == 50
        executed = broadcasts[-1].port_request
        assert executed.port_request.number_count == 50
        assert executed.port_request.recipient == "claro"
        assert executed.routing_code == "21"
        # A broadcast carries no subscriber data.
        assert not executed.port_request.HasField("subscriber")
        assert not executed.port_request.HasField("objection")


# ------------------------------------------------------------------------------- pagination


async def test_list_port_requests_pages(app, operators, clock):
    mine = []
    for index in range(5):
        mine.append((await file(operators, clock, [f"94000000{index}"])).id)
        if index % 2:
            await advance(app, clock, timedelta(seconds=1))  # some share an instant, some do not
    others = [
        (await file(operators, clock, ["980000001"], recipient="entel", donor="bitel")).id,
        (await file(operators, clock, ["960000001"], recipient="bitel", donor="entel")).id,
    ]

    seen: list[pb.PortRequest] = []
    token = ""
    pages = []
    while True:
        page = await operators["claro"].call(
            "ListPortRequests", pb.ListPortRequestsRequest(page_size=2, page_token=token)
        )
        pages.append(len(page.port_requests))
        seen.extend(page.port_requests)
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 10
    assert pages == [2, 2, 1]
    ids = [r.id for r in seen]
    assert len(ids) == len(set(ids)) == 5
    assert set(ids) == set(mine)
    assert not set(ids) & set(others)
    assert all(r.recipient == "claro" or r.donor == "claro" for r in seen)
    # Newest first (ties broken by id, newest first too).
    keys = [(at(r.submitted_at), r.id) for r in seen]
    assert keys == sorted(keys, reverse=True)

    # The donor lists the same five; the regulator all seven; filters apply.
    donor_view = await operators["movistar"].call(
        "ListPortRequests", pb.ListPortRequestsRequest(page_size=500)
    )
    assert {r.id for r in donor_view.port_requests} == set(mine)
    assert not donor_view.next_page_token
    everything = await operators["osiptel"].call("ListPortRequests", pb.ListPortRequestsRequest())
    assert {r.id for r in everything.port_requests} == set(mine) | set(others)
    await accept(operators, "movistar", mine[0])
    admissible = await operators["claro"].call(
        "ListPortRequests",
        pb.ListPortRequestsRequest(state=pb.PORT_REQUEST_STATE_ADMISSIBLE),
    )
    assert [r.id for r in admissible.port_requests] == [mine[0]]
