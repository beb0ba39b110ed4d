"""User management system (SGU): registration, confirmation, the operator's tray, answers, ratings,
claims, outages and statistics; each deadline at its boundary on the Peruvian business calendar."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from npc.core.errors import FailedPrecondition
from npc.core.identity import Caller
from npc.flows.sgu import convert
from npc.store.database import Txn
from npc.v1 import common_pb2, sgu_pb2
from tests.helpers import (
    Handlers,
    advance,
    advance_to,
    around_instant,
    field_violations,
    live_case,
    rid,
    settle,
    ts,
)

# Monday 7 December 2026, 10:00 Lima: Tuesday 8 (Immaculate Conception) and Wednesday 9 (Battle
# of Ayacucho) are holidays in Peru.
BEFORE_HOLIDAYS = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
DNI = common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677")


def _subscriber(**overrides) -> common_pb2.Subscriber:
    fields: dict[str, Any] = {
        "name": "Rosa Quispe Mamani",
        "document": DNI,
        "email": "rosa@example.pe",
    }
    fields.update(overrides)
    return common_pb2.Subscriber(**fields)


def _register(**overrides) -> sgu_pb2.RegisterProblemRequest:
    """A web registration of an unaccredited top-up on a Movistar line."""
    fields: dict[str, Any] = {
        "request_id": rid(),
        "channel": sgu_pb2.CHANNEL_WEB,
        "subscriber": _subscriber(),
        "number": "940000001",
        "subcategory": "REC-01",
        "description": "Recargué 10 soles el lunes y no se acreditaron.",
    }
    fields.update(overrides)
    return sgu_pb2.RegisterProblemRequest(**fields)


def _at_office(**overrides) -> sgu_pb2.RegisterProblemRequest:
    fields = {
        "channel": sgu_pb2.CHANNEL_OFFICE,
        # REC-01 may become a claim: its code goes by e-mail, so the office asks for the address.
        "subscriber": _subscriber(),
        "office": sgu_pb2.Office(
            code="CUS-01",
            name="Oficina Desconcentrada Cusco",
            department="Cusco",
            province="Cusco",
            district="Wanchaq",
            ubigeo="080108",
        ),
        "registered_by": "Orientadora Ana Huamán",
    }
    fields.update(overrides)
    return _register(**fields)


async def _call(client, method, request):
    return await getattr(client.sgu, method)(request, metadata=client.metadata)


async def _records(app, case_id):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT operator_id, rule FROM compliance_records WHERE case_id = $1 ORDER BY id",
            case_id,
        )
    return [(r["operator_id"], r["rule"]) for r in rows]


async def _emails(app, case_id):
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT recipient, subject, body FROM notifications WHERE flow = 'sgu'"
            " AND case_id = $1 AND channel = 'email' ORDER BY id",
            case_id,
        )
    return [(r["recipient"], r["subject"], r["body"]) for r in rows]


async def _token(app, case_id) -> str:
    (_, _, body), *_ = await _emails(app, case_id)
    found = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert found
    return found.group(1)


async def _confirmed(app, osiptel, **overrides) -> sgu_pb2.Problem:
    """A web problem whose e-mail was confirmed: in its operator's tray."""
    problem = await _call(osiptel, "RegisterProblem", _register(**overrides))
    return await _call(
        osiptel,
        "ConfirmEmail",
        sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=await _token(app, problem.id)),
    )


def _due(problem: sgu_pb2.Problem) -> datetime:
    return problem.answer_deadline.ToDatetime(tzinfo=UTC)


async def _answer(client, problem_id, text="Se acreditó la recarga.", solved=True):
    return await _call(
        client,
        "AnswerProblem",
        sgu_pb2.AnswerProblemRequest(
            request_id=rid(), problem_id=problem_id, answer=text, solved=solved
        ),
    )


async def _rate(client, problem_id, satisfied, score, document=DNI):
    return await _call(
        client,
        "RateAnswer",
        sgu_pb2.RateAnswerRequest(
            request_id=rid(),
            problem_id=problem_id,
            document=document,
            satisfied=satisfied,
            score=score,
        ),
    )


async def _escalate(client, problem_id, document=DNI):
    return await _call(
        client,
        "EscalateToClaim",
        sgu_pb2.EscalateToClaimRequest(request_id=rid(), problem_id=problem_id, document=document),
    )


