"""Administration of reference data: operators, their tokens and their numbering ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from npc.api.identity import token_digest
from npc.flows.registry.importer import emit_imported
from npc.store.database import Database, Txn


@dataclass(frozen=True)
class OperatorSpec:
    """An operator to register."""

    id: str
    name: str
    routing_code: str
    token: str | None = None
    role: str = "operator"
    country: str = "PE"  # "PE" or "CO": the country whose services it may use


async def upsert_operator(db: Database, spec: OperatorSpec, *, now: datetime | None = None) -> None:
    """Register (or update) an operator and its API token.

    Emits `registry.imported` (kind "operators"): a routing code may have changed, and servers'
    hot data and operators' local copies reload the plan when they see it.
    """
    async with db.transaction("admin.upsert_operator", now or datetime.now(UTC)) as txn:
        await _upsert_operator(txn, spec)
        emit_imported(txn, "operators", 1)


async def add_range(
    db: Database, operator: str, service: str, first: str, last: str, *, now: datetime | None = None
) -> None:
    """Assign the inclusive number range first..last to `operator` in the numbering plan."""
    async with db.transaction("admin.add_range", now or datetime.now(UTC)) as txn:
        await _add_range(txn, operator, service, first, last)
        emit_imported(txn, "plan", 1)


async def _upsert_operator(txn: Txn, spec: OperatorSpec) -> None:
    await txn.conn.execute(
        """INSERT INTO operators (id, name, routing_code, role, token_sha256, country)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
               routing_code = EXCLUDED.routing_code, role = EXCLUDED.role,
               token_sha256 = COALESCE(EXCLUDED.token_sha256, operators.token_sha256),
               country = EXCLUDED.country""",
        spec.id,
        spec.name,
        spec.routing_code,
        spec.role,
        token_digest(spec.token) if spec.token else None,
        spec.country,
    )


async def _add_range(txn: Txn, operator: str, service: str, first: str, last: str) -> None:
    await txn.conn.execute(
        """INSERT INTO number_ranges (operator_id, service, numbers)
           VALUES ($1, $2, int8range($3::bigint, $4::bigint, '[]'))""",
        operator,
        service,
        int(first),
        int(last),
    )


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
        await txn.conn.execute("LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE")
        if await txn.conn.fetchval("SELECT count(*) FROM operators"):
            return False
        for spec in DEMO_OPERATORS:
            await _upsert_operator(txn, spec)
        for operator, service, first, last in DEMO_RANGES:
            await _add_range(txn, operator, service, first, last)
        emit_imported(txn, "seed", len(DEMO_RANGES))
    return True
