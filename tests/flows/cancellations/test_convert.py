"""Daily reports parsed into the flow's commands, and the wire enums against the stored names
(pure: no server)."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.instants import UNREADABLE
from npc.flows.cancellations import convert
from npc.flows.cancellations.rules import (
    AttentionChannel,
    DocumentType,
    RequestKind,
    TrackedService,
)
from npc.v1 import cancellations_pb2 as pb
from npc.v1 import common_pb2
from tests.flows.cancellations.test_cancellations import FIRST, ON_SUNDAY, record


def test_an_oversized_report_is_read_only_one_record_past_the_limit() -> None:
    request = pb.SubmitDailyReportRequest(
        report_date=FIRST.isoformat(), records=[record(f"BJ-{k:04d}") for k in range(50)]
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
    request = pb.SubmitDailyReportRequest(report_date=FIRST.isoformat(), records=[record(), bad])
    first, second = convert.daily_report(request, limit=10).records
    assert (first.requested_at, first.executed_at) == (ON_SUNDAY, None)
    assert second.requested_at is UNREADABLE and second.executed_at is UNREADABLE
    assert (second.request_code, second.channel) == ("BJ-0002", AttentionChannel.STORE)
