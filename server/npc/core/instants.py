"""Instants on the wire and the nightly change window.

Requests carry protobuf Timestamps; flows read them with `timestamp` (bounded to what a datetime
holds) and write them with `to_timestamp`. The change window is when numbers may change hands;
portability schedules executions in it and returns disable numbers in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.calendar import BusinessCalendar
from npc.core.validation import Violations


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (the field stays unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def timestamp(
    v: Violations, field: str, message: object, name: str, *, required: bool = True
) -> datetime | None:
    """A Timestamp field of `message` as an aware datetime (None when unset and optional)."""
    if not message.HasField(name):  # type: ignore[attr-defined]
        if required:
            v.add(field, "required")
        return None
    value: Timestamp = getattr(message, name)
    if not 0 <= value.nanos < 1_000_000_000 or not -62135596800 <= value.seconds <= 253402300799:
        v.add(field, "not a valid instant")
        return None
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        v.add(field, "not a valid instant")
        return None


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
