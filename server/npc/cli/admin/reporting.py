"""`npc admin add-reporting-operator` and `end-reporting-operator`: who sends the daily
cancellations report, and until when."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta

from npc.cli.common import Subcommands, _date
from npc.config import CancellationsSettings, Settings
from npc.core.calendar import calendar_for
from npc.core.clock import SystemClock
from npc.flows.cancellations.handler import end_reporting_operator, register_reporting_operator
from npc.flows.cancellations.rules import REPORTING_THRESHOLD
from npc.store.database import Database


def add_actions(actions: Subcommands) -> None:
    """Add the reporting-operator actions to `npc admin`."""
    reporting = actions.add_parser(
        "add-reporting-operator",
        help=f"bind an operator (over {REPORTING_THRESHOLD:,} subscribers) to the daily"
        " cancellations report",
    )
    reporting.add_argument("operator", metavar="OPERATOR")
    reporting.add_argument(
        "--since", type=_date, help="first report date it must send (default: today, Lima)"
    )
    reporting.add_argument("--subscribers", type=int, help="its declared number of subscribers")
    reporting.set_defaults(admin_run=add_reporting)
    ending = actions.add_parser(
        "end-reporting-operator", help="end an operator's daily cancellations report"
    )
    ending.add_argument("operator", metavar="OPERATOR")
    ending.add_argument(
        "--last-date", type=_date, help="last report date it must send (default: yesterday, Lima)"
    )
    ending.set_defaults(admin_run=end_reporting)


def _today() -> tuple[CancellationsSettings, datetime, date]:
    """The cancellations settings, now, and today's date in their jurisdiction."""
    settings = Settings.from_env().cancellations
    now = SystemClock().now()
    return settings, now, calendar_for(settings.jurisdiction).local_date(now)


async def add_reporting(db: Database, args: argparse.Namespace) -> int:
    """`npc admin add-reporting-operator OPERATOR`."""
    settings, now, today = _today()
    since = args.since or today
    await register_reporting_operator(
        db, settings, operator=args.operator, since=since, subscribers=args.subscribers, now=now
    )
    print(f"{args.operator} reports cancellations and plan migrations daily from {since}")
    return 0


async def end_reporting(db: Database, args: argparse.Namespace) -> int:
    """`npc admin end-reporting-operator OPERATOR`."""
    _, now, today = _today()
    last = args.last_date or today - timedelta(days=1)
    if not await end_reporting_operator(db, operator=args.operator, until=last, now=now):
        print(f"npc admin: {args.operator} is not a reporting operator", file=sys.stderr)
        return 1
    print(f"{args.operator} reports cancellations and plan migrations up to {last}")
    return 0
