"""The compliance ledger: every missed deadline or broken rule the clearinghouse observes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from npc.core.events import CLEARINGHOUSE
from npc.store.database import Txn

COMPLIANCE_RECORDS = Counter(
    "npc_compliance_records_total",
    "Compliance records written, by flow, rule, severity and the operator in breach.",
    ["flow", "rule", "severity", "operator"],
)


@dataclass(frozen=True)
class Rule:
    """A regulated obligation whose breach is recorded.

    Attributes:
        key: stable identifier used in the ledger (``donor_answer_request``).
        infraction: number in the regulation's infraction table, when there is one.
        article: the article it enforces.
        severity: ``leve``, ``grave`` or ``muy_grave``.
        party: ``donor`` or ``recipient`` (or another flow-specific role).
        description: the obligation, as an operator would read it.
    """

    key: str
    infraction: int | None
    article: str
    severity: str
    party: str
    description: str


async def record_breach(
    txn: Txn,
    *,
    flow: str,
    rule: Rule,
    operator: str,
    case_id: str,
    due_at: datetime | None,
    observed_at: datetime,
    evidence: dict[str, Any],
) -> bool:
    """Write a compliance record (once per case, rule and operator); return True if new.

    The record is also an event addressed to the operator concerned, so it learns of it on its
    stream.
    """
    inserted = await txn.conn.fetchval(
        """INSERT INTO compliance_records (operator_id, flow, case_id, rule, infraction, article,
                                           severity, description, due_at, observed_at, evidence)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
           ON CONFLICT (flow, case_id, rule, operator_id) DO NOTHING RETURNING id""",
        operator,
        flow,
        case_id,
        rule.key,
        rule.infraction,
        rule.article,
        rule.severity,
        rule.description,
        due_at,
        observed_at,
        evidence,
    )
    if inserted is None:
        return False
    txn.emit(
        flow,
        "compliance.recorded",
        case_id=case_id,
        sender=CLEARINGHOUSE,
        audience=(operator,),
        payload={
            "record_id": inserted,
            "operator": operator,
            "rule": rule.key,
            "infraction": rule.infraction,
            "article": rule.article,
            "severity": rule.severity,
            "description": rule.description,
            "due_at": due_at.isoformat() if due_at else None,
            "observed_at": observed_at.isoformat(),
            "evidence": evidence,
        },
    )
    txn.after_commit(
        lambda: COMPLIANCE_RECORDS.labels(flow, rule.key, rule.severity, operator).inc()
    )
    return True
