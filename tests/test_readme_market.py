"""The README's table of the demo market is the market `npc serve` loads."""

from __future__ import annotations

import re
from pathlib import Path

from npc.admin import DEMO_OPERATORS, DEMO_RANGES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_lists_the_demo_market_as_loaded() -> None:
    section = README.read_text().split("### The demo market", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, tuple[str, str, str, str]] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        operator = re.match(r"`([a-z]+)`", cells[0])
        assert operator is not None, row
        table[operator.group(1)] = (cells[1].strip("`"), cells[2], cells[3], cells[4])
    assert set(table) == {spec.id for spec in DEMO_OPERATORS}
    for spec in DEMO_OPERATORS:
        token, routing, mobile, fixed = table[spec.id]
        assert (token, routing) == (spec.token, spec.routing_code), spec.id
        ranges = {
            service: f"{first}–{last}" for op, service, first, last in DEMO_RANGES if op == spec.id
        }
        assert (mobile, fixed) == (ranges.get("mobile", ""), ranges.get("fixed", "")), spec.id
