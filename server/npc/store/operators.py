"""The operators (and regulators) registered with the clearinghouse: the one place that reads or
writes the `operators` table.

Every flow, the authenticator and the administration commands ask here: whether an operator is
registered, its name and routing code, the token digests that identify callers. Registering an
operator also tells the log (`npc.core.numbers.register_operator`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from npc.store.database import Txn


@dataclass(frozen=True)
class OperatorSpec:
    """An operator to register."""

    id: str
    name: str
    routing_code: str
    token: str | None = None
    role: str = "operator"
    country: str = "PE"  # "PE" or "CO": the country whose services it may use


@dataclass(frozen=True)
class Registered:
    """A registered identity as the authenticator needs it."""

    id: str
    role: str
    country: str
    token_sha256: bytes | None


def token_digest(token: str) -> bytes:
    """SHA-256 of an API token: the only form in which the clearinghouse keeps it."""
    return hashlib.sha256(token.encode()).digest()


def is_operator_sql(operator: str) -> str:
    """The boolean subquery of `is_operator` (any country) for the operator named by the
    parameter `operator` ("$2"), for a statement that reads it along with more."""
    return f"EXISTS (SELECT 1 FROM operators WHERE id = {operator} AND role = 'operator')"


async def is_operator(
    conn: asyncpg.Connection, operator: str, *, country: str | None = None
) -> bool:
    """True when `operator` is a registered operator (not a regulator), of `country` if given."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM operators WHERE id = $1 AND role = 'operator'"
            " AND ($2::text IS NULL OR country = $2)",
            operator,
            country,
        )
    )


async def is_registered(conn: asyncpg.Connection, operator: str) -> bool:
    """True when `operator` is registered, in any role."""
    return bool(await conn.fetchval("SELECT 1 FROM operators WHERE id = $1", operator))


async def registered_ids(conn: asyncpg.Connection) -> list[str]:
    """The ids of every registered identity, in any role (a bulk import checks its rows against
    them in SQL)."""
    rows = await conn.fetch("SELECT id FROM operators ORDER BY id")
    return [r["id"] for r in rows]


async def count(conn: asyncpg.Connection) -> int:
    """How many identities are registered."""
    return int(await conn.fetchval("SELECT count(*) FROM operators"))


def routing_code_sql(operator: str) -> str:
    """The scalar subquery of the routing code of the operator named by the parameter `operator`
    ("$2"), for a statement that reads it along with more: one round trip less."""
    return f"(SELECT routing_code FROM operators WHERE id = {operator})"


async def routing_code(conn: asyncpg.Connection, operator: str) -> str | None:
    """The network routing code of `operator`, or None when it is not registered."""
    code = await conn.fetchval("SELECT routing_code FROM operators WHERE id = $1", operator)
    return None if code is None else str(code)


async def routing_codes(conn: asyncpg.Connection) -> dict[str, str]:
    """Every registered identity's routing code, by id."""
    rows = await conn.fetch("SELECT id, routing_code FROM operators")
    return {r["id"]: r["routing_code"] for r in rows}


async def name_of(conn: asyncpg.Connection, operator: str) -> str | None:
    """The registered name of `operator`, or None."""
    name = await conn.fetchval("SELECT name FROM operators WHERE id = $1", operator)
    return None if name is None else str(name)


async def names(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The registered names of `ids` (unknown ids are left out)."""
    rows = await conn.fetch("SELECT id, name FROM operators WHERE id = ANY($1::text[])", list(ids))
    return {r["id"]: r["name"] for r in rows}


_LISTS = {
    "id": "SELECT id, name FROM operators WHERE role = 'operator'"
    " AND ($1::text IS NULL OR country = $1) ORDER BY id",
    "name": "SELECT id, name FROM operators WHERE role = 'operator'"
    " AND ($1::text IS NULL OR country = $1) ORDER BY name",
}


async def operator_list(
    conn: asyncpg.Connection, *, country: str | None = None, by: Literal["id", "name"] = "id"
) -> list[tuple[str, str]]:
    """(id, name) of the operators (regulators excluded), of `country` if given, ordered `by`."""
    rows = await conn.fetch(_LISTS[by], country)
    return [(r["id"], r["name"]) for r in rows]


async def registered(conn: asyncpg.Connection) -> list[Registered]:
    """Every registered identity with its role, country and token digest."""
    rows = await conn.fetch("SELECT id, role, country, token_sha256 FROM operators")
    return [
        Registered(
            r["id"],
            r["role"],
            r["country"],
            None if r["token_sha256"] is None else bytes(r["token_sha256"]),
        )
        for r in rows
    ]


async def upsert(txn: Txn, spec: OperatorSpec) -> None:
    """Register or update `spec` in `txn`; a spec without a token keeps the stored digest."""
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


async def lock_for_seed(txn: Txn) -> None:
    """Serialise first-run seeding: concurrent seeders see each other's operators."""
    await txn.conn.execute("LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE")
