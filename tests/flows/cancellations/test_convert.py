"""Daily reports parsed into the flow's commands, and the wire enums against the stored names
(pure: no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date

from npc.core.dates import UNREADABLE_DATE
from npc.core.instants import UNREADABLE
from npc.flows.cancellations import convert
from npc.flows.cancellations.model import ReportReceipt
from npc.flows.cancellations.rules import (
    AttentionChannel,
    DocumentType,
    RequestKind,
    TrackedService,
)
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import common_pb2
from tests.flows.cancellations.test_cancellations import FIRST, ON_SUNDAY, record
from tests.helpers import day


def test_an_oversized_report_is_read_only_one_record_past_the_limit() -> None:
    request = pb.SubmitDailyReportRequest(
        report_date=day(FIRST), records=[record(f"BJ-{k:04d}") for k in range(50)]
    )
    report = convert.daily_report(request, limit=3)
    assert report.record_count == 50
    assert [r.request_code for r in report.records] == ["BJ-0000", "BJ-0001", "BJ-0002", "BJ-0003"]
    # Parsed when read, by index or slice, within the records read.
    assert (report.records[-1].request_code, len(report.records)) == ("BJ-0003", 4)
    assert [r.request_code for r in report.records[1:3]] == ["BJ-0001", "BJ-0002"]
    with pytest.raises(IndexError):
        report.records[4]
    whole = convert.daily_report(request, limit=50)
    assert (len(whole.records), whole.record_count) == (50, 50)


def test_wire_names_map_to_the_names_stored_since_the_first_report() -> None:
    migration = record(
        kind=pb.REQUEST_KIND_PLAN_MIGRATION, service=pb.TRACKED_SERVICE_FIXED_TELEPHONY
    )
    parsed = convert.request_record(migration)
    assert (parsed.kind, parsed.service) == ("migration", "fixed")
    assert parsed.kind is RequestKind.MIGRATION and parsed.service is TrackedService.FIXED
    assert parsed.subscriber_document is not None
    assert parsed.subscriber_document.type is DocumentType.DNI
    assert convert.SERVICES.to_wire("mobile") == pb.TRACKED_SERVICE_MOBILE_TELEPHONY
    assert convert.DOCUMENT_TYPES.to_wire("carnet_extranjeria") == (
        common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA
    )
    unset = convert.request_record(pb.RequestRecord(request_code="X"))
    assert (unset.kind, unset.state, unset.subscriber_document, unset.requested_at) == (
        None,
        None,
        None,
        None,
    )


def test_an_instant_no_date_holds_is_kept_as_unreadable_for_the_checks() -> None:
    bad = record(
        "BJ-0002",
        requested_at=Timestamp(seconds=253402300800),  # year 10000
        executed_at=Timestamp(seconds=1, nanos=10**9),  # nanos beyond one second
    )
    request = pb.SubmitDailyReportRequest(report_date=day(FIRST), records=[record(), bad])
    first, second = convert.daily_report(request, limit=10).records
    assert (first.requested_at, first.executed_at) == (ON_SUNDAY, None)
    assert second.requested_at is UNREADABLE and second.executed_at is UNREADABLE
    assert (second.request_code, second.channel) == ("BJ-0002", AttentionChannel.STORE)


def test_dates_read_as_days_unreadable_ones_kept_for_the_checks() -> None:
    # Parsing refuses nothing for a date: the handler names it with the report's other mistakes.
    request = pb.SubmitDailyReportRequest(
        report_date=Date(year=2026, month=11, day=31),
        records=[
            record(),
            record("BJ-0002", scheduled_date=Date(year=2026, month=2, day=29)),
            record("BJ-0003", scheduled_date=None),
        ],
    )
    report = convert.daily_report(request, limit=10)
    assert report.report_date is UNREADABLE_DATE
    assert [r.scheduled_date for r in report.records] == [
        date(2026, 11, 25),
        UNREADABLE_DATE,
        None,
    ]
    assert convert.daily_report(pb.SubmitDailyReportRequest(), limit=10).report_date is None
    query = convert.compliance_query(
        pb.DailyReportComplianceRequest(from_date=day(FIRST), to_date=Date(year=2026))
    )
    assert (query.from_date, query.to_date) == (FIRST, UNREADABLE_DATE)


def test_dates_render_as_google_type_dates() -> None:
    receipt = convert.receipt_message(
        ReportReceipt(
            operator="claro",
            report_date=FIRST,
            records=0,
            version=1,
            received_at=datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
            due_at=datetime(2026, 11, 24, 4, 59, tzinfo=UTC),
            on_time=True,
        )
    )
    assert receipt.report_date == Date(year=2026, month=11, day=22)
    compliance = convert.compliance_message(
        [
            {
                "operator": "claro",
                "days_due": 2,
                "received": 1,
                "on_time": 0,
                "late": 1,
                "missing": 1,
                "missing_dates": [date(2026, 11, 24)],
                "late_dates": [date(2026, 11, 23)],
            }
        ]
    )
    (claro,) = compliance.operators
    assert list(claro.missing_dates) == [Date(year=2026, month=11, day=24)]
    assert list(claro.late_dates) == [Date(year=2026, month=11, day=23)]
