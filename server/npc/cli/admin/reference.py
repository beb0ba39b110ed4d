"""`npc admin seed-demo`, `add-operator` and `add-range`: operators, their tokens and their
numbering ranges."""

from __future__ import annotations

import argparse
import secrets
import sys

from npc.admin import OperatorSpec, add_range, seed_demo, upsert_operator
from npc.cli.common import Subcommands
from npc.store import operators
from npc.store.database import Database


def add_actions(actions: Subcommands) -> None:
    """Add `seed-demo`, `add-operator` and `add-range` to the actions of `npc admin`."""
    actions.add_parser(
        "seed-demo", help="load the demo market when no operator exists"
    ).set_defaults(admin_run=seed_demo_market)
    add_operator = actions.add_parser("add-operator", help="register or update an operator")
    add_operator.add_argument("id", metavar="ID")
    add_operator.add_argument("name", metavar="NAME")
    add_operator.add_argument("routing_code", metavar="ROUTING_CODE")
    add_operator.add_argument(
        "--token", help="its API token (default: keep the current one, or generate one)"
    )
    add_operator.add_argument(
        "--regulator", action="store_true", help="the regulator's read-only identity"
    )
    add_operator.add_argument(
        "--country",
        choices=("PE", "CO"),
        default="PE",
        help="the country whose services it uses (default PE; CO for the PQR regime)",
    )
    add_operator.set_defaults(admin_run=register_operator)
    add_range_parser = actions.add_parser("add-range", help="assign a numbering range")
    add_range_parser.add_argument("operator", metavar="OPERATOR")
    add_range_parser.add_argument("service", metavar="SERVICE", help="mobile or fixed")
    add_range_parser.add_argument("first", metavar="FIRST")
    add_range_parser.add_argument("last", metavar="LAST")
    add_range_parser.set_defaults(admin_check=check_range, admin_run=assign_range)


async def seed_demo_market(db: Database, args: argparse.Namespace) -> int:
    """`npc admin seed-demo`."""
    await db.migrate()
    if await seed_demo(db):
        print("loaded the demo market: tokens dev-token-<operator>")
    else:
        print("operators already exist; nothing loaded")
    return 0


async def register_operator(db: Database, args: argparse.Namespace) -> int:
    """`npc admin add-operator ID NAME ROUTING_CODE`: a new operator gets a token shown once."""
    token = args.token
    async with db.pool.acquire() as conn:
        exists = await operators.is_registered(conn, args.id)
    if token is None and not exists:
        token = secrets.token_urlsafe(32)
    await upsert_operator(
        db,
        OperatorSpec(
            args.id,
            args.name,
            args.routing_code,
            token,
            role="regulator" if args.regulator else "operator",
            country=args.country,
        ),
    )
    print(f"{'updated' if exists else 'added'} operator {args.id}")
    if token is not None and args.token is None:
        print(f"API token (shown once, only its digest is stored): {token}")
    return 0


def check_range(args: argparse.Namespace) -> int | None:
    """Refuse a range that is not FIRST <= LAST in digits of a known service (exit code 2)."""
    if args.service not in ("mobile", "fixed"):
        print("npc admin: SERVICE is mobile or fixed", file=sys.stderr)
        return 2
    if not (args.first.isdigit() and args.last.isdigit()) or int(args.first) > int(args.last):
        print("npc admin: FIRST and LAST are numbers, FIRST <= LAST", file=sys.stderr)
        return 2
    return None


async def assign_range(db: Database, args: argparse.Namespace) -> int:
    """`npc admin add-range OPERATOR SERVICE FIRST LAST`."""
    await add_range(db, args.operator, args.service, args.first, args.last)
    print(f"{args.operator} holds {args.service} numbers {args.first}-{args.last}")
    return 0
