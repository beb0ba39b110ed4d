"""The clearinghouse tells the subscriber itself (issue 15, item 9): each notice in the outbox
with its text, the status page saying the same, and nothing without a contact on the form.
Through the `handlers` fixture (no gRPC); Lima is UTC-5 all year, the clock starts on Monday
23 November 2026, 10:00 in Lima."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from npc.core.spanish import spanish_instant
from npc.flows.portability import convert, notices
from npc.flows.portability.handler import PortabilityHandler
from npc.flows.portability.web import status_view
from npc.notifications.outbox import MAX_SMS_TEXT
from npc.store.database import Txn
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import Handlers, block, day, port_request, ts

CLARO = "América Móvil Perú (Claro)"
MOVISTAR = "Telefónica del Perú (Movistar)"
# Tuesday 24 November 2026, 00:30 in Lima: inside the night's change window.
SCHEDULED = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)


def form(handlers: Handlers, **contact: str) -> pb.SubmitPortRequestRequest:
    """A mobile request for 940000001 with the given contact fields (none by default)."""
    holder = common_pb2.Subscriber(
        name="Rosa Quispe Mamani",
        document=common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"),
        **contact,
    )
    return port_request(handlers.clock, numbers=[block("940000001")], subscriber=holder)


def portability(handlers: Handlers) -> PortabilityHandler:
    handler = handlers.flow("portability").handler  # type: ignore[attr-defined]
    assert isinstance(handler, PortabilityHandler)
    return handler


async def submit(handlers: Handlers, request: pb.SubmitPortRequestRequest) -> str:
    flow = portability(handlers)

    async def command(txn: Txn) -> Any:
        return await flow.submit_port_request(
            txn, handlers.caller("claro"), convert.port_request_submission(request)
        )

    row = await handlers.perform("SubmitPortRequest", command)
    return str(row["id"])


async def answer(handlers: Handlers, case: str, objection: pb.Objection | None = None) -> None:
    flow = portability(handlers)
    message = pb.AnswerPortRequestRequest(
        request_id="a", port_request_id=case, accept=objection is None, objection=objection
    )

    async def command(txn: Txn) -> Any:
        return await flow.answer_port_request(
            txn, handlers.caller("movistar"), convert.port_request_answer(message)
        )

    await handlers.perform("AnswerPortRequest", command)


async def schedule(handlers: Handlers, case: str) -> None:
    flow = portability(handlers)
    message = pb.SchedulePortRequest(
        request_id="s", port_request_id=case, scheduled_at=ts(SCHEDULED)
    )

    async def command(txn: Txn) -> Any:
        return await flow.schedule_port(
            txn, handlers.caller("claro"), convert.port_schedule(message)
        )

    await handlers.perform("SchedulePort", command)


async def outbox(handlers: Handlers, case: str) -> list[dict[str, Any]]:
    async with handlers.core.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT channel, recipient, subject, body FROM notifications"
            " WHERE flow = 'portability' AND case_id = $1 ORDER BY id",
            case,
        )
    return [dict(r) for r in rows]


async def page(handlers: Handlers, case: str) -> tuple[str, dict[str, str]]:
    """The public status page's explanation and details for the case."""
    flow = portability(handlers)
    status = await flow.public_status(case, "44556677")
    assert status is not None
    view = status_view(status, flow)
    return view.explanation, dict(view.details)


async def test_an_email_on_the_form_gets_every_step_and_the_page_says_the_same(
    handlers: Handlers,
):
    case = await submit(handlers, form(handlers, email="rosa@example.pe"))
    await answer(handlers, case)
    await schedule(handlers, case)
    _, details = await page(handlers, case)
    await handlers.advance(SCHEDULED - handlers.clock.now())  # the port executes

    sent = await outbox(handlers, case)
    assert [(n["channel"], n["recipient"]) for n in sent] == [("email", "rosa@example.pe")] * 3
    registered, scheduled, executed = sent
    assert registered["subject"] == f"Portabilidad: registramos su solicitud {case}"
    assert registered["body"].startswith(
        f"Su solicitud de portabilidad {case} para pasar ******001 de {MOVISTAR} a {CLARO} quedó "
        "registrada el lunes 23 de noviembre de 2026, 10:00 (hora de Lima)."
    )
    assert (
        f"http://localhost:8080/portabilidad/consulta con el número de solicitud {case}"
        in (registered["body"])
    )
    assert notices.SECOND_SOURCE.format(recipient=CLARO) in registered["body"]
    when = "martes 24 de noviembre de 2026, 00:30"
    assert scheduled["body"].startswith(
        f"El cambio de ******001 a {CLARO} está programado para el {when} (hora de Lima).\n"
        "Durante el cambio su servicio puede interrumpirse hasta 3 horas."
    )
    assert executed["subject"] == f"Portabilidad: su número ya está con {CLARO} ({case})"
    assert executed["body"].startswith(f"El {when} (hora de Lima) ******001 pasó a {CLARO}.")
    # The page names the same instant, and where the notices go.
    assert details["Cambio programado"].startswith(when)
    assert details["Avisos del administrador"].startswith("por correo r***@example.pe.")


