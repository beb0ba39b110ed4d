"""`to_timestamp` computes by date arithmetic what Timestamp.FromDatetime computes through a time
tuple: the same seconds and nanoseconds for every kind of datetime an answer carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.instants import to_timestamp

LIMA = ZoneInfo("America/Lima")


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 23, 59, 59, 999_999, tzinfo=LIMA),  # the next UTC day
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before the epoch
        datetime(2026, 3, 1, 0, 0, 0, 1),  # naive: UTC
        datetime(1, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_the_same_instant_as_from_datetime(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert to_timestamp(value) == expected


def test_none_leaves_the_field_unset() -> None:
    assert to_timestamp(None) is None
