#!/usr/bin/env python3
"""CPU cost of reading and checking one daily cancellations report, today against the baseline.

Today's path is what SubmitDailyReport runs before it touches the database:
`convert.daily_report` (the wire records into the flow's command) and the handler's check
(`DailyReports._check_report`, into the rows it stores). The baseline is the path before the flow
was split into commands (commit 03bb0fe): the handler's `_check_report` over the protobuf records,
read from git with the core helpers it called at that commit, so edits to today's core do not move
it. Both run in this one process, alternately, on the same valid report (a valid report is checked
to its last record; a bad one stops after 100 violations), and must store the same values.

Run from the repository root with the project's interpreter:

    PYTHONPATH=server:clients:. .venv/bin/python scripts/bench_daily_report.py
    ... --records 50000 --rounds 5 --profile

It prints the best CPU seconds of each path over the rounds and today's cost over the baseline's.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import importlib.resources
import importlib.util
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "03bb0fe"
HANDLER = "server/npc/flows/cancellations/handler.py"
# The core helpers the baseline's check calls, read at the baseline too.
BASELINE_CORE = {
    "npc.core.instants": ("server/npc/core/instants.py", ("timestamp",)),
    "npc.core.validation": (
        "server/npc/core/validation.py",
        ("Violations", "check_document", "parse_date", "printable"),
    ),
}
REPORT_DATE = date(2026, 11, 22)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in Lima

# Paths stay importable from a checkout without PYTHONPATH.
for part in ("server", "clients", "."):
    if str(ROOT / part) not in sys.path:
        sys.path.insert(0, str(ROOT / part))

from google.type.date_pb2 import Date  # noqa: E402

from npc.config import CancellationsSettings  # noqa: E402
from npc.core.calendar import PERU  # noqa: E402
from npc.flows.cancellations import convert  # noqa: E402
from npc.flows.cancellations.reporting import DailyReports  # noqa: E402
from npc.v1 import cancellations_pb2 as pb  # noqa: E402
from npc.v1 import common_pb2  # noqa: E402


def _at_baseline(path: str, name: str) -> ModuleType:
    """The module `path` as it was at the baseline commit, loaded under `name`."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BASELINE}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = f"{BASELINE}:{path}"
    sys.modules[name] = module  # dataclasses look their module up while decorating
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
    return module


def baseline_messages() -> Any:
    """The baseline's SubmitDailyReportRequest class: its wire format had dates as ISO text
    (google.type.Date came later), so its .proto files are compiled from git into a pool of
    their own."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("common", "cancellations"):
            target = Path(tmp) / "npc" / "v1" / f"{name}.proto"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                subprocess.run(
                    ["git", "-C", str(ROOT), "show", f"{BASELINE}:proto/npc/v1/{name}.proto"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
        wkt = str(importlib.resources.files("grpc_tools") / "_proto")
        out = Path(tmp) / "set.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{tmp}",
                f"-I{wkt}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                str(Path(tmp) / "npc/v1/cancellations.proto"),
            ]
        )
        if code != 0:
            raise SystemExit("bench_daily_report: compiling the baseline's protos failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("npc.v1.SubmitDailyReportRequest")
    )


def _iso(day: Any) -> str:
    return date(day.year, day.month, day.day).isoformat() if day.year else ""


def to_baseline(request: pb.SubmitDailyReportRequest, message: Any) -> Any:
    """`request` in the baseline's wire format (`message`): the same report, dates as text."""
    old = message(report_date=_iso(request.report_date) if request.HasField("report_date") else "")
    for record in request.records:
        copy = old.records.add()
        for field, value in record.ListFields():
            if field.name == "scheduled_date":
                copy.scheduled_date = _iso(value)
            elif field.message_type is not None:
                getattr(copy, field.name).ParseFromString(value.SerializeToString())
            else:
                setattr(copy, field.name, value)
    return old


def baseline_handler(settings: CancellationsSettings) -> Any:
    """The baseline's handler, with only what its check reads (its calendar and settings)."""
    cores = {
        core_name: _at_baseline(path, f"_baseline_{core_name.rsplit('.', 1)[1]}")
        for core_name, (path, _) in BASELINE_CORE.items()
    }
    # The baseline handler imports these names from today's core modules; those that are gone
    # since are lent from the baseline's for the import, then every one is rebound below.
    lent: list[tuple[ModuleType, str]] = []
    for core_name, (_, names) in BASELINE_CORE.items():
        today = importlib.import_module(core_name)
        for name in names:
            if not hasattr(today, name):
                setattr(today, name, getattr(cores[core_name], name))
                lent.append((today, name))
    try:
        module = _at_baseline(HANDLER, "_baseline_cancellations_handler")
    finally:
        for today, name in lent:
            delattr(today, name)
    for core_name, (_, names) in BASELINE_CORE.items():
        for name in names:
            setattr(module, name, getattr(cores[core_name], name))
    handler = object.__new__(module.CancellationsHandler)
    handler.settings = settings
    handler.calendar = PERU
    return handler


def current_handler(settings: CancellationsSettings) -> DailyReports:
    """Today's handler, with only what its check reads (its calendar and settings)."""
    handler = object.__new__(DailyReports)
    handler.settings = settings
    handler.calendar = PERU
    return handler


