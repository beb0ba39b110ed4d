"""Bodies of the calendar's events (npc.core.holidays): the regulator's decreed holidays."""

from __future__ import annotations

from npc.api.event_bodies._convert import Converter, Payload
from npc.core.dates import iso_to_date
from npc.core.holidays import HOLIDAY_DECREED
from npc.v1 import events_pb2


def holiday_decreed(payload: Payload) -> events_pb2.HolidayDecreed:
    """A date of a country's calendar that became, or stopped being, a holiday."""
    return events_pb2.HolidayDecreed(
        country=payload["country"],
        date=iso_to_date(payload.get("date")),
        holiday=bool(payload.get("holiday")),
        name=payload.get("name") or "",
    )


BODIES: dict[str, tuple[str, Converter]] = {HOLIDAY_DECREED: ("holiday_decreed", holiday_decreed)}
