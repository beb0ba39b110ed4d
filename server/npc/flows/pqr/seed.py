"""Colombian demo providers for the PQR flow, apart from the Peruvian demo market.

The demo market (`npc.admin.DEMO_OPERATORS`) is Peruvian; PQR with CUN is a Colombian regime, so
its providers, the SIC (the regulator that assigns CUN ranges and decides appeals) and one demo
CUN range per provider are loaded here. Tokens are for local use only.
"""

from __future__ import annotations

from datetime import datetime

from npc.core.numbers import register_operator
from npc.flows.pqr.store import insert_cun_range_if_free
from npc.store.database import Database
from npc.store.operators import OperatorSpec

COLOMBIAN_PROVIDERS = [
    OperatorSpec("claro-co", "Claro Colombia", "732101", "dev-token-claro-co", country="CO"),
    OperatorSpec(
        "movistar-co", "Movistar Colombia", "732123", "dev-token-movistar-co", country="CO"
    ),
    OperatorSpec("tigo", "Tigo", "732103", "dev-token-tigo", country="CO"),
    OperatorSpec(
        "sic",
        "Superintendencia de Industria y Comercio",
        "732000",
        "dev-token-sic",
        role="regulator",
        country="CO",
    ),
]
# Ten-digit CUNs; the SIC sets the real ranges and their format.
DEMO_CUN_RANGES = [
    ("claro-co", "1000000000", "1999999999"),
    ("movistar-co", "2000000000", "2999999999"),
    ("tigo", "3000000000", "3999999999"),
]


async def seed_colombia(db: Database, assigned_at: datetime) -> None:
    """Register the Colombian demo providers and the SIC, with one CUN range each provider.

    Idempotent: operators are upserted and a range already assigned is left alone.
    """
    for spec in COLOMBIAN_PROVIDERS:
        await register_operator(db, spec)
    async with db.pool.acquire() as conn:
        for operator, first, last in DEMO_CUN_RANGES:
            await insert_cun_range_if_free(conn, operator, first, last, assigned_at, "sic")
