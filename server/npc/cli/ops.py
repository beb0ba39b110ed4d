"""`npc ops up`: Prometheus with the project's rules, scraping the running clearinghouse.

It reads where `npc serve` listens from the var directory (`serve.json`: every worker's
/metrics), writes a Prometheus configuration next to it, runs Debian's `prometheus` with its
data under `var/prometheus`, prints the URLs and stops it cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from npc.cli.common import Subcommands, log, port
from npc.cli.record import check_port_free, read_record, record_path, scrape_address
from npc.config import ConfigError

RULE_FILES = ("npc-recording.yml", "npc-alerts.yml")
# The label every target gets. Not `service`: the server's own metrics carry a label of that
# name (the gRPC service, the mobile/fixed service), which Prometheus would rename.
TARGET_LABELS = {"component": "clearinghouse"}


def _default_ops_dir() -> Path:
    """ops/ of the source tree this command runs from, else ./ops."""
    source = Path(__file__).resolve().parents[3] / "ops"
    return source if (source / "rules").is_dir() else Path("ops")


def add_parser(commands: Subcommands) -> None:
    """Add `ops` to the commands of `npc`."""
    ops = commands.add_parser("ops", help="the operations stack (Prometheus) for npc serve")
    actions = ops.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up",
        help="run Prometheus with ops/rules, scraping the running npc serve, until Ctrl-C",
        description="Run Debian's Prometheus (apt-get install prometheus) with the recording and"
        " alerting rules of ops/rules, scraping every /metrics that the `npc serve` running on"
        " the same var directory (NPC_VAR_DIR) recorded in serve.json. Its data stays under"
        " var/prometheus. Grafana: ops/compose.yaml, or import ops/grafana/dashboards.",
    )
    up.add_argument("--port", type=port, default=9090, help="Prometheus' port (default 9090)")
    up.add_argument("--host", default="127.0.0.1", help="Prometheus' address (default 127.0.0.1)")
    up.add_argument(
        "--interval",
        type=int,
        default=15,
        help="seconds between scrapes and rule evaluations (default 15)",
    )
    up.add_argument("--ops-dir", type=Path, help="the directory holding rules/ (default: ops)")
    up.set_defaults(func=cmd_ops_up)


def prometheus_config(targets: list[str], rules_dir: Path, interval: int) -> dict[str, object]:
    """The Prometheus configuration scraping `targets` with the rules of `rules_dir`."""
    every = f"{interval}s"
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str((rules_dir / name).resolve()) for name in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": "npc",
                "metrics_path": "/metrics",
                "scrape_timeout": f"{min(interval, 10)}s",
                "static_configs": [{"targets": targets, "labels": dict(TARGET_LABELS)}],
            }
        ],
    }


def cmd_ops_up(args: argparse.Namespace) -> int:
    """`npc ops up`."""
    var = Path(os.environ.get("NPC_VAR_DIR") or "var").resolve()
    if not 1 <= args.interval <= 300:
        raise ConfigError("--interval", f"{args.interval} is out of range (1 to 300 seconds)")
    rules = (args.ops_dir or _default_ops_dir()) / "rules"
    missing = [name for name in RULE_FILES if not (rules / name).is_file()]
    if missing:
        raise ConfigError("--ops-dir", f"no {', '.join(missing)} in {rules}")
    binary = shutil.which("prometheus")
    if binary is None:
        print(
            "npc ops up: prometheus is not installed (apt-get install prometheus)", file=sys.stderr
        )
        return 2
    record = read_record(var)
    if record is None:
        print(
            f"npc ops up: no running npc serve recorded in {record_path(var)}: start `npc serve`"
            " first (with the same NPC_VAR_DIR)",
            file=sys.stderr,
        )
        return 2
    check_port_free("--port", args.host, args.port)
    home = var / "prometheus"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(
        "# Written by `npc ops up` from serve.json; rewritten at each start. JSON is YAML: no\n"
        "# YAML library needed at run time.\n"
        + json.dumps(prometheus_config(record.metrics, rules, args.interval), indent=2)
        + "\n"
    )
    address = scrape_address(args.host, args.port)
    with (home / "prometheus.log").open("ab") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches this command, which stops it in order.
            start_new_session=True,
        )
    return _supervise(process, address, record.metrics, home)


def _supervise(
    process: subprocess.Popen[bytes], address: str, targets: list[str], home: Path
) -> int:
    """Wait until Prometheus is ready, print the URLs, and stop it on SIGINT/SIGTERM."""
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        url = f"http://{address}"
        if not _wait_ready(process, url, stop):
            if stop.is_set():
                return 0
            print(
                f"npc ops up: prometheus did not start; see {home / 'prometheus.log'}",
                file=sys.stderr,
            )
            return 1
        print(f"Prometheus  {url}  (targets {url}/targets, alerts {url}/alerts)", flush=True)
        print(f"scraping    {', '.join(targets)}", flush=True)
        print(f"data        {home / 'data'}", flush=True)
        print("Grafana     docker compose -f ops/compose.yaml up grafana", flush=True)
        while not stop.wait(0.5):
            if process.poll() is not None:
                log.error("prometheus exited with status %s", process.returncode)
                return 1
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, stop: threading.Event, limit: float = 60.0
) -> bool:
    """Whether Prometheus answers /-/ready within `limit` seconds (False once it exits)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not stop.is_set():
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.2)
    return False
