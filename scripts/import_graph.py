"""Print the import graph between npc's packages and the import contract's violations.

    python scripts/import_graph.py            # graph by package, then violations
    python scripts/import_graph.py --modules  # graph by module

Pure: it parses the sources with `ast`, imports nothing of npc. The rules and the known debts
live in tests/test_imports.py, which fails on any violation not listed there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_imports import (  # noqa: E402
    KNOWN_DEBTS,
    TABLE_DEBTS,
    all_edges,
    package_of,
    table_strays,
    violations,
)


def main(argv: list[str] | None = None) -> int:
    """Print the graph, then every violation (known debts marked); exit 1 on a new one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="one line per module")
    args = parser.parse_args(argv)
    edges = all_edges()
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        key = source if args.modules else package_of(source)
        value = target if args.modules else package_of(target)
        if key != value:
            graph.setdefault(key, set()).add(value)
    for source in sorted(graph):
        print(f"{source} -> {', '.join(sorted(graph[source]))}")
    found = violations(edges)
    new = [item for item in found if (item[0], item[1]) not in KNOWN_DEBTS]
    print(f"\nviolations: {len(found)} ({len(found) - len(new)} known debts, {len(new)} new)")
    for source, target, rule in found:
        mark = "debt" if (source, target) in KNOWN_DEBTS else "NEW "
        print(f"  {mark} {source} -> {target}: {rule}")
    strays = sorted(table_strays())
    new_tables = [item for item in strays if item not in TABLE_DEBTS]
    print(f"\nSQL on shared tables outside their owner: {len(strays)} ({len(new_tables)} new)")
    for module, table in strays:
        mark = "debt" if (module, table) in TABLE_DEBTS else "NEW "
        print(f"  {mark} {module}: {table}")
    return 1 if new or new_tables else 0


if __name__ == "__main__":
    raise SystemExit(main())
