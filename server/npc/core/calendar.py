"""Business calendars per jurisdiction, from the `holidays` package and the regulator's decrees.

Deadlines are computed in the jurisdiction's local time and stored as absolute UTC instants. A
holiday decreed at short notice (or one the package lists that was moved) is applied on top of the
package's data with `apply_decrees`; every process loads the decrees from PostgreSQL at start and
again when the log says they changed (`npc.core.holidays`). A deadline already stored keeps its
instant: only deadlines computed afterwards see the change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import holidays


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and local time of one jurisdiction."""

    country: str
    timezone: str
    _cache: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)
    # The regulator's decrees: a date with a name is a holiday, a date with None is not one
    # (whatever the package says).
    _decrees: dict[date, str | None] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        """The jurisdiction's time zone."""
        return ZoneInfo(self.timezone)

    def _holidays_of(self, year: int) -> Any:
        if year not in self._cache:
            self._cache[year] = holidays.country_holidays(self.country, years=year)
        return self._cache[year]

    @property
    def decrees(self) -> dict[date, str | None]:
        """A copy of the decrees applied (`apply_decrees` takes it back)."""
        return dict(self._decrees)

    def apply_decrees(self, decrees: Mapping[date, str | None]) -> None:
        """Replace the decreed changes to the package's holidays: a name adds a holiday on its
        date, None removes the package's holiday of that date."""
        self._decrees.clear()
        self._decrees.update(decrees)

    def is_holiday(self, day: date) -> bool:
        """True when `day` is a public holiday."""
        if day in self._decrees:
            return self._decrees[day] is not None
        return day in self._holidays_of(day.year)

    def is_holiday_by_package(self, day: date) -> bool:
        """True when the `holidays` package lists `day`, whatever the decrees say."""
        return day in self._holidays_of(day.year)

    def holiday_name(self, day: date) -> str | None:
        """Name of the holiday on `day`, if any."""
        if day in self._decrees:
            return self._decrees[day]
        name = self._holidays_of(day.year).get(day)
        return str(name) if name else None

    def holidays_in(self, year: int) -> Iterator[tuple[date, str, str]]:
        """Every holiday of `year` in date order as (date, name, source): source "package",
        "decreed", or "removed" (the package's holiday a decree took away: not a holiday)."""
        package = self._holidays_of(year)
        days = set(package) | {d for d in self._decrees if d.year == year}
        for day in sorted(days):
            if day not in self._decrees:
                yield day, str(package.get(day)), "package"
            elif (name := self._decrees[day]) is not None:
                yield day, name, "decreed"
            elif day in package:
                yield day, str(package.get(day)), "removed"

    def is_business_day(self, day: date) -> bool:
        """True when `day` is neither a weekend day nor a public holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)

    def local(self, instant: datetime) -> datetime:
        """The local wall time of a UTC instant."""
        return instant.astimezone(self.zone)

    def local_date(self, instant: datetime) -> date:
        """The local calendar date of an instant."""
        return self.local(instant).date()

    def at(self, day: date, clock_time: time) -> datetime:
        """The UTC instant of a local date and time."""
        return datetime.combine(day, clock_time, tzinfo=self.zone).astimezone(UTC)

    def add_business_days(self, day: date, count: int) -> date:
        """The business day `count` business days after `day`."""
        current = day
        remaining = count
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_business_day(current):
                remaining -= 1
        return current

    def end_of_business_days(self, instant: datetime, count: int) -> datetime:
        """End (local midnight) of the `count`-th business day after the day of `instant`."""
        last = self.add_business_days(self.local_date(instant), count)
        return self.at(last + timedelta(days=1), time(0, 0))

    def end_of_calendar_days(self, instant: datetime, count: int) -> datetime:
        """End (local midnight) of a term of `count` calendar days whose first day is the local
        date of `instant`: however late that day began, the term never lasts longer than
        `count` days."""
        return self.at(self.local_date(instant) + timedelta(days=count), time(0, 0))


PERU = BusinessCalendar("PE", "America/Lima")
COLOMBIA = BusinessCalendar("CO", "America/Bogota")

CALENDARS: dict[str, BusinessCalendar] = {"PE": PERU, "CO": COLOMBIA}


def calendar_for(country: str) -> BusinessCalendar:
    """The calendar of a jurisdiction by ISO country code."""
    try:
        return CALENDARS[country.upper()]
    except KeyError:
        raise ValueError(f"no business calendar for {country!r}") from None


def utc(instant: datetime) -> datetime:
    """Normalise an aware datetime to UTC."""
    return instant.astimezone(UTC)
