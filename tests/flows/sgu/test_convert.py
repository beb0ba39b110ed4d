"""The SGU's wire translation and its pure texts (no server): what the handler is given for odd
requests, and the texts operators and subscribers read, unchanged by the move out of the handler."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.errors import InvalidArgument
from npc.core.instants import UNREADABLE, check_instant
from npc.core.validation import Violations
from npc.flows.sgu import convert, emails
from npc.flows.sgu.catalogue import check_subcategory
from npc.flows.sgu.registration import check_registration
from npc.flows.sgu.rules import CHANNEL_REQUIRED, Channel, DeadlineUnit, State
from npc.flows.sgu.web import STATES
from npc.v1 import common_pb2
from npc.v1 import sgu_pb2 as pb


def _violations(error: InvalidArgument) -> dict[str, str]:
    return {v.field: v.description for v in error.violations}


def test_instants_read_as_unset_unreadable_or_a_datetime() -> None:
    when = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    start = Timestamp()
    start.FromDatetime(when)
    command = convert.record_outage(
        pb.RecordOutageRequest(starts_at=start, ends_at=Timestamp(seconds=0, nanos=-1))
    )
    assert command.starts_at == when
    assert command.ends_at is UNREADABLE
    report = convert.get_report(pb.GetReportRequest())
    assert report.from_ is None and report.to is None

    v = Violations()
    assert check_instant(v, "starts_at", command.starts_at) == when
    assert check_instant(v, "ends_at", command.ends_at) is None
    assert check_instant(v, "from", report.from_) is None
    assert check_instant(v, "to", report.to, required=False) is None
    assert [(i.field, i.description) for i in v.items] == [
        ("ends_at", "not a valid instant"),
        ("from", "required"),
    ]


def test_an_unknown_channel_is_refused_with_the_text_operators_know() -> None:
    request = pb.RegisterProblemRequest(
        channel=77,  # type: ignore[arg-type]
        subscriber=common_pb2.Subscriber(
            name="Ana Quispe",
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
            ),
        ),
        number="987654321",
        subcategory="REC-01",
        description="No tengo señal",
    )
    command = convert.register_problem(request)
    assert command.channel is None and command.office is None
    with pytest.raises(InvalidArgument) as refused:
        check_registration(command)
    assert _violations(refused.value) == {"channel": CHANNEL_REQUIRED}
    assert CHANNEL_REQUIRED == "required: CHANNEL_WEB, CHANNEL_APP or CHANNEL_OFFICE"

    # An office given from the web is refused, even an empty one: presence is what counts.
    web = convert.register_problem(
        pb.RegisterProblemRequest(
            channel=pb.CHANNEL_WEB,
            subscriber=request.subscriber,
            number="987654321",
            subcategory="REC-01",
            description="No tengo señal",
            office=pb.Office(),
        )
    )
    assert web.channel is Channel.WEB
    with pytest.raises(InvalidArgument) as refused:
        check_registration(web)
    assert _violations(refused.value) == {
        "subscriber.email": "required from the web or app: the address to confirm",
        "office": "only for problems registered at an office",
    }


def test_a_subcategory_crosses_the_wire_both_ways() -> None:
    wire = pb.Subcategory(
        code="REC-01",
        name="Recarga no acreditada",
        category="REC",
        category_name="Recargas",
        service="mobile",
        deadline_unit=pb.DEADLINE_UNIT_HOURS,
        deadline_amount=48,
        claimable=True,
        claim_business_days=15,
        active=True,
    )
    entry = convert.subcategory(wire)
    assert entry.deadline_unit is DeadlineUnit.HOURS
    row = {**vars(entry), "deadline_unit": str(entry.deadline_unit)}  # as stored
    assert convert.subcategory_message(row) == wire

    v = Violations()
    check_subcategory(v, convert.subcategory(pb.Subcategory(code="REC-01", category="REC")))
    assert ("subcategory.deadline_unit", "required: BUSINESS_DAYS or HOURS") in [
        (i.field, i.description) for i in v.items
    ]


def test_every_state_has_its_wire_value_and_its_page_text() -> None:
    for state in State:
        assert convert.STATES.to_domain(convert.STATES.to_wire(state)) is state
    assert set(STATES) == set(State)


def test_the_confirmation_email_reads_as_it_always_did() -> None:
    email = emails.confirm_address(
        "SG0000000001",
        "Recarga no acreditada",
        "987654321",
        "https://sgu.example/sgu/confirmar?token=abc",
        "https://sgu.example/sgu/confirmar",
        "abc",
    )
    assert email.subject == "SGU: confirme su correo para el problema SG0000000001"
    assert email.body == (
        "Registramos su problema SG0000000001 (Recarga no acreditada) con la línea 987654321.\n"
        "Para enviarlo a su empresa operadora, confirme su correo abriendo este enlace:\n"
        "https://sgu.example/sgu/confirmar?token=abc\n"
        "o ingresando este código en https://sgu.example/sgu/confirmar: abc\n"
        "El enlace y el código vencen a las 72 horas.\n"
    )
