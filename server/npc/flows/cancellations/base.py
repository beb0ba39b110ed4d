"""What every part of the cancellations handler shares: the core, the settings and the instants
derived from them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from npc.config import CancellationsSettings
from npc.core.calendar import BusinessCalendar
from npc.core.runtime import Core
from npc.flows.cancellations.rules import (
    DAILY_REPORT_NOTE,
    FLOW,
    DeadlineKind,
    day_case,
)
from npc.store.database import Txn


class CancellationsBase:
    """The core, the settings and the jurisdiction's calendar of the cancellations tracking."""

    def __init__(self, core: Core, settings: CancellationsSettings) -> None:
        self.core = core
        self.settings = settings
        self.calendar = core.calendar(settings.jurisdiction)

    def report_due_at(self, report_date: date) -> datetime:
        """When the report of `report_date` is due: `report_due_time` local on the next day."""
        return report_due_at(self.calendar, self.settings, report_date)

    def scheduled_deadline(self, scheduled: date) -> datetime:
        """The end (local midnight) of a scheduled date."""
        return self.calendar.at(scheduled + timedelta(days=1), datetime.min.time())

    def arm_report_deadline(self, txn: Txn, operator: str, report_date: date) -> None:
        """Set the deadline of one operator's report date."""
        arm_report_deadline(txn, operator, report_date, self.report_due_at(report_date))


def report_due_at(
    calendar: BusinessCalendar, settings: CancellationsSettings, report_date: date
) -> datetime:
    """When the report of `report_date` is due: `report_due_time` local on the next day."""
    return calendar.at(report_date + timedelta(days=1), settings.report_due_time)


def arm_report_deadline(txn: Txn, operator: str, report_date: date, due_at: datetime) -> None:
    """Set the deadline of one operator's report date, due at `due_at`."""
    txn.set_deadline(
        FLOW,
        DeadlineKind.DAILY_REPORT,
        day_case(operator, report_date),
        due_at,
        DAILY_REPORT_NOTE,
        {"operator": operator, "report_date": report_date.isoformat()},
    )
