"""The compliance ledger: every missed deadline or broken rule the clearinghouse observes.

Every rule says where it comes from (`Source`): the regulator's own text (with the infraction
number and severity only where its table gives them), an operator's internal procedure (seed 002,
the inoperability report to its own regulatory department: no infraction of the regulator's
table), or the clearinghouse itself (a term the regulation does not set, which the project chose).
Each record stores its rule's source, so the regulator reads it next to the facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from prometheus_client import Counter

from npc.core.events import CLEARINGHOUSE
from npc.store.database import Txn

COMPLIANCE_RECORDS = Counter(
    "npc_compliance_records_total",
    "Compliance records written, by flow, rule, severity and the operator in breach.",
    ["flow", "rule", "severity", "operator"],
)

# Peru's portability regulation, whose table of 40 infractions (seed 003) is the only one with
# numbers and severities among the seeds.
PORTABILITY_REGULATION = "Reglamento de Portabilidad Numérica (OSIPTEL), régimen de infracciones"
# The `severity` label of a rule whose source gives none.
NO_SEVERITY = "none"


class Severity(StrEnum):
    """How grave an infraction is, as the regulator's table classifies it (stored as values)."""

    LEVE = "leve"
    GRAVE = "grave"
    MUY_GRAVE = "muy_grave"


class SourceKind(StrEnum):
    """Who set a rule (stored as their values)."""

    # The regulator's text: a regulation, its infraction table, a technical instruction.
    REGULATION = "regulation"
    # An operator's internal procedure (seed 002): owed to the operator's own regulatory
    # department, not an infraction of the regulator's table.
    OPERATOR_PROCEDURE = "operator_procedure"
    # The clearinghouse's own choice where the regulation sets no term it can observe.
    CLEARINGHOUSE = "clearinghouse"


@dataclass(frozen=True)
class Source:
    """Where a rule comes from: build it with `regulation`, `operator_procedure` or
    `clearinghouse`.

    Attributes:
        kind: who set the rule.
        document: the text it rests on (for the clearinghouse's own rules, the text it builds on).
        article: the article or section, when the text has one.
        infraction: number in the regulator's infraction table, when it lists the breach.
        severity: the table's severity; None where the source gives none.
        note: for the clearinghouse's rules, why and what it chose; for the others, how the
            clearinghouse measures a term the text leaves open ("immediately"), if it does.
    """

    kind: SourceKind
    document: str
    article: str | None = None
    infraction: int | None = None
    severity: Severity | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if not self.document:
            raise ValueError("a source names its document")
        if (self.infraction is None) != (self.severity is None):
            # Only the infraction table gives severities, and it gives one to every infraction.
            raise ValueError("an infraction number and its severity come together")
        if self.kind is not SourceKind.REGULATION and self.infraction is not None:
            raise ValueError("only the regulator's table numbers infractions")
        if self.kind is SourceKind.CLEARINGHOUSE and not self.note:
            raise ValueError("a rule of the clearinghouse's own says why")

    @classmethod
    def regulation(
        cls,
        document: str,
        *,
        article: str | None = None,
        infraction: int | None = None,
        severity: Severity | None = None,
        measured: str | None = None,
    ) -> Source:
        """A rule of the regulator's text; `measured` says how the clearinghouse observes a term
        the text leaves open."""
        return cls(SourceKind.REGULATION, document, article, infraction, severity, measured)

    @classmethod
    def operator_procedure(cls, document: str, *, article: str | None = None) -> Source:
        """A term of an operator's own internal procedure."""
        return cls(SourceKind.OPERATOR_PROCEDURE, document, article)

    @classmethod
    def clearinghouse(cls, why: str, *, basis: str) -> Source:
        """A rule the clearinghouse chose, `why`, building on the text `basis`."""
        return cls(SourceKind.CLEARINGHOUSE, basis, note=why)

    @property
    def severity_label(self) -> str:
        """The severity as a metric label: ``none`` where the source gives none."""
        return self.severity.value if self.severity is not None else NO_SEVERITY

    def as_payload(self) -> dict[str, Any]:
        """The source as the ledger's event carries it, beside the record's own infraction,
        article and severity."""
        return {"kind": self.kind.value, "document": self.document, "note": self.note}


