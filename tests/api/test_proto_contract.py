"""The .proto files as a published contract: `buf lint` (STANDARD and COMMENTS, proto/buf.yaml) is
clean, `buf build` compiles them, and every file carries the same package options for other
languages' generators."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
# proto/google/ holds copies of google/rpc/status.proto and google/type/date.proto, not ours.
PROTO_FILES = sorted(p.relative_to(PROTO).as_posix() for p in (PROTO / "npc").rglob("*.proto"))

# What an operator's generator relies on; one value per option for the whole npc.v1 package.
PACKAGE_OPTIONS = {
    "go_package": "github.com/npc-clearinghouse/npc/gen/go/npc/v1;npcv1",
    "java_package": "io.github.npcclearinghouse.npc.v1",
    "java_multiple_files": True,
    "csharp_namespace": "Npc.V1",
    "php_namespace": "Npc\\V1",
    "ruby_package": "Npc::V1",
    "objc_class_prefix": "NPC",
}


def buf() -> str:
    """The Buf CLI of the virtual environment running the tests (the `buf-bin` dev extra)."""
    found = Path(sys.executable).parent / "buf"
    if not found.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{found} is missing: pip install -e '.[dev]' installs buf-bin")
        pytest.skip(
            f"buf is not installed in this virtual environment ({found}): pip install buf-bin"
        )
    return str(found)


def run_buf(*args: str, cwd: Path = PROTO) -> subprocess.CompletedProcess[str]:
    """Run buf in a module directory (where its buf.yaml is)."""
    return subprocess.run(
        [buf(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The lint findings of a `buf lint --error-format=json` run, one JSON object per line."""
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_buf_lint_is_clean() -> None:
    proc = run_buf("lint", "--error-format=json")
    found = findings(proc)
    summary = [f"{f['path']}:{f['start_line']}: {f['type']}: {f['message']}" for f in found]
    assert proc.returncode == 0 and not found, "\n".join(summary) or proc.stderr


def test_buf_lint_catches_an_undocumented_field(tmp_path: Path) -> None:
    # The clean run above proves something only if lint would flag a missing comment: strip the
    # leading comment of one field in a copy of the module and expect exactly that finding.
    module = tmp_path / "proto"
    shutil.copytree(PROTO, module)
    common = module / "npc" / "v1" / "common.proto"
    # Money.amount: the only field declared so in common.proto.
    undocumented, count = re.subn(
        r"(?m)(^  //.*\n)+(?=  string amount = 1;)", "", common.read_text()
    )
    assert count == 1
    common.write_text(undocumented)
    proc = run_buf("lint", "--error-format=json", cwd=module)
    assert proc.returncode != 0
    assert [(f["path"], f["type"]) for f in findings(proc)] == [
        ("npc/v1/common.proto", "COMMENT_FIELD")
    ]


def test_buf_build_compiles_every_file_with_the_package_options(tmp_path: Path) -> None:
    image = tmp_path / "image.binpb"
    proc = run_buf("build", "-o", str(image))
    assert proc.returncode == 0, proc.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()).file
    ours = {f.name: f for f in files if f.name.startswith("npc/")}
    assert sorted(ours) == PROTO_FILES
    for name, file in ours.items():
        assert file.package == "npc.v1", name
        options = {field.name: value for field, value in file.options.ListFields()}
        stem = Path(name).stem.capitalize()
        assert options == {**PACKAGE_OPTIONS, "java_outer_classname": f"{stem}Proto"}, name


# Calendar dates that were YYYY-MM-DD strings: (message, field) -> the string's field number.
# A field's type cannot change under its number (old clients would misread the bytes), so each
# Date has a new number and the old one is reserved, never to be reused.
FORMER_DATE_STRINGS = {
    ("npc.v1.Debt", "due_date"): 2,
    ("npc.v1.PortRequest", "installation_date"): 26,
    ("npc.v1.SubmitPortRequestRequest", "installation_date"): 9,
    ("npc.v1.ReportInstallationRequest", "installation_date"): 3,
    ("npc.v1.Suspension", "due_date"): 8,
    ("npc.v1.RequestSuspensionRequest", "due_date"): 5,
    ("npc.v1.RequestRecord", "scheduled_date"): 9,
    ("npc.v1.SubmitDailyReportRequest", "report_date"): 2,
    ("npc.v1.DailyReportChunk", "report_date"): 2,
    ("npc.v1.DailyReportReceipt", "report_date"): 2,
    ("npc.v1.TrackedRequest", "last_report_date"): 4,
    ("npc.v1.DailyReportComplianceRequest", "from_date"): 2,
    ("npc.v1.DailyReportComplianceRequest", "to_date"): 3,
    ("npc.v1.OperatorReportCompliance", "missing_dates"): 7,
    ("npc.v1.OperatorReportCompliance", "late_dates"): 8,
}
# Dates added since, never strings.
# Dates added since, Dates from the start: a decreed holiday, a compliance filter's period.
NEW_DATES = {
    ("npc.v1.HolidayDecreed", "date"),
    ("npc.v1.RecordFilter", "from_date"),
    ("npc.v1.RecordFilter", "to_date"),
}


def _messages(
    prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for message in messages:
        name = f"{prefix}.{message.name}"
        yield name, message
        yield from _messages(name, message.nested_type)


def test_calendar_dates_are_google_type_dates_under_new_numbers(tmp_path: Path) -> None:
    image = tmp_path / "image.binpb"
    proc = run_buf("build", "-o", str(image))
    assert proc.returncode == 0, proc.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()).file
    messages = dict(
        item
        for f in files
        if f.name.startswith("npc/")
        for item in _messages("npc.v1", f.message_type)
    )
    found = {}
    for name, message in messages.items():
        reserved = {n for r in message.reserved_range for n in range(r.start, r.end)}
        for field in message.field:
            # Every field named as a date (and nothing else) is a google.type.Date.
            if re.search(r"(^|_)dates?$", field.name):
                assert field.type_name == ".google.type.Date", (name, field.name, field.type_name)
                found[(name, field.name)] = field.number
            else:
                assert field.type_name != ".google.type.Date", (name, field.name)
        for (owner, field_name), old in FORMER_DATE_STRINGS.items():
            if owner == name:
                assert old in reserved, (name, field_name, old)
                assert old not in {f.number for f in message.field}, (name, old)
    assert found.keys() == FORMER_DATE_STRINGS.keys() | NEW_DATES
    assert all(found[key] != old for key, old in FORMER_DATE_STRINGS.items())
