"""The compliance ledger as regulator reports: every record, and counts per operator and rule.

Keys (CSV and JSON) are English; the Spanish labels are the page's. Each record names its rule's
source: `regulation` (the regulator's text, with the infraction and severity where its table gives
them), `operator_procedure` (an operator's own procedure, never an infraction of the regulator's
table) or `clearinghouse` (a term the clearinghouse chose); empty for records written before
rules named their source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.store.database import Database
from npc.web.site import Column, Report, ReportQuery

RECORD_COLUMNS = (
    Column("observed_at", "Observado", "instant"),
    Column("operator", "Operador", "operator"),
    Column("flow", "Proceso", "flow"),
    Column("case_id", "Caso"),
    Column("rule", "Regla"),
    Column("source", "Fuente"),
    Column("infraction", "Infracción", "number"),
    Column("article", "Artículo"),
    Column("severity", "Gravedad"),
    Column("obligation", "Obligación", "prose"),
    Column("source_document", "Norma o documento", "prose"),
    Column("source_note", "Nota sobre la fuente", "prose"),
    Column("due_at", "Plazo", "instant"),
    Column("evidence", "Evidencia", "json"),
)
SUMMARY_COLUMNS = (
    Column("operator", "Operador", "operator"),
    Column("flow", "Proceso", "flow"),
    Column("rule", "Regla"),
    Column("source", "Fuente"),
    Column("infraction", "Infracción", "number"),
    Column("article", "Artículo"),
    Column("severity", "Gravedad"),
    Column("records", "Registros", "number"),
)


def compliance_reports(db: Database) -> list[Report]:
    """The ledger's two reports: the records themselves and their counts."""

    async def records(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        async with db.pool.acquire() as conn:
            rows: Sequence[Mapping[str, Any]] = await conn.fetch(
                """SELECT observed_at, operator_id AS operator, flow, case_id, rule,
                          source_kind AS source, infraction, article, severity,
                          description AS obligation, source_document, source_note, due_at,
                          evidence
                   FROM compliance_records
                   WHERE observed_at >= $1 AND observed_at < $2
                     AND ($3::text IS NULL OR operator_id = $3)
                   ORDER BY observed_at, id""",
                query.start,
                query.end,
                query.operator,
            )
        return rows

    async def summary(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        async with db.pool.acquire() as conn:
            rows: Sequence[Mapping[str, Any]] = await conn.fetch(
                """SELECT operator_id AS operator, flow, rule, source_kind AS source, infraction,
                          article, severity, count(*) AS records
                   FROM compliance_records
                   WHERE observed_at >= $1 AND observed_at < $2
                     AND ($3::text IS NULL OR operator_id = $3)
                   GROUP BY 1, 2, 3, 4, 5, 6, 7
                   ORDER BY 1, 2, 3, 4 NULLS FIRST""",
                query.start,
                query.end,
                query.operator,
            )
        return rows

    return [
        Report(
            slug="cumplimiento",
            title="Registro de incumplimientos",
            description=(
                "Cada plazo u obligación incumplida que el administrador observó, con la fuente "
                "de la regla: el reglamento (con la infracción y su gravedad cuando su régimen "
                "de infracciones las da), un procedimiento propio del operador (no es una "
                "infracción del régimen del regulador) o una elección del administrador donde "
                "la norma no fija un plazo observable; y la evidencia (los instantes "
                "involucrados)."
            ),
            columns=RECORD_COLUMNS,
            rows=records,
            operators_see_own=True,
        ),
        Report(
            slug="cumplimiento-resumen",
            title="Resumen de incumplimientos por operador",
            description=(
                "Número de incumplimientos por operador, proceso y regla en el periodo, con la "
                "fuente de cada regla."
            ),
            columns=SUMMARY_COLUMNS,
            rows=summary,
            operators_see_own=True,
        ),
    ]
