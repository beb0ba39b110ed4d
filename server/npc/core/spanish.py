"""Spanish for subscribers: dates, instants and masked numbers, independent of the machine's locale,
for what a flow's handler sends (the notices), which may not import the web layer. The public
pages (`npc.web.site`) use the same functions: the pages and the notices say the same."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

_WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


def spanish_date(day: date) -> str:
    """``lunes 23 de noviembre de 2026``, independent of the machine's locale."""
    return f"{_WEEKDAYS[day.weekday()]} {day.day} de {_MONTHS[day.month - 1]} de {day.year}"


def spanish_instant(instant: datetime, zone: ZoneInfo) -> str:
    """``lunes 23 de noviembre de 2026, 10:00`` in the jurisdiction's local time."""
    local = instant.astimezone(zone)
    return f"{spanish_date(local.date())}, {local.hour:02d}:{local.minute:02d}"


def mask_number(number: str, visible: int = 3) -> str:
    """A phone number with all but its last digits hidden: ``******001``."""
    return "*" * max(len(number) - visible, 0) + number[-visible:]