def _stamp(instant: datetime) -> Any:
    stamp = pb.RequestRecord().requested_at
    stamp.FromDatetime(instant)
    return stamp


def report(count: int) -> pb.SubmitDailyReportRequest:
    """A valid report of `count` records: pending and executed cancellations and migrations, over
    every service, channel and document type."""
    services = list(pb.TrackedService.values())[1:]
    channels = list(pb.AttentionChannel.values())[1:]
    documents = [
        (common_pb2.DOCUMENT_TYPE_DNI, "44556677"),
        (common_pb2.DOCUMENT_TYPE_RUC, "20100070970"),
        (common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA, "CE1234567"),
        (common_pb2.DOCUMENT_TYPE_OTHER, "PAS-99881"),
    ]
    presented = datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    records = []
    for n in range(count):
        kind, number = documents[n % len(documents)]
        requested = presented + timedelta(seconds=n % 36_000)
        fields: dict[str, Any] = {
            "request_code": f"BJ-{n:07d}",
            "kind": pb.REQUEST_KIND_CANCELLATION,
            "service": services[n % len(services)],
            "channel": channels[n % len(channels)],
            "requested_at": _stamp(requested),
            "subscriber_document": common_pb2.IdentityDocument(type=kind, number=number),
            "service_number": f"9{n:08d}",
            "service_status": pb.SERVICE_STATUS_ACTIVE,
            "scheduled_date": Date(year=2026, month=11, day=25),
            "state": pb.TRACKED_REQUEST_STATE_PENDING,
        }
        if n % 4 == 1:  # executed at once
            fields.update(
                state=pb.TRACKED_REQUEST_STATE_EXECUTED,
                service_status=pb.SERVICE_STATUS_CANCELLED,
                scheduled_date=Date(year=2026, month=11, day=22),
                executed_at=_stamp(requested + timedelta(minutes=30)),
                execution_reason="Baja a solicitud del abonado",
            )
        elif n % 4 == 2:  # a plan migration
            fields.update(
                request_code=f"MG-{n:07d}",
                kind=pb.REQUEST_KIND_PLAN_MIGRATION,
                target_plan="Plan Hogar 100 Mbps",
                scheduled_date=Date(year=2026, month=12, day=1),
            )
        records.append(pb.RequestRecord(**fields))
    return pb.SubmitDailyReportRequest(
        report_date=Date(year=REPORT_DATE.year, month=REPORT_DATE.month, day=REPORT_DATE.day),
        records=records,
    )


def paths(
    settings: CancellationsSettings,
) -> dict[str, Callable[[Any], Any]]:
    """Each path: the wire report in, what it would store out (in its own shape)."""
    old = baseline_handler(settings)
    new = current_handler(settings)

    def baseline(request: Any) -> Any:
        return old._check_report(request, NOW)[1]

    def today(request: pb.SubmitDailyReportRequest) -> Any:
        return new._check_report(convert.daily_report(request, settings.max_records), NOW)[1]

    return {"baseline": baseline, "today": today}


def stored_rows(name: str, rows: Any) -> list[tuple[Any, ...]]:
    """A path's output as the tuples COPY stores (report_id aside), to compare the two."""
    if name == "baseline":
        columns = sys.modules["_baseline_cancellations_handler"].RECORD_COLUMNS[1:]
        return [tuple(row[c] for c in columns) for row in rows]
    return [tuple(row) for row in rows]


def cpu_seconds(run: Callable[[], object]) -> float:
    """The process CPU time of one call, garbage from earlier rounds collected first."""
    gc.collect()
    start = time.process_time()
    run()
    return time.process_time() - start


def profile(run: Callable[[], object], top: int) -> str:
    """The `top` functions of one call by own time."""
    profiler = cProfile.Profile()
    profiler.runcall(run)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Measure both paths and print their best CPU seconds and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000, help="records in the report")
    parser.add_argument("--rounds", type=int, default=5, help="alternate runs of each path")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    settings = CancellationsSettings()
    today_request = report(args.records)
    # The same report in each path's own wire format (built before any timing).
    requests = {"baseline": to_baseline(today_request, baseline_messages()), "today": today_request}
    runs = paths(settings)
    stored = {name: stored_rows(name, run(requests[name])) for name, run in runs.items()}
    if stored["baseline"] != stored["today"] or len(stored["today"]) != args.records:
        print("the two paths store different records", file=sys.stderr)
        return 1
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = min(best[name], cpu_seconds(partial(run, requests[name])))
    ratio = best["today"] / best["baseline"]
    if args.json:
        print(json.dumps({"records": args.records, **best, "ratio": round(ratio, 3)}))
    else:
        print(f"records:  {args.records:,} (best of {args.rounds} rounds, CPU seconds)")
        print(f"baseline: {best['baseline']:.3f} s  (handler at {BASELINE})")
        print(f"today:    {best['today']:.3f} s  (convert.daily_report + _check_report)")
        print(f"ratio:    {ratio:.2f}x")
    if args.profile:
        for name, run in runs.items():
            print(f"\n--- {name}")
            print(profile(partial(run, requests[name]), 18))
    return 0


if __name__ == "__main__":
    sys.exit(main())
