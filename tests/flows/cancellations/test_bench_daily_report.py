"""scripts/bench_daily_report.py against the report check before the flow took commands (commit
03bb0fe, read from git): both paths store the same records and refuse a bad report with the same
violations in the same order; the script prints its figures (speed is measured, not asserted).
Pure: no server."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from npc.core.errors import InvalidArgument
from npc.flows.cancellations import convert
from npc.v1 import cancellations_pb2 as pb

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_daily_report.py"


def _baseline_in_clone() -> bool:
    found = subprocess.run(
        ["git", "-C", str(SCRIPT.parent), "cat-file", "-e", "03bb0fe^{commit}"],
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not _baseline_in_clone(), reason="the baseline commit is not in this clone"
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_daily_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_prints_both_figures_and_their_ratio(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Exit 0 also says both paths stored the same 120 records.
    assert bench.main(["--records", "120", "--rounds", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["records"] == 120
    assert figures["baseline"] > 0 and figures["today"] > 0
    assert figures["ratio"] == round(figures["today"] / figures["baseline"], 3)


BAD_INSTANTS = [
    Timestamp(seconds=253402300800),  # year 10000
    Timestamp(seconds=0, nanos=-1),
    Timestamp(seconds=1, nanos=10**9),
]


def _mistakes(bench: ModuleType, rng: random.Random) -> list[Callable[[Any], object]]:
    """Ways to get one record wrong, each touching one field."""
    return [
        lambda r: r.ClearField("requested_at"),
        lambda r: r.requested_at.CopyFrom(rng.choice(BAD_INSTANTS)),
        lambda r: r.requested_at.CopyFrom(bench._stamp(bench.NOW + timedelta(days=2))),
        lambda r: r.requested_at.CopyFrom(bench._stamp(bench.NOW - timedelta(days=1200))),
        lambda r: r.executed_at.CopyFrom(rng.choice(BAD_INSTANTS)),
        lambda r: r.executed_at.CopyFrom(bench._stamp(bench.NOW - timedelta(days=30))),
        lambda r: r.ClearField("executed_at"),
        lambda r: setattr(r, "state", rng.choice([0, 1, 2, 3, 4, 99])),
        lambda r: setattr(r, "kind", rng.choice([0, 2, 77])),
        lambda r: setattr(r, "channel", rng.choice([0, 99])),
        lambda r: setattr(r, "service", 0),
        lambda r: setattr(r, "service_status", 99),
        lambda r: setattr(r, "request_code", rng.choice(["", "x" * 41, "BJ-0000001"])),
        lambda r: r.ClearField("subscriber_document"),
        lambda r: setattr(r.subscriber_document, "type", rng.choice([0, 9])),
        lambda r: setattr(r.subscriber_document, "number", "12"),
        # (Dates are not compared: the wire carries google.type.Date since, and its refusals
        # say so in their own words; tests/flows/cancellations/test_cancellations.py has them.)
        lambda r: setattr(r, "execution_reason", rng.choice(["", "\x00", "r" * 501])),
        lambda r: setattr(r, "target_plan", rng.choice(["", "p" * 201])),
        lambda r: setattr(r, "service_number", "!!"),
    ]


def _outcome(handler: Any, report: Any, now: Any) -> list[tuple[str, str]]:
    """The violations a handler's check refuses a report with ([]: accepted)."""
    try:
        handler._check_report(report, now)
    except InvalidArgument as refused:
        return [(v.field, v.description) for v in refused.violations]
    return []


def test_bad_reports_are_refused_as_before_the_flow_took_commands(bench: ModuleType) -> None:
    settings = bench.CancellationsSettings()
    baseline = bench.baseline_handler(settings)
    today = bench.current_handler(settings)
    rng = random.Random(12)
    mistakes = _mistakes(bench, rng)
    valid = bench.report(60)
    old_format = bench.baseline_messages()
    refused = 0
    for _ in range(80):
        request = pb.SubmitDailyReportRequest()
        request.CopyFrom(valid)
        for index in rng.sample(range(60), rng.randint(1, 30)):
            for mistake in rng.sample(mistakes, rng.randint(1, 3)):
                mistake(request.records[index])
        expected = _outcome(baseline, bench.to_baseline(request, old_format), bench.NOW)
        parsed = convert.daily_report(request, settings.max_records)
        assert _outcome(today, parsed, bench.NOW) == expected
        refused += bool(expected)
    assert refused >= 70  # nearly every report had a mistake to compare
