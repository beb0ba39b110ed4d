"""Calendar dates on the wire: `google.type.Date` (year, month, day).

A due date, an installation date, a report date is a day of the calendar, not an instant, so the
API carries it as a Date rather than a Timestamp. A flow's convert.py reads one with `read_date`
into a `Day`: None when unset, `UNREADABLE_DATE` when set to something that is no full date (month
13, February 30, a year, month or day left 0). The handler's checks turn it into a `date` with
`check_date`, which records "required" or "not a valid date" among the request's other violations,
so a request is refused with all its mistakes at once, in the order of its checks. `to_date`
writes a date; `iso_to_date` writes one stored as YYYY-MM-DD text (event payloads).
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Final, TypeAlias, overload

from google.protobuf.message import Message
from google.type.date_pb2 import Date

from npc.core.validation import Violations

NOT_A_DATE: Final = "not a valid date: a full year (1-9999), month and day"


class UnreadableDate(Enum):
    """A Date field that was set but names no day of the calendar. Kept apart from unset so the
    handler refuses it among the request's other violations instead of calling it missing."""

    VALUE = "unreadable date"


UNREADABLE_DATE: Final = UnreadableDate.VALUE

# A Date field of a command: None when unset, UNREADABLE_DATE when it is no full date.
Day: TypeAlias = date | UnreadableDate | None


def from_date(value: Date) -> date | None:
    """The day a Date names, or None when it is no full date: google.type.Date also allows
    partial dates (a 0 year, month or day), which no field of npc accepts."""
    try:
        # date() bounds the year to 1..9999, the month to 1..12 and the day to the month's.
        return date(value.year, value.month, value.day)
    except ValueError:
        return None


def read_date(message: Message, name: str) -> Day:
    """The Date field `name` of a wire message; None when unset, UNREADABLE_DATE when set to
    something that is no full date."""
    if not message.HasField(name):
        return None
    day = from_date(getattr(message, name))
    return UNREADABLE_DATE if day is None else day


def check_date(
    v: Violations, field: str, value: Day, *, required: bool = True, missing: str = "required"
) -> date | None:
    """The date of a command's Day; None when unset (recorded in `v` as `missing` when
    `required`) or unreadable (recorded as "not a valid date")."""
    if value is None:
        if required:
            v.add(field, missing)
        return None
    if value is UNREADABLE_DATE:
        v.add(field, NOT_A_DATE)
        return None
    return value


@overload
def to_date(value: date) -> Date: ...
@overload
def to_date(value: None) -> None: ...
@overload
def to_date(value: date | None) -> Date | None: ...
def to_date(value: date | None) -> Date | None:
    """A google.type.Date, or None (the field stays unset)."""
    if value is None:
        return None
    return Date(year=value.year, month=value.month, day=value.day)


def iso_to_date(value: str | None) -> Date | None:
    """A YYYY-MM-DD text (as event payloads store dates) as a Date; None when empty."""
    if not value:
        return None
    return to_date(date.fromisoformat(value))
