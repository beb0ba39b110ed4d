"""Administration of reference data: operators, their tokens and their numbering ranges."""

from __future__ import annotations

from datetime import UTC, datetime

from npc.core import numbers
from npc.core.numbers import emit_imported, register_operator
from npc.store import operators
from npc.store.database import Database
from npc.store.operators import OperatorSpec

__all__ = [
    "DEMO_OPERATORS",
    "DEMO_RANGES",
    "OperatorSpec",
    "add_range",
    "seed_demo",
    "upsert_operator",
]


# Kept under these names for the command line and the tests: the operators table is the store's,
# registering an operator is the registry's reference data.
upsert_operator = register_operator


async def add_range(
    db: Database, operator: str, service: str, first: str, last: str, *, now: datetime | None = None
) -> None:
    """Assign the inclusive number range first..last to `operator` in the numbering plan."""
    async with db.transaction("admin.add_range", now or datetime.now(UTC)) as txn:
        await numbers.add_range(txn, operator, service, first, last)
        emit_imported(txn, "plan", 1)


# A small Peruvian-like market for demos and first runs. Tokens are for local use only.
DEMO_OPERATORS = [
    OperatorSpec("claro", "América Móvil Perú (Claro)", "21", "dev-token-claro"),
    OperatorSpec("movistar", "Telefónica del Perú (Movistar)", "22", "dev-token-movistar"),
    OperatorSpec("entel", "Entel Perú", "23", "dev-token-entel"),
    OperatorSpec("bitel", "Viettel Perú (Bitel)", "24", "dev-token-bitel"),
    OperatorSpec("osiptel", "OSIPTEL (regulator)", "00", "dev-token-osiptel", role="regulator"),
]
DEMO_RANGES = [
    ("claro", "mobile", "910000000", "919999999"),
    ("movistar", "mobile", "940000000", "949999999"),
    ("entel", "mobile", "960000000", "969999999"),
    ("bitel", "mobile", "980000000", "989999999"),
    ("movistar", "fixed", "12000000", "12999999"),
    ("claro", "fixed", "13000000", "13999999"),
]


async def seed_demo(db: Database, *, now: datetime | None = None) -> bool:
    """Load the demo market when no operator exists yet; return True if it was loaded.

    One transaction and one `registry.imported` event (kind "seed").
    """
    async with db.transaction("admin.seed_demo", now or datetime.now(UTC)) as txn:
        await operators.lock_for_seed(txn)
        if await operators.count(txn.conn):
            return False
        for spec in DEMO_OPERATORS:
            await operators.upsert(txn, spec)
        for operator, service, first, last in DEMO_RANGES:
            await numbers.add_range(txn, operator, service, first, last)
        emit_imported(txn, "seed", len(DEMO_RANGES))
    return True
