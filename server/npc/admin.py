"""Administration of reference data: operators, their tokens and their numbering ranges."""

from __future__ import annotations

from dataclasses import dataclass

from npc.api.identity import token_digest
from npc.store.database import Database


@dataclass(frozen=True)
class OperatorSpec:
    """An operator to register."""

    id: str
    name: str
    routing_code: str
    token: str | None = None
    role: str = "operator"


async def upsert_operator(db: Database, spec: OperatorSpec) -> None:
    """Register (or update) an operator and its API token."""
    async with db.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO operators (id, name, routing_code, role, token_sha256)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                   routing_code = EXCLUDED.routing_code, role = EXCLUDED.role,
                   token_sha256 = COALESCE(EXCLUDED.token_sha256, operators.token_sha256)""",
            spec.id,
            spec.name,
            spec.routing_code,
            spec.role,
            token_digest(spec.token) if spec.token else None,
        )


async def add_range(db: Database, operator: str, service: str, first: str, last: str) -> None:
    """Assign the inclusive number range first..last to `operator` in the numbering plan."""
    async with db.pool.acquire() as conn:
        await conn.execute(
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


async def seed_demo(db: Database) -> bool:
    """Load the demo market when no operator exists yet; return True if it was loaded."""
    async with db.pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM operators"):
            return False
    for spec in DEMO_OPERATORS:
        await upsert_operator(db, spec)
    for operator, service, first, last in DEMO_RANGES:
        await add_range(db, operator, service, first, last)
    return True
