"""`npc demo`: a clearinghouse with simulated operators porting numbers, on a fast clock.

The demo itself is `npc_tools.demo`, above the server and the SDK: it is imported only when the
command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from npc.cli.common import Subcommands, _positive, listen_options, listen_overrides, storage
from npc.config import Settings

# The presets of npc_clients.traffic (checked by the tests), named here so that `npc --help` does
# not import the simulator.
PROFILE_NAMES = ("colombia-2023", "peru-2024")


def add_parser(commands: Subcommands) -> None:
    """Add `demo` to the commands of `npc`."""
    demo = commands.add_parser(
        "demo",
        help="run the clearinghouse with simulated operators porting numbers",
        description="Run a clearinghouse on an accelerated clock with simulated operators that"
        " file, answer, schedule and confirm ports over gRPC; print progress and the complete"
        " ports per second.",
    )
    demo.add_argument(
        "--operators", type=int, default=4, help="simulated operators, 2 to 4 (default 4)"
    )
    bound = demo.add_mutually_exclusive_group()
    bound.add_argument("--ports", type=int, help="stop once this many ports completed")
    bound.add_argument(
        "--duration", type=_positive, help="stop filing after this many seconds, then summarise"
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="port requests filed per second, all operators together (default 20; 0: unpaced)",
    )
    pace = demo.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive,
        default=60.0,
        help="demo clock seconds per wall second (default 60)",
    )
    pace.add_argument(
        "--day-minutes",
        type=_positive,
        help="time compression as the wall minutes a demo day lasts (e.g. 10: 144x)",
    )
    demo.add_argument(
        "--profile",
        choices=sorted(PROFILE_NAMES),
        help="file as a country does: daily curve, market shares and operator behaviour"
        " (instead of --rate and --operators)",
    )
    demo.add_argument(
        "--scale",
        type=_positive,
        default=1.0,
        help="with --profile, the share of the country's volume to file (default 1)",
    )
    demo.add_argument(
        "--interval", type=_positive, default=1.0, help="seconds between progress lines"
    )
    demo.add_argument("--seed", type=int, help="random seed of the simulated operators")
    listen_options(demo, ("a free port", "a free port"))
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """`npc demo`."""
    from npc_tools.demo import DemoOptions, run_demo  # the simulator is only needed here

    if args.ports is not None and args.ports < 1:
        print("npc demo: --ports must be at least 1", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    # The demo's own operators are its only clients: unless told otherwise, listen on free ports,
    # so it never shares (SO_REUSEPORT) the port of a running `npc serve`.
    if args.grpc_port is None and "NPC_GRPC_PORT" not in os.environ:
        args.grpc_port = 0
    if args.http_port is None and "NPC_HTTP_PORT" not in os.environ:
        args.http_port = 0
    settings = listen_overrides(settings, args)
    traffic = None
    if args.profile is not None:
        from npc_clients.traffic import profile_named

        traffic = profile_named(args.profile)
    speed = 86400.0 / (args.day_minutes * 60.0) if args.day_minutes is not None else args.speed
    options = DemoOptions(
        operators=args.operators,
        ports=args.ports,
        duration=args.duration,
        rate=args.rate,
        speed=speed,
        interval=args.interval,
        seed=args.seed,
        traffic=traffic,
        scale=args.scale,
    )
    with storage(settings) as store:
        return asyncio.run(run_demo(store.settings, options, describe_storage=store.describe()))
