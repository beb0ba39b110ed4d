"""`npc admin import KIND FILE` and `npc admin sgu-catalogue FILE`: bulk loads from CSV files, each
in one transaction."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from npc.cli.common import Subcommands
from npc.flows.registry.importer import (
    ImportProgress,
    RegistryImportError,
    import_plan,
    import_ported,
)
from npc.flows.sgu.catalogue import CatalogueImportError, load_catalogue_csv
from npc.store.database import Database


def add_actions(actions: Subcommands) -> None:
    """Add `import` and `sgu-catalogue` to the actions of `npc admin`."""
    import_parser = actions.add_parser(
        "import",
        help="bulk-load the numbering plan or the ported numbers from a CSV file",
        description="Load a CSV file in one transaction: plan (header operator,service,first,last)"
        " or ported (header number,serving_operator,ported_at). The first bad row fails the import"
        " with its line number and nothing is loaded. See README, Registry data.",
    )
    import_parser.add_argument(
        "kind", choices=["plan", "ported"], metavar="KIND", help="plan or ported"
    )
    import_parser.add_argument("file", metavar="FILE")
    import_parser.set_defaults(admin_check=check_file, admin_run=import_registry)
    catalogue_parser = actions.add_parser(
        "sgu-catalogue",
        help="add or change SGU problem subcategories from a CSV file",
        description="Header code,name,category,category_name,service,deadline_unit,"
        "deadline_amount,claimable,claim_business_days[,active]; deadline_unit is business_days"
        " or hours. One transaction: the first bad line fails the load with its line number.",
    )
    catalogue_parser.add_argument("file", metavar="FILE")
    catalogue_parser.set_defaults(admin_check=check_file, admin_run=load_sgu_catalogue)


def check_file(args: argparse.Namespace) -> int | None:
    """Refuse a FILE that is not there (exit code 2) before connecting."""
    if not Path(args.file).is_file():
        print(f"npc admin: no such file: {args.file}", file=sys.stderr)
        return 2
    return None


class _ProgressBar:
    """One carriage-return line on stderr: share of the file read, lines and lines per second."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = time.monotonic()
        self.shown = 0.0
        self.width = 0

    def __call__(self, state: ImportProgress) -> None:
        now = time.monotonic()
        if (
            state.phase == "copy"
            and now - self.shown < 0.1
            and state.bytes_read < state.total_bytes
        ):
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        share = 100 * state.bytes_read / state.total_bytes if state.total_bytes else 100.0
        if state.phase == "copy":
            text = (
                f"import {self.kind}: {share:5.1f}% read, {state.lines:,} lines,"
                f" {state.lines / elapsed:,.0f} rows/s"
            )
        else:
            text = f"import {self.kind}: 100.0% read, {state.phase} ({elapsed:.1f} s)"
        self._show(text)

    def _show(self, text: str) -> None:
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def done(self) -> None:
        if self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def import_registry(db: Database, args: argparse.Namespace) -> int:
    """`npc admin import plan|ported FILE`: all rows or, at the first bad one, nothing."""
    kind, path = args.kind, args.file
    bar = _ProgressBar(kind)
    load = import_plan if kind == "plan" else import_ported
    try:
        report = await load(db, path, bar, now=datetime.now(UTC))
    except RegistryImportError as exc:
        bar.done()
        print(f"line {exc.line}: {exc.reason}", file=sys.stderr)
        print("npc admin: nothing imported", file=sys.stderr)
        return 1
    bar.done()
    rate = report.rows / report.seconds if report.seconds else 0.0
    what = "ranges added to the plan" if kind == "plan" else "ported numbers recorded"
    print(
        f"imported {report.rows:,} {what} from {path} in {report.seconds:.1f} s"
        f" ({rate:,.0f} rows/s)"
        + (f"; {report.changed:,} changed serving operator" if kind == "ported" else "")
    )
    return 0


async def load_sgu_catalogue(db: Database, args: argparse.Namespace) -> int:
    """`npc admin sgu-catalogue FILE`: all subcategories or, at the first bad line, none."""
    path = Path(args.file)
    try:
        count = await load_catalogue_csv(db, path, now=datetime.now(UTC), sender="admin")
    except CatalogueImportError as exc:
        print(f"line {exc.line}: {exc.reason}", file=sys.stderr)
        print("npc admin: nothing loaded", file=sys.stderr)
        return 1
    print(f"loaded {count} SGU subcategories from {path}")
    return 0