@dataclass(frozen=True)
class Rule:
    """A regulated obligation whose breach is recorded.

    Built with its `source` (``Rule("key", party=..., description=..., source=Source...)``), or
    the older way, ``Rule(key, infraction, article, severity, party, description)``: a numbered
    infraction is then one of the portability regulation's table (its severity required), and a
    rule without one a regulation text without severity (`tests/core/test_rule_sources.py` makes
    every catalogued rule's source explicit). `infraction`, `article` and `severity` always read
    the source's.

    Attributes:
        key: stable identifier used in the ledger (``donor_answer_request``).
        party: ``donor`` or ``recipient`` (or another flow-specific role).
        description: the obligation, as an operator would read it.
        source: where the rule comes from.
    """

    key: str
    infraction: int | None = None
    article: str | None = None
    # What the older constructor passed ("leve"...); read back, the source's `Severity`.
    severity: str | None = None
    party: str = ""
    description: str = ""
    # Always set once built (from the older arguments when not given).
    source: Source = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.party or not self.description:
            raise ValueError(f"rule {self.key!r} names its party and obligation")
        source = self.source
        if source is None:
            source = _legacy_source(self.infraction, self.article, self.severity)
        elif (self.infraction, self.article, self.severity) != (None, None, None):
            raise ValueError(f"rule {self.key!r}: give its source, not its parts")
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "infraction", source.infraction)
        object.__setattr__(self, "article", source.article)
        object.__setattr__(self, "severity", source.severity)


def _legacy_source(infraction: int | None, article: str | None, severity: str | None) -> Source:
    """The source of a rule built the older way. A severity without an infraction number is not
    kept: only the portability regulation's table gives severities, each with its number."""
    if infraction is not None:
        return Source.regulation(
            PORTABILITY_REGULATION,
            article=article,
            infraction=infraction,
            severity=Severity(severity) if severity else None,
        )
    return Source.regulation(article or "unspecified")


def series(
    catalogue: Iterable[tuple[str, Iterable[Rule], Iterable[str]]],
) -> Iterator[tuple[str, str, str, str]]:
    """The (flow, rule, severity, operator) label values of every catalogued rule and every
    operator it may concern: (flow name, its rules, the operators of its country) each."""
    for flow, rules, operators in catalogue:
        concerned = tuple(operators)
        for rule in rules:
            for operator in concerned:
                yield flow, rule.key, rule.source.severity_label, operator


def initialise_series(catalogue: Iterable[tuple[str, Iterable[Rule], Iterable[str]]]) -> None:
    """Create `npc_compliance_records_total` at zero for every catalogued rule and operator, so
    that a rule never broken has its series from the first scrape (`series`)."""
    for labels in series(catalogue):
        COMPLIANCE_RECORDS.labels(*labels)


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

    The record carries its rule's source. It is also an event addressed to the operator
    concerned, so it learns of it on its stream.
    """
    source = rule.source
    inserted = await txn.conn.fetchval(
        """INSERT INTO compliance_records (operator_id, flow, case_id, rule, infraction, article,
                                           severity, description, due_at, observed_at, evidence,
                                           source_kind, source_document, source_note)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14)
           ON CONFLICT (flow, case_id, rule, operator_id) DO NOTHING RETURNING id""",
        operator,
        flow,
        case_id,
        rule.key,
        source.infraction,
        source.article,
        source.severity.value if source.severity else None,
        rule.description,
        due_at,
        observed_at,
        evidence,
        source.kind.value,
        source.document,
        source.note,
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
            "infraction": source.infraction,
            "article": source.article,
            "severity": source.severity.value if source.severity else None,
            "description": rule.description,
            "due_at": due_at.isoformat() if due_at else None,
            "observed_at": observed_at.isoformat(),
            "evidence": evidence,
            "source": source.as_payload(),
        },
    )
    txn.after_commit(
        lambda: COMPLIANCE_RECORDS.labels(flow, rule.key, source.severity_label, operator).inc()
    )
    return True
