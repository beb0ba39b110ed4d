"""`npc admin ACTION`: reference data, PKI, the log's integrity and registry imports.

Each module here adds its actions to the `admin` sub-parser with what runs them (`set_defaults`):
`admin_offline(args)` for an action that needs no database, else `admin_check(args)` (an exit
code when the arguments are refused, checked before connecting) and `admin_run(db, args)`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg

from npc.cli.admin import holidays, imports, ledger, pki, reference, reporting
from npc.cli.common import Subcommands, migrate
from npc.cli.record import read_record
from npc.store.database import Database


def add_parser(commands: Subcommands) -> None:
    """Add `admin` and its actions to the commands of `npc`."""
    admin = commands.add_parser(
        "admin", help="reference data: operators, tokens, ranges (NPC_DATABASE_URL)"
    )
    admin.add_argument(
        "--database-url",
        help="default: NPC_DATABASE_URL, else the embedded one of a running `npc serve`",
    )
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("migrate", help="apply pending schema migrations").set_defaults(
        admin_run=_migrate
    )
    # In the order `npc admin --help` lists them.
    pki.add_actions(actions)
    ledger.add_actions(actions)
    reference.add_actions(actions)
    imports.add_actions(actions)
    reporting.add_actions(actions)
    holidays.add_actions(actions)
    admin.set_defaults(func=cmd_admin)


async def _migrate(db: Database, args: argparse.Namespace) -> int:
    """`npc admin migrate`."""
    applied = await migrate(db, os.environ.get("NPC_MIGRATION_DATABASE_URL"))
    print(f"applied {', '.join(applied)}" if applied else "schema up to date")
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """`npc admin …`."""
    offline = getattr(args, "admin_offline", None)
    if offline is not None:
        code: int = offline(args)
        return code
    url = args.database_url or os.environ.get("NPC_DATABASE_URL") or _recorded_database()
    if not url:
        print(
            "npc admin: set NPC_DATABASE_URL (or pass --database-url), or start `npc serve`"
            " with its embedded PostgreSQL (recorded in NPC_VAR_DIR/serve.json)",
            file=sys.stderr,
        )
        return 2
    check = getattr(args, "admin_check", None)
    if check is not None and (refused := check(args)) is not None:
        return int(refused)
    return asyncio.run(_with_database(url, args))


def _recorded_database() -> str | None:
    """The embedded PostgreSQL of the `npc serve` running on this var directory, as the tables'
    owner (what `npc admin` runs as on a configured database too), if any."""
    record = read_record(os.environ.get("NPC_VAR_DIR") or "var")
    if record is None:
        return None
    url = record.owner_database_url or record.database_url
    if url:
        print(
            f"npc admin: using the embedded PostgreSQL of npc serve (pid {record.pid})",
            file=sys.stderr,
        )
    return url


async def _with_database(url: str, args: argparse.Namespace) -> int:
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        code: int = await args.admin_run(db, args)
        return code
    except asyncpg.UndefinedTableError:
        print("npc admin: the schema is missing; run `npc admin migrate` first", file=sys.stderr)
        return 1
    except asyncpg.ForeignKeyViolationError:
        print(f"npc admin: unknown operator {args.operator!r}", file=sys.stderr)
        return 1
    except asyncpg.ExclusionViolationError:
        print("npc admin: the range overlaps a range already assigned", file=sys.stderr)
        return 1
    finally:
        await db.close()