async def _assign(client, problem_id, code):
    return await _call(
        client,
        "AssignClaimCode",
        sgu_pb2.AssignClaimCodeRequest(request_id=rid(), problem_id=problem_id, claim_code=code),
    )


async def _tray_items(client, from_position, count, timeout=3.0):
    got = []
    call = client.sgu.WatchTray(
        sgu_pb2.WatchTrayRequest(from_position=from_position), metadata=client.metadata
    )

    async def read():
        async for item in call:
            got.append(item)
            if len(got) >= count:
                return

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        pass
    finally:
        call.cancel()
    return got


async def _count_problems(app) -> int:
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM sgu_problems")


# ------------------------------------------------------------------ registration


async def test_web_problem_reaches_the_tray_only_once_the_email_is_confirmed(app, operators, clock):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    problem = await _call(osiptel, "RegisterProblem", _register())
    assert problem.state == sgu_pb2.PROBLEM_STATE_AWAITING_CONFIRMATION
    assert problem.operator == "movistar"  # the operator serving the line
    [(to, subject, body)] = await _emails(app, problem.id)
    assert to == "rosa@example.pe" and problem.id in subject and "token=" in body
    assert not (await _call(movistar, "ListTray", sgu_pb2.ListTrayRequest())).problems
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await _call(movistar, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await _call(
            osiptel,
            "ConfirmEmail",
            sgu_pb2.ConfirmEmailRequest(request_id=rid(), token="x" * 32),
        )
    assert wrong.value.code() == grpc.StatusCode.NOT_FOUND

    await advance(app, clock, timedelta(hours=2))
    token = await _token(app, problem.id)
    confirmed = await _call(
        osiptel, "ConfirmEmail", sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=token)
    )
    assert confirmed.state == sgu_pb2.PROBLEM_STATE_IN_TRAY
    # REC-01 is answered within 24 hours of the transfer, not of the registration.
    assert _due(confirmed) == clock.now() + timedelta(hours=24)
    tray = await _call(movistar, "ListTray", sgu_pb2.ListTrayRequest())
    assert [p.id for p in tray.problems] == [problem.id]
    assert tray.problems[0].subscriber.document.number == "44556677"
    # The link opened twice shows the status and changes nothing.
    handler = app.core.flows["sgu"].handler
    again = await handler.confirm_email_token(token)
    assert again["state"] == "in_tray" and again["answer_deadline"] == _due(confirmed)
    assert await handler.confirm_email_token("not-a-token-at-all") is None
    assert len(await _emails(app, problem.id)) == 2  # confirmation, then transfer notice


async def test_office_registration_records_the_office_and_skips_email_confirmation(
    app, operators, clock
):
    problem = await _call(operators["osiptel"], "RegisterProblem", _at_office())
    assert problem.state == sgu_pb2.PROBLEM_STATE_IN_TRAY
    assert problem.channel == sgu_pb2.CHANNEL_OFFICE
    assert (problem.office.code, problem.office.department, problem.office.ubigeo) == (
        "CUS-01",
        "Cusco",
        "080108",
    )
    assert problem.registered_by == "Orientadora Ana Huamán"
    assert _due(problem) == clock.now() + timedelta(hours=24)
    # Staff verified the subscriber: no confirmation, only the notice of the transfer.
    [(_, subject, _)] = await _emails(app, problem.id)
    assert subject == f"SGU: su problema {problem.id} fue trasladado a movistar"
    seen = await _call(
        operators["movistar"], "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id)
    )
    assert seen.office.name == "Oficina Desconcentrada Cusco"


