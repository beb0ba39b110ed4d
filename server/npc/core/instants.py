"""Instants on the wire and the nightly change window.

Requests carry protobuf Timestamps. A flow's convert.py reads one with `read_instant` into an
`Instant`: None when unset, `UNREADABLE` when set to something no datetime holds (nanos outside
one second, a year outside 1..9999). The handler's checks turn it into a datetime with
`check_instant`, which records "required" or "not a valid instant" among the request's other
violations, so a request is refused with all its mistakes at once, in the order of its checks.
`timestamp` does both for code that still reads protobuf; `to_timestamp` writes an instant.
The change window is when numbers may change hands; portability schedules executions in it and
returns disable numbers in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Final, Protocol, TypeAlias

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.calendar import BusinessCalendar
from npc.core.validation import Violations

NOT_AN_INSTANT: Final = "not a valid instant"
# What a datetime holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_FIRST_SECOND: Final = -62_135_596_800
_LAST_SECOND: Final = 253_402_300_799
_NANOS_PER_SECOND: Final = 1_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)


class Unreadable(Enum):
    """A wire value that was set but that its field cannot hold: a Timestamp naming no instant (or,
    in a query, an enum number the domain does not know, where unset means "any"). Kept apart
    from unset so the handler refuses it among the request's other violations."""

    VALUE = "unreadable"


UNREADABLE: Final = Unreadable.VALUE

# A Timestamp field of a command: None when unset, UNREADABLE when no datetime holds it.
Instant: TypeAlias = datetime | Unreadable | None


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (the field stays unset)."""
    if value is None:
        return None
    # The seconds and nanoseconds since the epoch by date arithmetic: Timestamp.FromDatetime
    # goes through a time tuple and calendar.timegm, several times the cost, for every instant
    # of every answer. A naive datetime is UTC, as FromDatetime takes it.
    since = value - (_EPOCH if value.tzinfo is not None else _NAIVE_EPOCH)
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000)


def read_instant(message: Message, name: str) -> Instant:
    """The Timestamp field `name` of a wire message as an aware UTC datetime; None when unset,
    UNREADABLE when it names no instant a datetime holds."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    seconds = value.seconds
    nanos = value.nanos
    if not 0 <= nanos < _NANOS_PER_SECOND or not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        return UNREADABLE
    # What Timestamp.ToDatetime(tzinfo=UTC) computes, without re-checking the bounds checked
    # here, and with positional (days, seconds, microseconds): a daily report reads two instants
    # in each of up to 200,000 records.
    return _EPOCH + timedelta(0, seconds, nanos // 1000)


def check_instant(
    v: Violations, field: str, value: Instant, *, required: bool = True
) -> datetime | None:
    """The datetime of a command's instant; None when unset (recorded in `v` as "required" when
    `required`) or unreadable (recorded as "not a valid instant")."""
    if value is None:
        if required:
            v.add(field, "required")
        return None
    if value is UNREADABLE:
        v.add(field, NOT_AN_INSTANT)
        return None
    return value


def timestamp(
    v: Violations, field: str, message: Message, name: str, *, required: bool = True
) -> datetime | None:
    """A Timestamp field of `message` as an aware datetime (None when unset and optional): the
    wire reader and the check in one, for handlers that still read protobuf."""
    return check_instant(v, field, read_instant(message, name), required=required)


def within(
    v: Violations,
    field: str,
    instant: datetime | None,
    now: datetime,
    *,
    past: timedelta,
    future: timedelta,
) -> None:
    """The instant lies between now - `past` and now + `future`."""
    if instant is not None and not now - past <= instant <= now + future:
        v.add(field, "outside the accepted range of instants")


class WindowSettings(Protocol):
    """The settings that define the change window (npc.config.PortabilitySettings has them)."""

    @property
    def change_window_start(self) -> time: ...

    @property
    def change_window_end(self) -> time: ...

    @property
    def max_outage(self) -> timedelta: ...


@dataclass(frozen=True)
class ChangeWindow:
    """The nightly change window of one jurisdiction, in its local time."""

    calendar: BusinessCalendar
    settings: WindowSettings

    def start_on(self, day: date) -> datetime:
        """UTC instant at which the change window opens on local date `day`."""
        return self.calendar.at(day, self.settings.change_window_start)

    def end_for(self, window_start: datetime) -> datetime:
        """UTC instant at which the window opened at `window_start` closes."""
        start = self.settings.change_window_start
        end = self.settings.change_window_end
        length = (datetime.combine(date.min, end) - datetime.combine(date.min, start)) % timedelta(
            days=1
        ) or timedelta(days=1)
        return window_start + length

    def containing(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The change window (start, end) that contains `instant`, if any."""
        try:
            local_day = self.calendar.local_date(instant)
            for day in (local_day - timedelta(days=1), local_day):
                start = self.start_on(day)
                end = self.end_for(start)
                if start <= instant < end:
                    return start, end
        except OverflowError:
            pass  # at the ends of the calendar (year 1, year 9999) there is no window
        return None

    @property
    def max_outage(self) -> timedelta:
        """How long a number may be out of service while it changes hands (3 hours)."""
        return self.settings.max_outage
