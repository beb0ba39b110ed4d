"""Every SQL statement of the user management system: problems, subcategories, outages and the
statistics. Named functions taking the connection (or the transaction) and typed arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from asyncpg import Connection, Record

from npc.core.cases import CaseTable
from npc.flows.sgu.model import Subcategory
from npc.flows.sgu.rules import FLOW, Channel, State
from npc.store.database import Txn

CASES = CaseTable(FLOW, "sgu_problems", "problem", ("operator",))


@dataclass(frozen=True)
class NewProblem:
    """A problem as registered: one field per column of its sgu_problems row."""

    id: str
    operator: str
    state: State
    channel: Channel
    subscriber_name: str
    document_type: str
    document_number: str
    email: str | None
    contact_phone: str | None
    number: str
    subcategory: str
    category: str
    deadline_unit: str
    deadline_amount: int
    description: str
    office_code: str | None
    office_name: str | None
    office_department: str | None
    office_province: str | None
    office_district: str | None
    office_ubigeo: str | None
    registered_by: str | None
    confirmation_sha256: bytes | None
    registered_at: datetime
    claimable: bool
    claim_business_days: int


# Built once from the dataclass, so a column and its value cannot drift apart.
_PROBLEM_COLUMNS = tuple(f.name for f in fields(NewProblem))
_INSERT_PROBLEM = (
    f"INSERT INTO sgu_problems ({', '.join(_PROBLEM_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_PROBLEM_COLUMNS) + 1))}) RETURNING *"
)


async def next_problem_id(conn: Any) -> str:
    """A new problem code, SG and ten digits."""
    value = await conn.fetchval("SELECT nextval($1)", "sgu_problem_seq")
    return f"SG{value:010d}"


async def insert_problem(conn: Any, problem: NewProblem) -> Record:
    """Store a registered problem; its row."""
    row: Record = await conn.fetchrow(_INSERT_PROBLEM, *astuple(problem))
    return row


async def problem(conn: Any, problem_id: str) -> Record | None:
    """A problem's row, unlocked (None: no such problem)."""
    row: Record | None = await conn.fetchrow("SELECT * FROM sgu_problems WHERE id = $1", problem_id)
    return row


async def problem_under_way(
    conn: Any, number: str, subcategory: str, states: Sequence[State]
) -> str | None:
    """The problem of the line and subcategory in one of `states`, if any."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM sgu_problems WHERE number = $1 AND subcategory = $2"
        " AND state = ANY($3::text[])",
        number,
        subcategory,
        list(states),
    )
    return found


async def problem_by_confirmation(conn: Any, digest: bytes) -> str | None:
    """The problem whose confirmation token has this SHA-256 digest."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM sgu_problems WHERE confirmation_sha256 = $1", digest
    )
    return found


async def tray(conn: Any, operator: str, states: Sequence[State]) -> list[Record]:
    """The operator's problems in `states`, oldest in its tray first."""
    rows: list[Record] = await conn.fetch(
        "SELECT * FROM sgu_problems WHERE operator = $1 AND state = ANY($2::text[])"
        " ORDER BY transferred_at, id",
        operator,
        list(states),
    )
    return rows


async def active_subcategory(conn: Any, code: str) -> Record | None:
    """An active subcategory of the catalogue."""
    row: Record | None = await conn.fetchrow(
        "SELECT * FROM sgu_subcategories WHERE code = $1 AND active", code
    )
    return row


async def subcategories(conn: Any, *, include_inactive: bool) -> list[Record]:
    """The subcategories, by category and code."""
    rows: list[Record] = await conn.fetch(
        "SELECT * FROM sgu_subcategories WHERE active OR $1 ORDER BY category, code",
        include_inactive,
    )
    return rows


async def subcategory_name(conn: Any, code: str) -> str | None:
    """A subcategory's name (None: not in the catalogue)."""
    name: str | None = await conn.fetchval(
        "SELECT name FROM sgu_subcategories WHERE code = $1", code
    )
    return name


async def upsert_subcategory(txn: Txn, entry: Subcategory) -> Record:
    """Add or change a checked subcategory; its row."""
    assert entry.deadline_unit is not None
    row: Record = await txn.conn.fetchrow(
        """INSERT INTO sgu_subcategories (code, name, category, category_name, service,
               deadline_unit, deadline_amount, claimable, claim_business_days, active,
               updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
               category = EXCLUDED.category, category_name = EXCLUDED.category_name,
               service = EXCLUDED.service, deadline_unit = EXCLUDED.deadline_unit,
               deadline_amount = EXCLUDED.deadline_amount, claimable = EXCLUDED.claimable,
               claim_business_days = EXCLUDED.claim_business_days,
               active = EXCLUDED.active, updated_at = EXCLUDED.updated_at
           RETURNING *""",
        entry.code,
        entry.name,
        entry.category,
        entry.category_name,
        entry.service,
        entry.deadline_unit.value,
        entry.deadline_amount,
        entry.claimable,
        entry.claim_business_days,
        entry.active,
        txn.now,
    )
    return row


