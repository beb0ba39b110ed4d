"""The import contract between npc's packages, checked on the sources with `ast` (no server).

- The core imports only the store (and the standard library and third-party libraries, but not
  grpc, aiohttp, npc.api, npc.web, npc.v1 or a flow).
- The store imports nothing of npc but itself.
- A flow's rules, store and handler modules import the core, the store, the settings and the
  notification outbox: nothing of another flow and nothing of gRPC or HTTP. Only its transport
  modules (`api.py`, `convert.py`, `web.py`) and its manifest (`flow.py`) touch the transport.
- No flow imports another flow, whatever the module.
- Nothing that serves requests imports the client SDK (`npc_clients`); the command-line tools do.

Shared tables have one owner: SQL naming `operators` lives in the operators store, the
registry's tables in the registry API and the registry flow, portability's tables in portability.

`python scripts/import_graph.py` prints the graph and the violations.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"

# Third-party packages of the transports (and the client SDK): recorded as edges.
TRANSPORT = {
    "grpc",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
    "aiohttp",
    "npc.api",
    "npc.v1",
    "npc.web",
}
WATCHED_LIBS = {"grpc", "grpc_status", "grpc_health", "grpc_reflection", "aiohttp", "npc_clients"}
# A flow's modules that speak the transport.
TRANSPORT_MODULES = {"api", "convert", "web", "flow"}
# What a flow's rules, store and handler modules may use besides their own flow.
FLOW_MAY_USE = ("npc.core", "npc.store", "npc.config", "npc.notifications.outbox")
# Command-line tools: they drive a server as a client would, so they may use the SDK.
TOOLS = ("npc.cli", "npc.__main__")

# Known debts: (importer, imported) pairs that break a rule today, each with why it is still here.
# The test fails on any violation not listed, and on an entry that no longer occurs (so the list
# only shrinks).
KNOWN_DEBTS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    """The dotted module name of a source file under server/."""
    parts = list(path.relative_to(SERVER).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the server package but the generated protobuf code."""
    found = {}
    for path in sorted((SERVER / "npc").rglob("*.py")):
        name = module_name(path)
        if name == "npc.v1" or name.startswith("npc.v1."):
            continue
        found[name] = path
    return found


def _target(name: str) -> str | None:
    """The edge an imported name makes: an npc module (npc.v1 as one), a watched library, or
    None for anything else."""
    if name == "npc.v1" or name.startswith("npc.v1."):
        return "npc.v1"
    if name == "npc" or name.startswith("npc."):
        return name
    top = name.split(".")[0]
    return top if top in WATCHED_LIBS else None


