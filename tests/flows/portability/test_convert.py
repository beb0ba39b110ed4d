"""PortabilityService's messages into the flow's commands and back (pure: no server).

The handler never sees protobuf: an unspecified or unknown enum number reaches it as None, an
instant no datetime can hold as UNREADABLE and a Date that is no day of the calendar as
UNREADABLE_DATE, so its checks refuse them with the same field paths and texts as when they read
the wire messages, together with every other mistake of the request.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.core.dates import NOT_A_DATE, UNREADABLE_DATE
from npc.core.errors import InvalidArgument
from npc.core.instants import UNREADABLE
from npc.core.validation import Violations
from npc.flows.portability import convert
from npc.flows.portability.rules import OBJECTION_CODES, ObjectionReason, State
from npc.flows.portability.validation import (
    check_answer,
    check_confirmation,
    check_port_request,
)
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb
from tests.helpers import block, subscriber, ts

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_unknown_numbers_and_unreadable_instants_are_refused_with_the_other_mistakes() -> None:
    request = pb.SubmitPortRequestRequest(
        donor="Movistar",
        service=common_pb2.ServiceType.ValueType(99),
        subscriber=subscriber(),
        numbers=[block("940000050", modality=77)],
        received_at=Timestamp(seconds=253402300800),  # year 10000
        form_number="F-1",
        installation_date=Date(year=2026, month=2, day=30),
    )
    command = convert.port_request_submission(request)
    assert command.service is None
    assert command.numbers[0].modality is None
    assert command.received_at is UNREADABLE
    assert command.installation_date is UNREADABLE_DATE
    with pytest.raises(InvalidArgument) as refused:
        check_port_request(Violations(), command, NOW, NOW.date(), 10_000)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("donor", "required: an operator id such as 'claro'"),
        ("service", "required: SERVICE_TYPE_MOBILE or SERVICE_TYPE_FIXED"),
        ("numbers[0].modality", "required: MODALITY_PREPAID or MODALITY_POSTPAID"),
        ("received_at", "not a valid instant"),
        ("installation_date", NOT_A_DATE),
    ]


@pytest.mark.parametrize(
    "wire",
    [
        Date(year=2026, month=13, day=1),
        Date(year=2026, month=2, day=29),  # 2026 is no leap year
        Date(year=2026, month=10),  # a partial date: no day
        Date(month=10, day=31),  # no year
        Date(),  # set, but all zero
        Date(year=10000, month=1, day=1),
        Date(year=2026, month=-1, day=1),
    ],
)
def test_a_date_that_names_no_day_is_refused_with_the_other_mistakes_of_the_answer(wire) -> None:
    answer = convert.port_request_answer(
        pb.AnswerPortRequestRequest(
            port_request_id="SP0000000001",
            objection=pb.Objection(
                reason=pb.OBJECTION_REASON_DEBT,
                debt=pb.Debt(owed=common_pb2.Money(amount="0", currency="PEN"), due_date=wire),
            ),
        )
    )
    assert answer.objection is not None and answer.objection.debt.due_date is UNREADABLE_DATE
    v = Violations()
    check_answer(v, answer.accept, answer.objection)
    assert [(item.field, item.description) for item in v.items] == [
        (
            "objection.debt.owed.amount",
            "required for a debt objection: a positive amount such as 120.50",
        ),
        ("objection.debt.due_date", NOT_A_DATE),
    ]


def test_dates_read_as_days_and_an_unset_one_is_none() -> None:
    installed = convert.installation_report(
        pb.ReportInstallationRequest(
            port_request_id="SP0000000001", installation_date=Date(year=2028, month=2, day=29)
        )
    )
    assert installed.installation_date == date(2028, 2, 29)
    assert convert.installation_report(pb.ReportInstallationRequest()).installation_date is None
    unset = convert.port_request_answer(
        pb.AnswerPortRequestRequest(objection=pb.Objection(reason=pb.OBJECTION_REASON_DEBT))
    )
    assert unset.objection is not None and unset.objection.debt.due_date is None
    v = Violations()
    check_answer(v, False, unset.objection)
    assert ("objection.debt.due_date", "required for a debt objection: the bill's due date") in [
        (item.field, item.description) for item in v.items
    ]


def test_an_unset_instant_is_none_and_a_confirmation_defaults_to_the_call() -> None:
    confirmation = convert.execution_confirmation(
        pb.ConfirmPortExecutionRequest(
            port_request_id="SP0000000001", step=pb.EXECUTION_STEP_DONOR_DISABLED
        )
    )
    assert confirmation.done_at is None
    assert check_confirmation(Violations(), confirmation, NOW) == NOW
    stated = convert.execution_confirmation(
        pb.ConfirmPortExecutionRequest(
            port_request_id="SP0000000001", step=pb.ExecutionStep.ValueType(3), done_at=ts(NOW)
        )
    )
    assert stated.done_at == NOW
    with pytest.raises(InvalidArgument) as refused:
        check_confirmation(Violations(), stated, NOW)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("step", "required: EXECUTION_STEP_DONOR_DISABLED or EXECUTION_STEP_RECIPIENT_ENABLED")
    ]


def test_a_listing_tells_an_unknown_state_from_none() -> None:
    assert convert.port_request_listing(pb.ListPortRequestsRequest()).state is None
    listed = convert.port_request_listing(
        pb.ListPortRequestsRequest(state=pb.PORT_REQUEST_STATE_OBJECTED_DEBT)
    )
    assert listed.state is State.OBJECTED_DEBT
    assert (
        convert.port_request_listing(
            pb.ListPortRequestsRequest(state=pb.PortRequestState.ValueType(42))
        ).state
        is UNREADABLE
    )


def test_objection_codes_are_the_wire_numbers_of_their_reasons() -> None:
    # REC01PRTnn names the reason whose wire number is nn (portability.proto).
    for reason, code in OBJECTION_CODES.items():
        assert code == f"REC01PRT{convert.OBJECTION_REASONS.to_wire(reason):02d}"
    assert ObjectionReason.MISUSE not in OBJECTION_CODES


def test_a_stored_request_renders_with_its_wire_enums() -> None:
    row = {
        "id": "SP0000000007",
        "recipient": "claro",
        "donor": "movistar",
        "service": "fixed",
        "subscriber": {
            "name": "Rosa",
            "document": {"type": "ruc", "number": "20100070970"},
        },
        "numbers": [{"first": "12000001", "last": "12000002", "modality": "prepaid"}],
        "number_count": 2,
        "special_client": False,
        "state": "objected_debt",
        "form_number": "F-1",
        "prior_consultation_id": None,
        "objection": {
            "reason": "debt",
            "code": "REC01PRT09",
            "detail": "",
            "debt": {"amount": "12.50", "currency": "PEN", "due_date": "2026-11-01"},
        },
        "donor_silent": False,
        "installation_date": date(2026, 11, 20),
        "rejection_reason": None,
        **dict.fromkeys(
            (
                "received_at",
                "answered_at",
                "admissible_at",
                "schedule_deadline",
                "execution_limit",
                "scheduled_at",
                "executed_at",
                "donor_disabled_at",
                "recipient_enabled_at",
                "closed_at",
            )
        ),
        "submitted_at": NOW,
        "donor_deadline": NOW,
    }
    message = convert.request_message(row)
    assert message.service == common_pb2.SERVICE_TYPE_FIXED
    assert message.state == pb.PORT_REQUEST_STATE_OBJECTED_DEBT
    assert message.subscriber.document.type == common_pb2.DOCUMENT_TYPE_RUC
    assert message.numbers[0].modality == common_pb2.MODALITY_PREPAID
    assert message.objection.reason == pb.OBJECTION_REASON_DEBT
    assert message.objection.debt.owed.amount == "12.50"
    assert message.installation_date == Date(year=2026, month=11, day=20)
    assert message.objection.debt.due_date == Date(year=2026, month=11, day=1)
    assert not message.HasField("scheduled_at")