async def test_office_registration_needs_the_office_and_the_staff_member(app, operators):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            operators["osiptel"],
            "RegisterProblem",
            _at_office(office=sgu_pb2.Office(name="Cusco"), registered_by=""),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"office.code", "office.department", "registered_by"} <= set(
        field_violations(refused.value)
    )
    assert await _count_problems(app) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {
                "subscriber": _subscriber(
                    document=common_pb2.IdentityDocument(
                        type=common_pb2.DocumentType.ValueType(1), number="123"
                    )
                )
            },
            "subscriber.document.number",
        ),
        (
            {
                "subscriber": _subscriber(
                    document=common_pb2.IdentityDocument(
                        type=common_pb2.DOCUMENT_TYPE_RUC, number="20100047219"
                    )
                )
            },
            "subscriber.document.number",
        ),
        (
            {"subscriber": _subscriber(document=common_pb2.IdentityDocument())},
            "subscriber.document.type",
        ),
        ({"subscriber": _subscriber(email="")}, "subscriber.email"),
        ({"subscriber": _subscriber(email="rosa-at-example")}, "subscriber.email"),
        ({"subscriber": _subscriber(name="")}, "subscriber.name"),
        ({"number": "12345"}, "number"),
        ({"number": "900000001"}, "number"),  # mobile-shaped but in no operator's range
        ({"subcategory": "rec01"}, "subcategory"),
        ({"subcategory": "ZZZ-99"}, "subcategory"),
        ({"description": ""}, "description"),
        ({"channel": sgu_pb2.CHANNEL_UNSPECIFIED}, "channel"),
        ({"registered_by": "someone"}, "office"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_registration_validates_identity_line_and_catalogue(
    module_app, module_operators, overrides, field
):
    app, operators = module_app, module_operators
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["osiptel"], "RegisterProblem", _register(**overrides))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)
    assert await _count_problems(app) == 0


async def test_only_the_regulator_registers_and_a_retry_registers_once(app, operators):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["claro"], "RegisterProblem", _register())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    request = _register()
    first = await _call(operators["osiptel"], "RegisterProblem", request)
    retry = await _call(operators["osiptel"], "RegisterProblem", request)
    assert first.id == retry.id
    assert await _count_problems(app) == 1


async def test_a_line_has_one_problem_of_a_subcategory_under_way(app, operators):
    osiptel = operators["osiptel"]
    # Unconfirmed registrations do not block: the address may have been mistyped.
    mistyped = await _call(osiptel, "RegisterProblem", _register())
    typed_again = await _call(osiptel, "RegisterProblem", _register())
    await _call(
        osiptel,
        "ConfirmEmail",
        sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=await _token(app, typed_again.id)),
    )
    with pytest.raises(grpc.aio.AioRpcError) as confirmed_twice:
        await _call(
            osiptel,
            "ConfirmEmail",
            sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=await _token(app, mistyped.id)),
        )
    assert confirmed_twice.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as at_office:
        await _call(osiptel, "RegisterProblem", _at_office())
    assert live_case(at_office.value) == (typed_again.id, "940000001/REC-01")
    other = await _call(osiptel, "RegisterProblem", _at_office(subcategory="SUS-01"))
    assert other.state == sgu_pb2.PROBLEM_STATE_IN_TRAY


async def test_an_unconfirmed_registration_expires_after_72_hours(app, operators, clock):
    osiptel = operators["osiptel"]
    problem = await _call(osiptel, "RegisterProblem", _register())
    token = await _token(app, problem.id)
    expires = clock.now() + timedelta(hours=72)
    await advance_to(app, clock, expires - timedelta(seconds=1))
    got = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert got.state == sgu_pb2.PROBLEM_STATE_AWAITING_CONFIRMATION
    await advance(app, clock, timedelta(seconds=1))
    got = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert got.state == sgu_pb2.PROBLEM_STATE_EXPIRED
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await _call(
            osiptel, "ConfirmEmail", sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=token)
        )
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in late.value.details()
    status = await app.core.flows["sgu"].handler.confirm_email_token(token)
    assert status["state"] == "expired"
    assert await _records(app, problem.id) == []


