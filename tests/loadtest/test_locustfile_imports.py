"""The load test drives the clearinghouse as operators do: from the server package it may import
only the generated `npc.v1` messages; the rest comes through the SDK (`npc_clients`)."""

from __future__ import annotations

import ast
from pathlib import Path

LOADTEST = Path(__file__).resolve().parents[2] / "loadtest"


def server_imports(path: Path) -> list[str]:
    """Modules of the `npc` package other than `npc.v1` that `path` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found += [
            name
            for name in names
            if (name == "npc" or name.startswith("npc."))
            and not (name == "npc.v1" or name.startswith("npc.v1."))
        ]
    return found


def test_the_load_test_imports_no_server_module() -> None:
    files = sorted(LOADTEST.glob("**/*.py"))
    assert files
    assert {str(f): server_imports(f) for f in files} == {str(f): [] for f in files}


def test_an_import_of_the_server_is_found(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from npc.v1 import common_pb2\nfrom npc.admin import DEMO_RANGES\n")
    assert server_imports(sample) == ["npc.admin"]
