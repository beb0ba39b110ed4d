"""`npc admin verify-log`, `anchor` and `anchor-key`: the event log's hash chain and the signed
anchors kept outside it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from npc.cli.common import Subcommands
from npc.core.anchor import Anchor, InvalidAnchor, generate_key, latest_anchor, public_key_bytes
from npc.store.database import Database


def add_actions(actions: Subcommands) -> None:
    """Add `verify-log`, `anchor` and `anchor-key` to the actions of `npc admin`."""
    verify = actions.add_parser(
        "verify-log",
        help="recompute the event log's hash chain and report the first broken position",
    )
    verify.add_argument(
        "--anchor",
        metavar="FILE",
        help="an anchor kept outside (`npc admin anchor` output): the log must reach its"
        " position with its hash, and its signature must verify",
    )
    verify.set_defaults(admin_run=verify_log)
    actions.add_parser(
        "anchor", help="print the latest signed anchor of the log (JSON) to keep outside"
    ).set_defaults(admin_run=print_anchor)
    anchor_key = actions.add_parser(
        "anchor-key", help="create the Ed25519 key signing the anchors; print its public key"
    )
    anchor_key.add_argument("file", metavar="FILE")
    anchor_key.set_defaults(admin_offline=new_anchor_key)


async def print_anchor(db: Database, args: argparse.Namespace) -> int:
    """`npc admin anchor`: the latest signed anchor, as JSON, for the regulator to keep."""
    anchor = await latest_anchor(db)
    if anchor is None:
        print(
            "npc admin: no anchor yet (does the server run with NPC_ANCHOR_KEY?)", file=sys.stderr
        )
        return 1
    print(json.dumps(anchor.to_json(), indent=2))
    return 0


def new_anchor_key(args: argparse.Namespace) -> int:
    """`npc admin anchor-key FILE`: a new signing key; prints its public key."""
    path = Path(args.file)
    try:
        key = generate_key(path)
    except FileExistsError:
        print(f"npc admin: {path} exists; not replacing a signing key", file=sys.stderr)
        return 1
    print(f"anchor signing key: {path} (give it to the server as NPC_ANCHOR_KEY)")
    print(f"public key (Ed25519, hex): {public_key_bytes(key).hex()}")
    return 0


async def verify_log(db: Database, args: argparse.Namespace) -> int:
    """`npc admin verify-log`: exit 0 when the chain holds, 1 at the first broken position, 2
    when the anchor given is unreadable or its signature does not verify."""
    from npc.core.verify import verify_log as verify

    anchor = None
    if args.anchor is not None:
        try:
            anchor = Anchor.from_file(Path(args.anchor))
            anchor.check_signature()
        except (OSError, InvalidAnchor) as exc:
            print(f"anchor refused: {exc}")
            return 2
    started = time.monotonic()

    def progress(position: int) -> None:
        sys.stderr.write(f"\rverify-log: {position:,} events checked")
        sys.stderr.flush()

    result = await verify(db, progress=progress, anchor=anchor)
    sys.stderr.write("\r")
    elapsed = time.monotonic() - started
    if result.intact:
        print(
            f"log intact: {result.checked:,} events up to position {result.head} ({elapsed:.1f} s)"
            + (f"; anchored position {anchor.position} matches" if anchor else "")
        )
        return 0
    if result.first_broken is None:
        print(f"compliance ledger broken: {result.reason}")
        return 1
    print(
        f"log broken at position {result.first_broken}: {result.reason}"
        f" ({result.checked:,} events before it verified)"
    )
    return 1
