"""The `npc` command: `serve`, `demo`, `admin`, `bench` and `ops`, one module each.

`serve` and `demo` use the PostgreSQL and Redis named by NPC_DATABASE_URL and NPC_REDIS_URL; when
one is unset they start an embedded server for it under the `var/` directory (NPC_VAR_DIR), whose
data persists between runs. `demo` and `bench` run the tools of `npc_tools`, imported only when
one of them runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from npc.cli import admin, bench, demo, ops, serve
from npc.cli.common import log
from npc.cli.demo import PROFILE_NAMES
from npc.config import ConfigError
from npc.embedded import EmbeddedServiceError

__all__ = ["PROFILE_NAMES", "build_parser", "main", "version"]


def version() -> str:
    """The installed version of npc, or the source tree's when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("npc")
    except PackageNotFoundError:
        from npc import __version__  # a source tree: the package's own

        return __version__


class _VersionAction(argparse.Action):
    """`--version`, looking the version up only when asked (not on every command)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `npc`."""
    parser = argparse.ArgumentParser(
        prog="npc", description="National number portability clearinghouse."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(commands)
    demo.add_parser(commands)
    admin.add_parser(commands)
    bench.add_parser(commands)
    ops.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `npc` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # grpc and asyncio chatter is noise unless debugging.
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        # A setting refused before anything started: one line naming it, no traceback.
        print(f"npc {args.command}: {exc}", file=sys.stderr)
        return 2
    except EmbeddedServiceError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