async def test_a_confirmation_at_the_72nd_hour_finds_the_registration_expired(
    handlers: Handlers,
):
    """One second before the 72 hours the problem reaches the tray; at their instant the
    registration has expired, whether the confirmation reaches the handler before the deadline
    fires (the second) or after (the third)."""
    sgu = handlers.flow("sgu").handler  # type: ignore[attr-defined]
    osiptel = Caller("osiptel", role="regulator")
    ids = []
    for number in ("940000001", "940000002", "940000003"):
        model = convert.register_problem(_register(number=number))

        async def register(txn: Txn, m: Any = model) -> Any:
            return await sgu.register_problem(txn, osiptel, m)

        ids.append((await handlers.perform("RegisterProblem", register))["id"])
    states: list[str] = []

    async def confirm(by: Handlers, problem_id: str) -> None:
        async with handlers.core.db.pool.acquire() as conn:
            body = await conn.fetchval(
                "SELECT body FROM notifications WHERE case_id = $1 AND channel = 'email'",
                problem_id,
            )
        found = re.search(r"token=([A-Za-z0-9_-]+)", body)
        assert found
        model = convert.confirm_email(sgu_pb2.ConfirmEmailRequest(token=found.group(1)))

        async def command(txn: Txn) -> Any:
            return await sgu.confirm_email(txn, osiptel, model)

        try:
            states.append(str((await by.perform("ConfirmEmail", command))["state"]))
            return
        except FailedPrecondition as refused:
            assert "expired" in str(refused)
        async with handlers.core.db.pool.acquire() as conn:
            state = await conn.fetchval("SELECT state FROM sgu_problems WHERE id = $1", problem_id)
        states.append(f"refused, {state}")

    expires = handlers.clock.now() + timedelta(hours=72)
    await around_instant(handlers, expires, confirm, (ids[0], ids[1], ids[2]))
    assert states == ["in_tray", "refused, expired", "refused, expired"]


async def test_a_confirmed_registration_does_not_expire(app, operators, clock):
    problem = await _confirmed(app, operators["osiptel"])
    await _answer(operators["movistar"], problem.id)
    await advance(app, clock, timedelta(hours=73))
    got = await _call(
        operators["osiptel"], "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id)
    )
    assert got.state == sgu_pb2.PROBLEM_STATE_ANSWERED


# ------------------------------------------------------------------ answer deadlines


@pytest.mark.parametrize(
    ("registered", "subcategory", "deadline"),
    [
        # 1 business day from Monday 7 December: 8 and 9 are holidays, so the day is Thursday 10;
        # the deadline is Friday 11, 00:00 Lima.
        (BEFORE_HOLIDAYS, "POR-01", datetime(2026, 12, 11, 5, 0, tzinfo=UTC)),
        # 2 business days from Thursday 24 December 10:00 Lima: Christmas and the weekend pass,
        # Monday 28 and Tuesday 29 count; the deadline is Wednesday 30, 00:00 Lima.
        (
            datetime(2026, 12, 24, 15, 0, tzinfo=UTC),
            "BAJ-01",
            datetime(2026, 12, 30, 5, 0, tzinfo=UTC),
        ),
    ],
)
async def test_unanswered_problem_is_recorded_at_its_deadline_across_holidays(
    app, operators, clock, registered, subcategory, deadline
):
    await advance_to(app, clock, registered)
    problem = await _confirmed(app, operators["osiptel"], subcategory=subcategory)
    assert _due(problem) == deadline
    await advance_to(app, clock, deadline - timedelta(seconds=1))
    assert await _records(app, problem.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, problem.id) == [("movistar", "sgu_answer_in_time")]
    state = await _call(
        operators["movistar"], "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id)
    )
    assert state.state == sgu_pb2.PROBLEM_STATE_OVERDUE
    assert "no fue respondido" in (await _emails(app, problem.id))[-1][1]
    # A late answer is still taken, marked late, and recorded once.
    late = await _answer(operators["movistar"], problem.id)
    assert late.state == sgu_pb2.PROBLEM_STATE_ANSWERED and late.answered_late
    assert await _records(app, problem.id) == [("movistar", "sgu_answer_in_time")]


async def test_answer_one_second_before_the_deadline_is_in_time(app, operators, clock):
    problem = await _confirmed(app, operators["osiptel"])
    await advance_to(app, clock, _due(problem) - timedelta(seconds=1))
    answered = await _answer(operators["movistar"], problem.id)
    assert answered.state == sgu_pb2.PROBLEM_STATE_ANSWERED and not answered.answered_late
    assert answered.solved and answered.answer == "Se acreditó la recarga."
    assert "respuesta" in (await _emails(app, problem.id))[-1][1]
    await advance(app, clock, timedelta(days=10))
    assert await _records(app, problem.id) == []


