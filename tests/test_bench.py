"""`npc bench lookups` and `npc bench all` run end to end on small configurations and print their
figures as JSON; the shared accelerated clock they run the servers on (NPC_CLOCK).

Only the shape and the arithmetic are checked: speed is measured by the benchmark, not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from npc.config import Settings
from npc.core.clock import SharedClock
from npc_tools.bench import machine_cpu, write_registry
from tests.helpers import run_npc


def test_the_synthetic_registry_has_the_share_of_ported_numbers_asked(tmp_path):
    plan, ported, count = write_registry(tmp_path, 2_500_000, 0.3)
    assert plan.read_text().splitlines()[1:] == [
        "claro,mobile,900000000,900999999",
        "movistar,mobile,901000000,901999999",
        "entel,mobile,902000000,902499999",
    ]
    rows = ported.read_text().splitlines()[1:]
    assert len(rows) == count
    assert abs(count / 2_500_000 - 0.3) < 0.01
    holders = {0: "claro", 1: "movistar", 2: "entel"}
    for row in rows[:: max(1, len(rows) // 1000)]:
        number, serving, _ = row.split(",")
        assert serving != holders[(int(number) - 900_000_000) // 1_000_000]


@pytest.mark.slow
def test_npc_bench_lookups_prints_one_json_object():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "npc",
            "bench",
            "lookups",
            "--numbers",
            "5000",
            "--seconds",
            "0.3",
            "--samples",
            "200",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["numbers"] == 5_000
    assert 1_250 < figures["ported"] < 1_750
    for key in (
        "load_seconds",
        "single_lookups_per_s",
        "single_p99_ms",
        "batch_lookups_per_s",
        "redis_mget_ceiling_per_s",
    ):
        assert figures[key] > 0, key
    assert (
        figures["ratio_batch_vs_ceiling"]
        == round(figures["batch_lookups_per_s"] / figures["redis_mget_ceiling_per_s"], 3)
        or abs(
            figures["ratio_batch_vs_ceiling"]
            - figures["batch_lookups_per_s"] / figures["redis_mget_ceiling_per_s"]
        )
        < 0.01
    )


def test_two_shared_clocks_built_from_the_same_environment_agree_and_run_at_their_speed(
    monkeypatch,
):
    start = datetime(2026, 11, 24, 4, 59, tzinfo=UTC)
    spec = SharedClock(start, 1_800_000_000.0, 60.0).spec
    env = {"NPC_CLOCK": spec}
    first, second = SharedClock.from_env(env), SharedClock.from_env(env)
    assert first is not None and second is not None
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    assert first.now() == second.now() == start
    monkeypatch.setattr(time, "time", lambda: 1_800_000_002.5)
    assert first.now() == second.now() == start + timedelta(seconds=150)
    assert first.to_wall(timedelta(minutes=5)) == 5.0
    assert SharedClock.from_env({}) is None


def test_a_shared_clock_keeps_an_offset_start_in_utc_and_refuses_a_malformed_spec():
    clock = SharedClock.parse("2026-11-23T23:59:00-05:00@1800000000.5x120")
    assert clock.start == datetime(2026, 11, 24, 4, 59, tzinfo=UTC)
    assert (clock.epoch, clock.speed) == (1_800_000_000.5, 120.0)
    assert SharedClock.parse(clock.spec).spec == clock.spec
    for spec in (
        "tomorrow@1800000000x60",
        "2026-11-23T23:59:00-05:00",
        "2026-11-23T23:59:00-05:00@1800000000",
        "2026-11-23T23:59:00@1800000000x60",  # no offset
        "2026-11-23T23:59:00-05:00@1800000000x0",
    ):
        with pytest.raises(ValueError):
            SharedClock.parse(spec)


async def test_npc_serve_refuses_a_malformed_npc_clock_before_serving():
    done = await run_npc("serve", env={"NPC_CLOCK": "2026-11-23T23:59:00-05:00@soon"})
    assert done.returncode == 2
    assert "NPC_CLOCK" in done.stderr


def test_settings_carry_the_shared_clock_only_when_npc_clock_is_set(monkeypatch):
    monkeypatch.delenv("NPC_CLOCK", raising=False)
    assert Settings.from_env().clock is None
    spec = "2026-11-23T23:59:00-05:00@1800000000x60"
    monkeypatch.setenv("NPC_CLOCK", spec)
    assert Settings.from_env().clock == spec


ALL_KEYS = (
    "rpc_ceiling_per_s",
    "commit_ceiling_per_s",
    "ports_per_s",
    "messages_per_s",
    "deadline_lateness_p99_ms",
    "broadcast_p99_ms",
    "lookups_batch_per_s",
    "processes",
)


@pytest.mark.slow
def test_npc_bench_all_prints_one_json_object_with_every_figure():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "npc",
            "bench",
            "all",
            "--seconds",
            "2",
            "--ceiling-seconds",
            "0.5",
            "--pending-deadlines",
            "5000",
            "--numbers",
            "5000",
            # A few requests in flight on a clock five times the demo's: ports complete within
            # seconds, and the drain ends as soon as those under way closed (a request whose debt
            # objection is never lifted keeps it to its limit; busy machines need the margin).
            "--in-flight",
            "4",
            "--speed",
            "300",
            "--drain",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    for key in ALL_KEYS:
        assert figures[key] > 0, key
    assert figures["processes"] == 1
    assert figures["ramp_s"] == 1.0  # the default ramp, at most half of the 2 s of filing
    assert figures["pending_deadlines"] == 5_000
    # The backlog is still there: none of it fired during the run.
    assert figures["pending_deadlines_after"] >= 5_000
    assert figures["broadcast_streams"] == 20
    assert figures["durability"] == "fsync=on synchronous_commit=on"
    # Every port closed completed took at least SP, PP and two confirmations, and the donor's
    # answer unless the donor stayed silent (an execution seen on the streams may still wait for
    # its confirmations when filing stops).
    by_method = figures["messages_by_method"]
    closed = figures["ports_closed_completed"]
    assert by_method["SubmitPortRequest"] >= closed
    assert by_method["ConfirmPortExecution"] >= 2 * closed
    assert by_method["SchedulePort"] >= figures["ports_completed"]
    assert figures["broadcasts_received"] >= figures["ports_completed"]
    # Every execution seen on the streams was its deadline firing; the kinds add up.
    by_kind = figures["deadline_lateness_by_kind"]
    assert by_kind["request.execute"]["fired"] >= figures["ports_completed"]
    assert sum(kind["fired"] for kind in by_kind.values()) == figures["deadlines_fired"]
    assert (
        abs(
            figures["ratio_messages_vs_rpc_ceiling"]
            - figures["messages_per_s"] / figures["rpc_ceiling_per_s"]
        )
        < 0.001
    )
    assert abs(figures["ports_ceiling_per_s"] - figures["rpc_ceiling_per_s"] / 5) < 0.1
    assert figures["ratio_ports_vs_ceiling"] > 0
    # Each part's CPU per port, from the first complete port on.
    assert set(figures["cpu_ms_per_port"]) == set(figures["cpu_share_while_filing"])
    assert figures["cpu_ms_per_port"]["server_1"] > 0
    # The machine's cores while filing: busy, idle and stolen add up to every core it has.
    machine = figures["machine_cores_while_filing"]
    assert set(machine) == {"busy", "idle", "steal"}
    assert machine["busy"] > 0
    assert abs(sum(machine.values()) - figures["cpus"]) < 0.25 * figures["cpus"]
    # The simulated operators used sessions; the unary calls were measured after, for comparison.
    assert figures["api"] == "session"
    assert set(figures["by_api"]) == {"session", "unary"}
    for mode in figures["by_api"].values():
        assert mode["ports_per_s"] > 0 and mode["ratio_ports_vs_ceiling"] > 0
        assert mode["cpu_ms_per_port"]["server_1"] > 0
    assert figures["by_api"]["session"]["ports_per_s"] == figures["ports_per_s"]


def test_the_ceilings_empty_server_runs_on_the_loop_npc_serve_would(monkeypatch):
    """The RPC ceiling is an empty call on the clearinghouse's own event loop: uvloop unless
    NPC_EVENT_LOOP says asyncio, as `npc serve` chooses."""
    import asyncio
    import os

    import uvloop

    from npc.cli.serve import event_loop_factory
    from npc_tools.empty_server import _loop_factory

    monkeypatch.delenv("NPC_EVENT_LOOP", raising=False)
    assert _loop_factory() is uvloop.new_event_loop is event_loop_factory({})
    monkeypatch.setenv("NPC_EVENT_LOOP", "asyncio")
    assert _loop_factory() is asyncio.new_event_loop is event_loop_factory(dict(os.environ))


def test_the_machine_s_cpu_is_read_from_the_cpu_line_of_proc_stat():
    """Busy is user, nice, system, irq and softirq; idle takes iowait; guest time is already
    inside user and nice, and the per-core lines are left out."""
    hz = os.sysconf("SC_CLK_TCK")
    stat = "cpu  100 20 30 400 50 6 7 8 90 10\ncpu0 50 10 15 200 25 3 3 4 45 5\nintr 12345\n"
    assert machine_cpu(stat) == {
        "busy": (100 + 20 + 30 + 6 + 7) / hz,
        "idle": (400 + 50) / hz,
        "steal": 8 / hz,
    }
    # A kernel with fewer columns: what is missing counts as zero.
    assert machine_cpu("cpu  1 2 3 4\n") == {"busy": 6 / hz, "idle": 4 / hz, "steal": 0.0}
    assert machine_cpu("intr 1\n") == {}
