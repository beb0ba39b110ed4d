"""`npc bench lookups` and `npc bench all`: performance figures measured on this machine.

The benchmarks are `npc_tools.bench`, above the server and the SDK: imported only when one runs.
"""

from __future__ import annotations

import argparse
import sys

from npc.cli.common import Subcommands, _positive


def add_parser(commands: Subcommands) -> None:
    """Add `bench` and its benchmarks to the commands of `npc`."""
    bench = commands.add_parser(
        "bench",
        help="measure performance on this machine (private PostgreSQL and Redis)",
        description="Benchmarks print figures, with ceilings measured in the same run; they"
        " never change data outside their own temporary directory.",
    )
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    lookups = benches.add_parser(
        "lookups",
        help="registry lookups: single, batches of 10,000, and the Redis MGET ceiling",
    )
    lookups.add_argument(
        "--numbers", type=int, default=10_000_000, help="registry size (default 10,000,000)"
    )
    lookups.add_argument(
        "--ported-share", type=float, default=0.3, help="share of numbers ported (default 0.3)"
    )
    lookups.add_argument(
        "--seconds", type=_positive, default=5.0, help="seconds per measurement (default 5)"
    )
    lookups.add_argument(
        "--samples",
        type=int,
        default=3000,
        help="single lookups made one at a time for the latency percentiles (default 3,000)",
    )
    lookups.add_argument("--json", action="store_true", help="print one JSON object")
    lookups.set_defaults(func=cmd_bench_lookups)
    everything = benches.add_parser(
        "all",
        help="the whole clearinghouse: ports/s, messages/s, deadline lateness, broadcast"
        " latency, batch lookups, with the gRPC and PostgreSQL commit ceilings",
        description="Private PostgreSQL and Redis, `npc serve --workers N` on an accelerated"
        " shared clock (NPC_CLOCK) starting a minute before the change window, four simulated"
        " operators porting numbers and 20 operators watching the broadcasts.",
    )
    everything.add_argument(
        "--workers", type=int, default=1, help="server processes (npc serve --workers; default 1)"
    )
    everything.add_argument(
        "--seconds", type=_positive, default=60.0, help="seconds of port filing (default 60)"
    )
    everything.add_argument(
        "--ceiling-seconds",
        type=_positive,
        default=5.0,
        help="seconds of each ceiling and of the lookups (default 5)",
    )
    everything.add_argument(
        "--pending-deadlines",
        type=int,
        default=1_000_000,
        help="far-future deadlines pending during the run (default 1,000,000)",
    )
    everything.add_argument(
        "--numbers",
        type=int,
        default=1_000_000,
        help="synthetic registry for the batch lookups (default 1,000,000; 0: the demo ranges)",
    )
    everything.add_argument(
        "--in-flight",
        type=int,
        default=128,
        help="own requests in flight per simulated operator (default 128)",
    )
    everything.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="port requests filed per second, all operators (default 0: as fast as they can)",
    )
    everything.add_argument(
        "--speed", type=_positive, default=60.0, help="simulated seconds per wall second (60)"
    )
    everything.add_argument(
        "--drain",
        type=float,
        default=20.0,
        help="wall seconds each ports phase waits, once filing stops, for the ports under way"
        " (default 20; 0: none)",
    )
    everything.add_argument(
        "--ramp",
        type=float,
        default=10.0,
        help="wall seconds over which each operator's requests in flight rise to --in-flight;"
        " throughput and CPU per port are read after it (default 10; 0: all at once)",
    )
    everything.add_argument(
        "--api",
        choices=("session", "unary"),
        default="session",
        help="how the simulated operators send commands: one session stream each (default) or"
        " one unary call per command; the other mode is measured after it for `by_api`",
    )
    everything.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="measure the --api mode only (`by_api` then holds it alone): a shorter run when"
        " comparing two builds",
    )
    everything.add_argument("--json", action="store_true", help="print one JSON object")
    everything.set_defaults(func=cmd_bench_all)


def cmd_bench_all(args: argparse.Namespace) -> int:
    """`npc bench all`."""
    from npc_tools.bench import AllBenchOptions, run_all

    if (
        args.workers < 1
        or args.pending_deadlines < 0
        or args.numbers < 0
        or args.in_flight < 1
        or not 0 <= args.drain <= 3600
        or not 0 <= args.ramp <= 3600
    ):
        print(
            "npc bench: --workers and --in-flight must be positive, --pending-deadlines and"
            " --numbers not negative, --drain from 0 to 3600",
            file=sys.stderr,
        )
        return 2
    options = AllBenchOptions(
        workers=args.workers,
        seconds=args.seconds,
        ceiling_seconds=args.ceiling_seconds,
        pending_deadlines=args.pending_deadlines,
        numbers=args.numbers,
        in_flight=args.in_flight,
        rate=args.rate,
        speed=args.speed,
        drain=args.drain,
        ramp=args.ramp,
        api=args.api,
        compare=args.compare,
    )
    return run_all(options, args.json)


def cmd_bench_lookups(args: argparse.Namespace) -> int:
    """`npc bench lookups`."""
    from npc_tools.bench import LookupBenchOptions, run_lookups

    if args.numbers < 1 or args.samples < 1 or not 0 <= args.ported_share <= 1:
        print(
            "npc bench: --numbers and --samples must be positive and --ported-share in [0, 1]",
            file=sys.stderr,
        )
        return 2
    options = LookupBenchOptions(
        numbers=args.numbers,
        ported_share=args.ported_share,
        seconds=args.seconds,
        single_samples=args.samples,
    )
    return run_lookups(options, args.json)