@pytest.mark.parametrize(
    ("caller", "code"),
    [("claro", grpc.StatusCode.NOT_FOUND), ("osiptel", grpc.StatusCode.PERMISSION_DENIED)],
)
async def test_only_the_problems_operator_answers(app, operators, caller, code):
    problem = await _confirmed(app, operators["osiptel"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(operators[caller], problem.id)
    assert refused.value.code() == code


async def test_answer_needs_text(app, operators):
    problem = await _confirmed(app, operators["osiptel"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _answer(operators["movistar"], problem.id, text="  ")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "answer" in field_violations(refused.value)


# ------------------------------------------------------------------ rating and claims


async def test_a_claim_code_in_use_names_the_problem_holding_it(app, operators):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    problems = []
    for number in ("940000001", "940000002"):
        problem = await _confirmed(app, osiptel, number=number)
        await _answer(movistar, problem.id, solved=False)
        await _rate(osiptel, problem.id, False, 2)
        problems.append(await _escalate(osiptel, problem.id))
    await _assign(movistar, problems[0].id, "RCL-2026-000123")
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await _assign(movistar, problems[1].id, "RCL-2026-000123")
    assert live_case(taken.value) == (problems[0].id, "RCL-2026-000123")


async def test_unsatisfied_subscriber_escalates_and_the_operator_assigns_its_code_in_time(
    app, operators, clock
):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    await advance_to(app, clock, BEFORE_HOLIDAYS)
    problem = await _confirmed(app, osiptel)
    await _answer(movistar, problem.id, solved=False)
    wrong = common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="11111111")
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await _rate(osiptel, problem.id, False, 2, document=wrong)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    rated = await _rate(osiptel, problem.id, False, 2)
    assert rated.state == sgu_pb2.PROBLEM_STATE_ESCALATION_OPEN
    assert (rated.satisfied, rated.score) == (False, 2)
    escalated = await _escalate(osiptel, problem.id)
    assert escalated.state == sgu_pb2.PROBLEM_STATE_CLAIM_REQUESTED
    code_due = escalated.claim_code_deadline.ToDatetime(tzinfo=UTC)
    assert code_due == clock.now() + timedelta(hours=1)
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await _assign(operators["claro"], problem.id, "RCL-1")
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    await advance_to(app, clock, code_due - timedelta(seconds=1))
    claimed = await _assign(movistar, problem.id, "RCL-2026-000123")
    assert claimed.state == sgu_pb2.PROBLEM_STATE_CLAIMED
    # REC-01 claims are resolved within 3 business days: from Monday 7 December they are
    # Thursday 10, Friday 11 and Monday 14 (8 and 9 are holidays); due Tuesday 15, 00:00 Lima.
    assert claimed.claim_deadline.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 15, 5, 0, tzinfo=UTC)
    to, subject, body = (await _emails(app, problem.id))[-1]
    assert to == "rosa@example.pe" and "RCL-2026-000123" in subject
    assert "Formulario de reclamo" in body and "14/12/2026" in body and "940000001" in body
    await advance(app, clock, timedelta(days=5))
    assert await _records(app, problem.id) == []


async def test_claim_code_not_assigned_at_once_is_recorded_at_the_boundary(app, operators, clock):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    problem = await _confirmed(app, osiptel)
    # Unanswered in time: the subscriber may escalate without a rating.
    await advance_to(app, clock, _due(problem))
    escalated = await _escalate(osiptel, problem.id)
    code_due = escalated.claim_code_deadline.ToDatetime(tzinfo=UTC)
    await advance_to(app, clock, code_due - timedelta(seconds=1))
    assert await _records(app, problem.id) == [("movistar", "sgu_answer_in_time")]
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, problem.id) == [
        ("movistar", "sgu_answer_in_time"),
        ("movistar", "sgu_claim_code_at_once"),
    ]
    claimed = await _assign(movistar, problem.id, "R-77")
    assert claimed.state == sgu_pb2.PROBLEM_STATE_CLAIMED
    assert "(sin respuesta en el plazo)" in (await _emails(app, problem.id))[-1][2]
    assert len(await _records(app, problem.id)) == 2


async def test_satisfied_or_not_claimable_problems_close_and_cannot_escalate(app, operators, clock):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    happy = await _confirmed(app, osiptel)
    await _answer(movistar, happy.id)
    closed = await _rate(osiptel, happy.id, True, 5)
    assert closed.state == sgu_pb2.PROBLEM_STATE_CLOSED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _escalate(osiptel, happy.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    info = await _confirmed(app, osiptel, subcategory="INF-01")
    assert not info.claimable
    await _answer(movistar, info.id)
    unhappy = await _rate(osiptel, info.id, False, 1)
    assert unhappy.state == sgu_pb2.PROBLEM_STATE_CLOSED
    with pytest.raises(grpc.aio.AioRpcError) as not_claimable:
        await _escalate(osiptel, info.id)
    assert not_claimable.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot become a claim" in not_claimable.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as bad_score:
        await _rate(osiptel, happy.id, True, 6)
    assert "score" in field_violations(bad_score.value)


async def test_a_problem_answered_in_time_cannot_escalate_before_it_is_rated(app, operators):
    osiptel = operators["osiptel"]
    problem = await _confirmed(app, osiptel)
    await _answer(operators["movistar"], problem.id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _escalate(osiptel, problem.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# ------------------------------------------------------------------ the tray as a stream


async def test_tray_stream_is_durable_and_resumable(app, operators, clock):
    osiptel, movistar = operators["osiptel"], operators["movistar"]
    # Movistar is not connected while three problems arrive (one for Claro).
    first = await _confirmed(app, osiptel)
    await _confirmed(app, osiptel, number="910000001")
    second = await _call(osiptel, "RegisterProblem", _at_office(subcategory="SUS-01"))
    await settle(app)
    items = await _tray_items(movistar, 0, 2)
    assert [(i.kind, i.problem.id) for i in items] == [
        ("transferred", first.id),
        ("transferred", second.id),
    ]
    assert items[0].problem.operator == "movistar"
    resumed = await _tray_items(movistar, items[0].position, 1)
    assert [i.problem.id for i in resumed] == [second.id]
    # A claim to code arrives on the same stream, live.
    await advance_to(app, clock, _due(first))
    watcher = asyncio.ensure_future(_tray_items(movistar, items[1].position, 1, timeout=5.0))
    await asyncio.sleep(0.2)
    await _escalate(osiptel, first.id)
    await settle(app)
    [claim] = await watcher
    assert (claim.kind, claim.problem.id) == ("claim_requested", first.id)
    assert claim.problem.state == sgu_pb2.PROBLEM_STATE_CLAIM_REQUESTED
    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        await _tray_items(movistar, 10**9, 1)
    assert beyond.value.code() == grpc.StatusCode.OUT_OF_RANGE


# ------------------------------------------------------------------ outages


async def test_an_operator_outage_moves_the_running_deadline_by_its_length(app, operators, clock):
    osiptel = operators["osiptel"]
    await advance_to(app, clock, BEFORE_HOLIDAYS)
    problem = await _confirmed(app, osiptel, subcategory="POR-01")
    other = await _confirmed(app, osiptel, subcategory="POR-01", number="910000001")
    base = datetime(2026, 12, 11, 5, 0, tzinfo=UTC)
    assert _due(problem) == base
    # Movistar's system was down 3 hours on Thursday 10 December (reported afterwards).
    await advance_to(app, clock, datetime(2026, 12, 10, 20, 0, tzinfo=UTC))
    outage = await _call(
        osiptel,
        "RecordOutage",
        sgu_pb2.RecordOutageRequest(
            request_id=rid(),
            operator="movistar",
            starts_at=ts(datetime(2026, 12, 10, 14, 0, tzinfo=UTC)),
            ends_at=ts(datetime(2026, 12, 10, 17, 0, tzinfo=UTC)),
            reason="caída del sistema de atención de Movistar",
        ),
    )
    assert outage.deadlines_moved == 1
    moved = base + timedelta(hours=3)
    got = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert _due(got) == moved
    untouched = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=other.id))
    assert _due(untouched) == base  # Claro's deadline did not run during Movistar's outage
    await advance_to(app, clock, base)
    assert await _records(app, problem.id) == []
    assert await _records(app, other.id) == [("claro", "sgu_answer_in_time")]
    await advance_to(app, clock, moved - timedelta(seconds=1))
    assert await _records(app, problem.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, problem.id) == [("movistar", "sgu_answer_in_time")]


async def test_an_sgu_outage_moves_every_running_deadline_and_planned_ones_count_at_transfer(
    app, operators, clock
):
    osiptel = operators["osiptel"]
    problem = await _confirmed(app, osiptel)  # due in 24 hours
    start = clock.now()
    outage = await _call(
        osiptel,
        "RecordOutage",
        sgu_pb2.RecordOutageRequest(
            request_id=rid(),
            starts_at=ts(start + timedelta(hours=20)),
            ends_at=ts(start + timedelta(hours=26)),
            reason="mantenimiento programado del SGU",
        ),
    )
    assert outage.operator == "" and outage.deadlines_moved == 1
    # The outage began 4 hours before the deadline: 6 hours of clock stopped.
    got = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert _due(got) == start + timedelta(hours=30)
    # A problem transferred during the planned outage starts counting when it ends.
    await advance_to(app, clock, start + timedelta(hours=21))
    later = await _confirmed(app, osiptel, number="960000001")
    assert _due(later) == start + timedelta(hours=26 + 24)
    await advance_to(app, clock, start + timedelta(hours=30) - timedelta(seconds=1))
    assert await _records(app, problem.id) == []
    await advance(app, clock, timedelta(seconds=1))
    assert await _records(app, problem.id) == [("movistar", "sgu_answer_in_time")]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ends_at": None}, "ends_at"),
        ({"reason": ""}, "reason"),
        ({"operator": "Not An Operator"}, "operator"),
        ({"operator": "osiptel"}, "operator"),
        ({"swap": True}, "ends_at"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")  # refusals: one clearinghouse for every case
async def test_outage_validation(module_operators, module_clock, overrides, field):
    operators, clock = module_operators, module_clock
    fields: dict[str, Any] = {
        "request_id": rid(),
        "operator": "movistar",
        "starts_at": ts(clock.now() - timedelta(hours=2)),
        "ends_at": ts(clock.now() - timedelta(hours=1)),
        "reason": "caída",
    }
    if overrides.pop("swap", False):
        fields["starts_at"], fields["ends_at"] = fields["ends_at"], fields["starts_at"]
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(operators["osiptel"], "RecordOutage", sgu_pb2.RecordOutageRequest(**fields))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(refused.value)


async def test_operators_cannot_record_outages(app, operators, clock):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            operators["movistar"],
            "RecordOutage",
            sgu_pb2.RecordOutageRequest(
                request_id=rid(),
                starts_at=ts(clock.now() - timedelta(hours=2)),
                ends_at=ts(clock.now()),
                reason="caída",
            ),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ------------------------------------------------------------------ catalogue


async def test_the_regulator_edits_the_catalogue_and_problems_under_way_keep_their_terms(
    app, operators, clock
):
    osiptel = operators["osiptel"]
    catalogue = await _call(osiptel, "ListCatalogue", sgu_pb2.ListCatalogueRequest())
    codes = {s.code: s for s in catalogue.subcategories}
    assert {"REC-01", "SUS-01", "POR-01", "BAJ-01", "INF-01"} <= set(codes)
    assert codes["REC-01"].deadline_unit == sgu_pb2.DEADLINE_UNIT_HOURS
    assert codes["POR-01"].deadline_unit == sgu_pb2.DEADLINE_UNIT_BUSINESS_DAYS
    assert not codes["INF-01"].claimable
    before = await _confirmed(app, osiptel)
    changed = codes["REC-01"]
    changed.deadline_amount = 48
    saved = await _call(
        osiptel,
        "UpsertSubcategory",
        sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=changed),
    )
    assert saved.deadline_amount == 48
    added = sgu_pb2.Subcategory(
        code="DAT-01",
        name="Internet móvil sin funcionar",
        category="DAT",
        category_name="Datos móviles",
        service="mobile",
        deadline_unit=sgu_pb2.DEADLINE_UNIT_HOURS,
        deadline_amount=6,
        claimable=True,
        claim_business_days=3,
        active=True,
    )
    await _call(
        osiptel,
        "UpsertSubcategory",
        sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=added),
    )
    fresh = await _confirmed(app, osiptel, subcategory="DAT-01")
    assert _due(fresh) == clock.now() + timedelta(hours=6)
    unchanged = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=before.id))
    assert _due(unchanged) == _due(before)
    after = await _confirmed(app, osiptel, number="910000002")
    assert _due(after) == clock.now() + timedelta(hours=48)

    added.active = False
    await _call(
        osiptel,
        "UpsertSubcategory",
        sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=added),
    )
    with pytest.raises(grpc.aio.AioRpcError) as inactive:
        await _call(osiptel, "RegisterProblem", _register(subcategory="DAT-01", number="910000003"))
    assert "subcategory" in field_violations(inactive.value)