async def outages_of(conn: Any, operator: str) -> list[tuple[datetime, datetime]]:
    """The outages that stop an operator's deadlines: its own and the SGU's."""
    rows = await conn.fetch(
        "SELECT starts_at, ends_at FROM sgu_outages WHERE operator IS NULL OR operator = $1",
        operator,
    )
    return [(r["starts_at"], r["ends_at"]) for r in rows]


async def insert_outage(
    txn: Txn,
    operator: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    recorded_by: str,
) -> int:
    """Record an outage; its id."""
    outage_id: int = await txn.conn.fetchval(
        """INSERT INTO sgu_outages (operator, starts_at, ends_at, reason, recorded_by,
                                    recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        operator,
        starts_at,
        ends_at,
        reason,
        recorded_by,
        txn.now,
    )
    return outage_id


async def deadlines_running_during(
    conn: Any, operator: str | None, starts_at: datetime, ends_at: datetime
) -> list[str]:
    """Problems (of `operator`, or of all) whose answer or claim-code deadline runs during the
    outage; those already missed stay missed."""
    rows = await conn.fetch(
        """SELECT id FROM sgu_problems
           WHERE ($1::text IS NULL OR operator = $1)
             AND ((state = 'in_tray' AND transferred_at < $3 AND answer_deadline > $2)
               OR (state = 'claim_requested' AND escalated_at < $3
                   AND claim_code_deadline > $2))
           ORDER BY id""",
        operator,
        starts_at,
        ends_at,
    )
    return [r["id"] for r in rows]


# ------------------------------------------------------------------ statistics


async def most_frequent(
    conn: Any, start: datetime, end: datetime, operator: str | None
) -> list[Record]:
    """Problems transferred to operators per subcategory, most frequent first."""
    rows: list[Record] = await conn.fetch(
        """SELECT p.subcategory, s.name, count(*) AS problems
           FROM sgu_problems p JOIN sgu_subcategories s ON s.code = p.subcategory
           WHERE p.registered_at >= $1 AND p.registered_at < $2
             AND p.transferred_at IS NOT NULL
             AND ($3::text IS NULL OR p.operator = $3)
           GROUP BY p.subcategory, s.name ORDER BY problems DESC, p.subcategory""",
        start,
        end,
        operator,
    )
    return rows


async def resolution_times(
    conn: Any, start: datetime, end: datetime, operator: str | None
) -> list[Record]:
    """Hours from the tray to the answer per subcategory: `answered`, `average`, `longest`."""
    rows: list[Record] = await conn.fetch(
        """SELECT subcategory, count(*) AS answered,
              avg(extract(epoch FROM answered_at - transferred_at)) / 3600 AS average,
              max(extract(epoch FROM answered_at - transferred_at)) / 3600 AS longest
           FROM sgu_problems
           WHERE registered_at >= $1 AND registered_at < $2 AND answered_at IS NOT NULL
             AND ($3::text IS NULL OR operator = $3)
           GROUP BY subcategory ORDER BY subcategory""",
        start,
        end,
        operator,
    )
    return rows


async def operator_answers(
    conn: Any, start: datetime, end: datetime, now: datetime, operator: str | None
) -> list[Record]:
    """Per operator: problems, answered in time and late, overdue at `now`, claims."""
    rows: list[Record] = await conn.fetch(
        """SELECT operator, count(*) AS problems,
              count(*) FILTER (WHERE answered_at IS NOT NULL AND NOT answered_late)
                  AS in_time,
              count(*) FILTER (WHERE answered_late) AS late,
              count(*) FILTER (WHERE answered_at IS NULL AND answer_deadline <= $3)
                  AS overdue,
              count(*) FILTER (WHERE escalated_at IS NOT NULL) AS claims
           FROM sgu_problems
           WHERE registered_at >= $1 AND registered_at < $2
             AND transferred_at IS NOT NULL
             AND ($4::text IS NULL OR operator = $4)
           GROUP BY operator ORDER BY problems DESC, operator""",
        start,
        end,
        now,
        operator,
    )
    return rows


async def ratings(conn: Any, start: datetime, end: datetime, operator: str | None) -> list[Record]:
    """Per operator: answers rated, satisfied subscribers and the average score."""
    rows: list[Record] = await conn.fetch(
        """SELECT operator, count(*) AS rated, count(*) FILTER (WHERE satisfied)
              AS satisfied, avg(score)::float8 AS average
           FROM sgu_problems
           WHERE registered_at >= $1 AND registered_at < $2 AND rated_at IS NOT NULL
             AND ($3::text IS NULL OR operator = $3)
           GROUP BY operator ORDER BY operator""",
        start,
        end,
        operator,
    )
    return rows


async def problem_with_claim_code(conn: Connection, operator: str, code: str) -> str:
    """The id of the operator's problem holding a claim code ('' if none)."""
    found: str | None = await conn.fetchval(
        "SELECT id FROM sgu_problems WHERE operator = $1 AND claim_code = $2", operator, code
    )
    return found or ""
