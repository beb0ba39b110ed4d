"""`npc bench lookups` runs end to end on a small registry and prints its figures as JSON.

Only the shape and the arithmetic are checked: speed is measured by the benchmark, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

from npc.bench import write_registry


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


def test_npc_bench_lookups_prints_one_json_object():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "npc",
            "bench",
            "lookups",
            "--numbers",
            "20000",
            "--seconds",
            "0.3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["numbers"] == 20_000
    assert 5_000 < figures["ported"] < 7_000
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