async def test_catalogue_edits_are_validated_and_reserved_to_the_regulator(app, operators):
    bad = sgu_pb2.Subcategory(
        code="DAT-01",
        name="",
        category="XYZ",
        category_name="Datos",
        service="satellite",
        deadline_unit=sgu_pb2.DEADLINE_UNIT_HOURS,
        deadline_amount=0,
        claim_business_days=0,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(
            operators["osiptel"],
            "UpsertSubcategory",
            sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=bad),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {
        "subcategory.name",
        "subcategory.category",
        "subcategory.service",
        "subcategory.deadline_amount",
        "subcategory.claim_business_days",
    } <= set(field_violations(refused.value))
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _call(
            operators["claro"],
            "UpsertSubcategory",
            sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=bad),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ------------------------------------------------------------------ pages and statistics


async def test_public_status_reveals_nothing_without_the_right_document(app, operators):
    problem = await _confirmed(app, operators["osiptel"])
    handler = app.core.flows["sgu"].handler
    status = await handler.public_status(problem.id, "44556677")
    assert status["state"] == "in_tray" and status["operator"] == "movistar"
    assert status["answer_deadline"] == _due(problem) and not status["escalable"]
    assert await handler.public_status(problem.id, "44556678") is None
    assert await handler.public_status("SG9999999999", "44556677") is None
    assert await handler.public_status("'; DROP", "44556677") is None


async def test_report_gives_frequent_problems_resolution_times_operators_and_satisfaction(
    app, operators, clock
):
    osiptel, movistar, claro = operators["osiptel"], operators["movistar"], operators["claro"]
    start = clock.now()
    a = await _confirmed(app, osiptel)  # movistar REC-01
    b = await _confirmed(app, osiptel, number="940000002")  # movistar REC-01
    c = await _confirmed(app, osiptel, number="940000003", subcategory="SUS-01")  # movistar
    d = await _confirmed(app, osiptel, number="910000001")  # claro REC-01
    await _call(osiptel, "RegisterProblem", _register(number="960000001"))  # never confirmed
    await advance(app, clock, timedelta(hours=2))
    await _answer(movistar, a.id)
    await _rate(osiptel, a.id, True, 5)
    await advance(app, clock, timedelta(hours=4))
    await _answer(movistar, b.id)
    await _rate(osiptel, b.id, False, 2)
    await _answer(claro, d.id)
    await _rate(osiptel, d.id, True, 4)
    await advance(app, clock, timedelta(hours=20))  # c is now overdue
    assert await _records(app, c.id) == [("movistar", "sgu_answer_in_time")]

    handler = app.core.flows["sgu"].handler
    report = await handler.report(start, clock.now())
    assert [(p.subcategory, p.problems) for p in report.most_frequent] == [
        ("REC-01", 3),
        ("SUS-01", 1),
    ]
    [rec] = report.resolution_times
    assert (rec.subcategory, rec.answered) == ("REC-01", 3)
    assert rec.average_hours == pytest.approx((2 + 6 + 6) / 3)
    assert rec.max_hours == pytest.approx(6)
    assert [
        (o.operator, o.problems, o.answered_in_time, o.unanswered_overdue) for o in report.operators
    ] == [
        ("movistar", 3, 2, 1),
        ("claro", 1, 1, 0),
    ]
    assert [(s.operator, s.rated, s.satisfied, s.average_score) for s in report.satisfaction] == [
        ("claro", 1, 1, 4.0),
        ("movistar", 2, 1, 3.5),
    ]

    reply = await _call(
        osiptel,
        "GetReport",
        sgu_pb2.GetReportRequest(**{"from": ts(start), "to": ts(clock.now())}),
    )
    assert reply.operators[0].operator == "movistar" and reply.most_frequent[0].problems == 3
    assert reply.satisfaction[1].average_score == pytest.approx(3.5)
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _call(
            movistar,
            "GetReport",
            sgu_pb2.GetReportRequest(**{"from": ts(start), "to": ts(clock.now())}),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as backwards:
        await _call(
            osiptel,
            "GetReport",
            sgu_pb2.GetReportRequest(**{"from": ts(clock.now()), "to": ts(start)}),
        )
    assert "to" in field_violations(backwards.value)