def debt() -> pb.Objection:
    owed = common_pb2.Money(amount="120.50", currency="PEN")
    return pb.Objection(
        reason=pb.OBJECTION_REASON_DEBT, debt=pb.Debt(owed=owed, due_date=day("2026-10-31"))
    )


# How a request ends -> the word of its notice and what its reason says.
ENDINGS = {
    "not_owned": ("rechazada", "el número no está registrado a su nombre en ese operador"),
    "debt_not_proven": ("rechazada", "no se presentó la constancia de pago"),
    "not_scheduled": ("cancelada", f"{CLARO} no programó el cambio dentro del plazo"),
}


async def test_a_mobile_contact_is_told_why_the_request_ended_in_the_page_s_words(
    handlers: Handlers,
):
    cases = {}
    for n, ending in enumerate(ENDINGS, start=1):
        request = form(handlers, contact_phone="+51987654321")
        request.numbers[0].first = f"94000000{n}"
        cases[ending] = case = await submit(handlers, request)
        if ending == "not_owned":
            await answer(handlers, case, pb.Objection(reason=pb.OBJECTION_REASON_NUMBER_NOT_OWNED))
        elif ending == "debt_not_proven":
            await answer(handlers, case, debt())
        else:
            await answer(handlers, case)
    # The debt's 24 hours to prove payment pass, and 22:00 passes unscheduled (CNPF).
    await handlers.advance(timedelta(hours=24))

    for ending, case in cases.items():
        word, reason = ENDINGS[ending]
        sent = await outbox(handlers, case)
        explanation, details = await page(handlers, case)
        assert [(n["channel"], n["recipient"], n["subject"]) for n in sent] == [
            ("sms", "987654321", None)
        ] * 2, ending
        told = sent[-1]["body"]
        assert told == notices.bounded(
            f"Portabilidad {case}: Su solicitud de portabilidad {case} fue {word}. {explanation}",
            notices.SMS_LIMIT,
        )
        assert reason in explanation, ending
        assert len(told) <= notices.SMS_LIMIT <= MAX_SMS_TEXT
        assert details["Avisos del administrador"].startswith("por SMS al ******321.")


async def test_without_an_email_or_a_mobile_contact_nobody_is_told(handlers: Handlers):
    # A fixed contact phone is no line to send an SMS to.
    case = await submit(handlers, form(handlers, contact_phone="014412345"))
    await answer(handlers, case, pb.Objection(reason=pb.OBJECTION_REASON_WRONG_MODALITY))

    assert await outbox(handlers, case) == []
    explanation, details = await page(handlers, case)
    assert "la modalidad indicada (prepago o postpago) no corresponde" in explanation
    assert "Avisos del administrador" not in details


@pytest.mark.parametrize(
    ("phone", "line"),
    [
        ("987654321", "987654321"),
        ("+51987654321", "987654321"),
        ("51987654321", "987654321"),
        ("98765432", None),  # 8 digits: a fixed number
        ("9876543210", None),  # 10 digits
        ("+52987654321", None),  # another country
        ("014412345", None),
        ("", None),
    ],
)
def test_only_a_peruvian_mobile_line_gets_an_sms(phone: str, line: str | None):
    assert notices.sms_line(phone) == line


def test_a_long_text_is_cut_at_a_word_within_its_limit():
    text = "palabra " * 60
    cut = notices.bounded(text, notices.SMS_LIMIT)
    assert len(cut) <= notices.SMS_LIMIT and cut.endswith("palabra…")
    assert notices.bounded("corto", notices.SMS_LIMIT) == "corto"


def test_the_notice_names_the_first_numbers_and_counts_the_rest():
    row = {
        "numbers": [
            {"first": "940000001", "last": "940000001"},
            {"first": "940000010", "last": "940000019"},
            {"first": "940000030", "last": "940000030"},
            {"first": "940000040", "last": "940000040"},
        ],
        "number_count": 13,
    }
    assert notices.named_numbers(row) == "******001, ******010 a 019, ******030 y 1 más"
    assert spanish_instant(SCHEDULED, ZoneInfo("America/Lima")) == (
        "martes 24 de noviembre de 2026, 00:30"
    )


def test_a_request_cancelled_before_it_could_be_scheduled_says_so():
    # Never schedulable: a fixed line that was never installed (issue 15, item 4).
    assert notices.outcome_sentence("cancelled", MOVISTAR, CLARO, None, False) == (
        notices.NOT_INSTALLED.format(recipient=CLARO)
    )
    assert notices.outcome_sentence("cancelled", MOVISTAR, CLARO, None, True).startswith(
        f"{CLARO} no programó el cambio dentro del plazo"
    )
    assert notices.outcome_sentence("admissible", MOVISTAR, CLARO, None, True) == ""
