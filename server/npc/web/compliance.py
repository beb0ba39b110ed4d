"""The compliance ledger as regulator reports: every record, and counts per operator and rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npc.store.database import Database
from npc.web.site import Column, Report, ReportQuery

RECORD_COLUMNS = (
    Column("observado_en", "Observado", "instant"),
    Column("operador", "Operador"),
    Column("flujo", "Proceso"),
    Column("caso", "Caso"),
    Column("regla", "Regla"),
    Column("infraccion", "Infracción", "number"),
    Column("articulo", "Artículo"),
    Column("gravedad", "Gravedad"),
    Column("descripcion", "Obligación", "prose"),
    Column("vencia_en", "Plazo", "instant"),
    Column("evidencia", "Evidencia", "json"),
)
SUMMARY_COLUMNS = (
    Column("operador", "Operador"),
    Column("flujo", "Proceso"),
    Column("regla", "Regla"),
    Column("infraccion", "Infracción", "number"),
    Column("articulo", "Artículo"),
    Column("gravedad", "Gravedad"),
    Column("registros", "Registros", "number"),
)


def compliance_reports(db: Database) -> list[Report]:
    """The ledger's two reports: the records themselves and their counts."""

    async def records(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        async with db.pool.acquire() as conn:
            rows: Sequence[Mapping[str, Any]] = await conn.fetch(
                """SELECT observed_at AS observado_en, operator_id AS operador, flow AS flujo,
                          case_id AS caso, rule AS regla, infraction AS infraccion,
                          article AS articulo, severity AS gravedad, description AS descripcion,
                          due_at AS vencia_en, evidence AS evidencia
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
                """SELECT operator_id AS operador, flow AS flujo, rule AS regla,
                          infraction AS infraccion, article AS articulo, severity AS gravedad,
                          count(*) AS registros
                   FROM compliance_records
                   WHERE observed_at >= $1 AND observed_at < $2
                     AND ($3::text IS NULL OR operator_id = $3)
                   GROUP BY 1, 2, 3, 4, 5, 6
                   ORDER BY 1, 2, 3""",
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
                "Cada plazo u obligación incumplida que el administrador observó, con la infracción "
                "del régimen de infracciones que corresponde, su gravedad y la evidencia (los "
                "instantes involucrados)."
            ),
            columns=RECORD_COLUMNS,
            rows=records,
            operators_see_own=True,
        ),
        Report(
            slug="cumplimiento-resumen",
            title="Resumen de incumplimientos por operador",
            description="Número de incumplimientos por operador, proceso y regla en el periodo.",
            columns=SUMMARY_COLUMNS,
            rows=summary,
            operators_see_own=True,
        ),
    ]
