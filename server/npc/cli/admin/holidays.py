"""`npc admin holidays add|remove|list`: holidays the regulator decrees at run time.

A change is stored in PostgreSQL and announced on the log (`calendar.holiday_decreed`), which
every running server follows: deadlines computed from then on use it, those already set keep
their instants (`npc.core.holidays`).
"""

from __future__ import annotations

import argparse
import sys

from npc.cli.common import Subcommands, _date
from npc.core import holidays
from npc.core.calendar import CALENDARS, calendar_for
from npc.core.clock import SystemClock
from npc.store.database import Database


def add_actions(actions: Subcommands) -> None:
    """Add `holidays` and its own actions to `npc admin`."""
    parser = actions.add_parser(
        "holidays", help="add, remove or list a country's holidays (decreed at run time)"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="make a date a holiday (a decree)")
    add.add_argument("country", metavar="COUNTRY", choices=sorted(CALENDARS))
    add.add_argument("date", metavar="DATE", type=_date, help="YYYY-MM-DD, local to the country")
    add.add_argument("name", metavar="NAME", help="the holiday's name, as decreed")
    add.set_defaults(admin_check=_check_name, admin_run=_add)
    remove = verbs.add_parser("remove", help="take a holiday away (decreed or the package's)")
    remove.add_argument("country", metavar="COUNTRY", choices=sorted(CALENDARS))
    remove.add_argument("date", metavar="DATE", type=_date, help="YYYY-MM-DD")
    remove.set_defaults(admin_run=_remove)
    listing = verbs.add_parser("list", help="a year's holidays, the decrees applied")
    listing.add_argument("country", metavar="COUNTRY", choices=sorted(CALENDARS))
    listing.add_argument("--year", type=int, help="default: this year in the country")
    listing.set_defaults(admin_run=_list)


def _check_name(args: argparse.Namespace) -> int | None:
    name = args.name.strip()
    if not name or len(name) > holidays.NAME_LIMIT or not name.isprintable():
        print(
            f"npc admin: NAME is 1 to {holidays.NAME_LIMIT} printable characters", file=sys.stderr
        )
        return 2
    args.name = name
    return None


async def _decree(db: Database, args: argparse.Namespace, name: str | None) -> int:
    await db.migrate()
    try:
        before = await holidays.decree(db, args.country, args.date, name, now=SystemClock().now())
    except holidays.DecreeRefused as refused:
        print(f"npc admin: {refused}", file=sys.stderr)
        return 1
    if name is None:
        print(f"{args.country} {args.date}: no longer a holiday (was {before})")
    else:
        print(f"{args.country} {args.date}: holiday {name}")
    return 0


async def _add(db: Database, args: argparse.Namespace) -> int:
    """`npc admin holidays add COUNTRY DATE NAME`."""
    return await _decree(db, args, args.name)


async def _remove(db: Database, args: argparse.Namespace) -> int:
    """`npc admin holidays remove COUNTRY DATE`."""
    return await _decree(db, args, None)


async def _list(db: Database, args: argparse.Namespace) -> int:
    """`npc admin holidays list COUNTRY [--year Y]`: one line per holiday, decrees marked."""
    await holidays.load(db)
    calendar = calendar_for(args.country)
    year = args.year or calendar.local_date(SystemClock().now()).year
    marks = {"package": "", "decreed": "  (decreed)", "removed": "  (removed by decree)"}
    for day, name, source in calendar.holidays_in(year):
        print(f"{day.isoformat()}  {name}{marks[source]}")
    return 0