def imports_of(module: str) -> set[str]:
    """What `module` imports (at any depth of its code, type-checking imports included)."""
    path = modules()[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from npc.flows.x import store` imports the module npc.flows.x.store.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                for alias in node.names
            ]
        for name in names:
            target = _target(name)
            if target is not None and target != module:
                found.add(target)
    return found


@cache
def _edges() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((m, t) for m in modules() for t in imports_of(m)))


def all_edges() -> list[tuple[str, str]]:
    """Every (importer, imported) pair of the server package."""
    return list(_edges())


def package_of(module: str) -> str:
    """The package an edge is drawn between: npc.core, npc.store, npc.flows.<flow>, npc.api..."""
    parts = module.split(".")
    if parts[0] != "npc" or len(parts) == 1:
        return module
    if parts[1] == "flows" and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def _within(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def rule_broken(source: str, target: str) -> str | None:
    """The rule the edge source -> target breaks, or None."""
    if target == "npc_clients" and not _within(source, TOOLS):
        return "only the command-line tools use the client SDK"
    if _within(source, ("npc.store",)) and not _within(target, ("npc.store",)):
        return "the store imports nothing of npc but itself"
    if _within(source, ("npc.core",)) and not _within(target, ("npc.core", "npc.store")):
        return "the core imports only the core and the store"
    parts = source.split(".")
    if len(parts) >= 4 and parts[1] == "flows":
        flow = ".".join(parts[:3])
        if _within(target, ("npc.flows",)) and not _within(target, (flow,)):
            return "a flow never imports another flow"
        transport = parts[3] in TRANSPORT_MODULES
        if not transport and _within(target, TRANSPORT):
            return "only a flow's api/convert/web/flow modules touch gRPC or HTTP"
        if not transport and not _within(target, (*FLOW_MAY_USE, flow)):
            return "a flow's rules, store and handler use only the core, the store and itself"
    return None


def violations(edges: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Every edge that breaks a rule, with the rule."""
    found = []
    for source, target in edges:
        rule = rule_broken(source, target)
        if rule is not None:
            found.append((source, target, rule))
    return found


def test_no_new_violation_of_the_import_contract() -> None:
    """Every edge that breaks a rule is a listed known debt."""
    new = [v for v in violations(all_edges()) if (v[0], v[1]) not in KNOWN_DEBTS]
    assert not new, "imports that break the contract:\n" + "\n".join(
        f"  {s} -> {t}: {rule}" for s, t, rule in new
    )


def test_known_debts_still_exist() -> None:
    """A debt that was paid leaves the list, so the list only shrinks."""
    broken = {(s, t) for s, t, _ in violations(all_edges())}
    paid = sorted(set(KNOWN_DEBTS) - broken)
    assert not paid, f"paid debts to remove from KNOWN_DEBTS: {paid}"


def test_the_checker_sees_the_imports_it_judges() -> None:
    """The parser finds real edges, relative and nested imports included, and judges them."""
    edges = set(all_edges())
    assert ("npc.core.runtime", "npc.store.database") in edges
    assert ("npc.flows.portability.api", "npc.v1") in edges
    assert rule_broken("npc.flows.sgu.handler", "npc.flows.portability.validation")
    assert rule_broken("npc.flows.sgu.handler", "grpc")
    assert rule_broken("npc.core.health", "npc.api.identity")
    assert rule_broken("npc.store.database", "npc.core.clock")
    assert rule_broken("npc.web.http", "npc_clients")
    assert rule_broken("npc.flows.sgu.api", "npc.flows.pqr.handler")
    assert rule_broken("npc.flows.sgu.api", "npc.v1") is None
    assert rule_broken("npc.flows.sgu.handler", "npc.core.validation") is None
    assert rule_broken("npc.cli", "npc_clients") is None


# Who may name a shared table in SQL; everyone else asks them through a function.
TABLE_OWNERS: dict[str, tuple[str, ...]] = {
    "operators": ("npc.store.operators",),
    "number_ranges": ("npc.core.numbers", "npc.flows.registry"),
    "ported_numbers": ("npc.core.numbers", "npc.flows.registry"),
    "number_history": ("npc.core.numbers", "npc.flows.registry"),
    "port_requests": ("npc.flows.portability",),
    "port_request_numbers": ("npc.flows.portability",),
    "prior_consultations": ("npc.flows.portability",),
}
# Known debts: (module, table) pairs still naming a table they do not own, each with why.
TABLE_DEBTS: dict[tuple[str, str], str] = {}
_SQL_TABLE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([a-z_]+)\b")


def table_strays() -> set[tuple[str, str]]:
    """(module, table) where a module names a shared table it does not own."""
    return {(m, t) for m, t in table_uses() if not _within(m, TABLE_OWNERS[t])}


def table_uses() -> set[tuple[str, str]]:
    """(module, shared table) for every module whose SQL names a shared table."""
    found = set()
    for module, path in modules().items():
        for table in _SQL_TABLE.findall(path.read_text()):
            if table in TABLE_OWNERS:
                found.add((module, table))
    return found


def test_shared_tables_are_asked_through_their_owner() -> None:
    """Only a table's owner names it in SQL; the list of debts only shrinks."""
    strays = table_strays()
    assert not strays - set(TABLE_DEBTS), (
        f"SQL on a table the module does not own: {sorted(strays - set(TABLE_DEBTS))}"
    )
    assert not set(TABLE_DEBTS) - strays, (
        f"paid table debts to remove: {sorted(set(TABLE_DEBTS) - strays)}"
    )
