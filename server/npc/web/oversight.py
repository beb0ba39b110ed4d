"""The regulator's charts of the clearinghouse as a whole: infractions per operator and week (from
the compliance ledger) and how late the clearinghouse fired its deadlines. Each is a report (a
table, in HTML, CSV and JSON) with its chart drawn from the same rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from npc.core.calendar import calendar_for
from npc.store.database import Database
from npc.store.operators import operator_list
from npc.web.charts import BarChart, Reference, Series
from npc.web.site import Column, Report, ReportQuery, days_between

WEEKLY_COLUMNS = (
    Column("week", "Semana (lunes)", "date"),
    Column("operator", "Operador", "operator"),
    Column("infractions", "Incumplimientos", "number"),
    Column("minor", "Leves", "number"),
    Column("serious", "Graves", "number"),
    Column("very_serious", "Muy graves", "number"),
)
LATENESS_COLUMNS = (
    Column("day", "Día", "date"),
    Column("flow", "Proceso", "flow"),
    Column("fired", "Plazos vencidos", "number"),
    Column("late", "Atendidos con más de 1 s de retraso", "number"),
    Column("median_seconds", "Mediana del retraso (s)", "number"),
    Column("p95_seconds", "Percentil 95 del retraso (s)", "number"),
    Column("max_seconds", "Retraso máximo (s)", "number"),
)
# What the clearinghouse promises itself (ops/: the deadline SLO): a deadline is acted on
# within a second of falling due. No regulation names a figure; this is the operations target.
LATENESS_TARGET_SECONDS = 1.0


def _rounded(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def weekly_chart(
    query: ReportQuery, rows: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> BarChart:
    """Infractions per week, stacked by operator (every week of the period, empty ones too)."""
    monday = query.first_day - timedelta(days=query.first_day.weekday())
    weeks = [monday + timedelta(weeks=n) for n in range((query.last_day - monday).days // 7 + 1)]
    operators = sorted({row["operator"] for row in rows}, key=lambda o: names.get(o, o))
    cells = {(row["operator"], row["week"]): row["infractions"] for row in rows}
    return BarChart(
        title="Incumplimientos por operador y semana",
        description=(
            "Incumplimientos registrados en el libro de cumplimiento cada semana (de lunes a "
            "domingo, hora local), apilados por operador."
        ),
        categories=tuple(f"{w:%d/%m}" for w in weeks),
        series=tuple(
            Series(names.get(o, o), tuple(cells.get((o, w)) for w in weeks)) for o in operators
        ),
        unit="incumplimientos",
        stacked=True,
        counts=True,
    )


def lateness_chart(
    query: ReportQuery, rows: Sequence[Mapping[str, Any]], processes: Mapping[str, str]
) -> BarChart:
    """The 95th percentile of each day's lateness per process (named by its `processes`
    label), against the 1-second target."""
    days = days_between(query.first_day, query.last_day)
    flows = sorted({row["flow"] for row in rows}, key=lambda f: processes.get(f, f))
    cells = {(row["flow"], row["day"]): row["p95_seconds"] for row in rows}
    return BarChart(
        title="Retraso en la atención de los plazos",
        description=(
            "Percentil 95 del retraso, en segundos, entre el vencimiento de cada plazo y el "
            "momento en que el administrador lo atendió, por día y proceso, frente al objetivo "
            "de 1 segundo."
        ),
        categories=tuple(f"{d:%d/%m}" for d in days),
        series=tuple(
            Series(processes.get(flow, flow), tuple(cells.get((flow, d)) for d in days))
            for flow in flows
        ),
        unit="segundos",
        reference=Reference(LATENESS_TARGET_SECONDS, "Objetivo: 1 segundo"),
    )


def oversight_reports(db: Database, jurisdiction: str, flows: Mapping[str, str]) -> list[Report]:
    """The weekly infractions of `jurisdiction`'s operators, and the lateness of the deadlines
    of `flows` (the processes of that jurisdiction, by name, with their Spanish labels), in its
    local time."""
    zone = calendar_for(jurisdiction).timezone

    async def weekly(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        async with db.pool.acquire() as conn:
            # The jurisdiction's operators only: another country's are its regulator's.
            own = [o for o, _ in await operator_list(conn, country=jurisdiction)]
            rows = await conn.fetch(
                """SELECT date_trunc('week', c.observed_at AT TIME ZONE $4)::date AS week,
                          c.operator_id AS operator, count(*) AS infractions,
                          count(*) FILTER (WHERE c.severity = 'leve') AS minor,
                          count(*) FILTER (WHERE c.severity = 'grave') AS serious,
                          count(*) FILTER (WHERE c.severity = 'muy_grave') AS very_serious
                   FROM compliance_records c
                   WHERE c.observed_at >= $1 AND c.observed_at < $2
                     AND ($3::text IS NULL OR c.operator_id = $3)
                     AND c.operator_id = ANY($5::text[])
                   GROUP BY 1, 2 ORDER BY 1, 2""",
                query.start,
                query.end,
                query.operator,
                zone,
                own,
            )
        return [dict(r) for r in rows]

    async def lateness(query: ReportQuery) -> Sequence[Mapping[str, Any]]:
        async with db.pool.acquire() as conn:
            rows = await conn.fetch(
                """WITH fired AS (
                       SELECT (fired_at AT TIME ZONE $3)::date AS day, flow,
                              greatest(extract(epoch FROM fired_at - due_at), 0)::float8 AS s
                       FROM deadlines
                       WHERE fired_at >= $1 AND fired_at < $2 AND flow = ANY($4::text[]))
                   SELECT day, flow, count(*) AS fired,
                          count(*) FILTER (WHERE s > $5) AS late,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS median_seconds,
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95_seconds,
                          max(s) AS max_seconds
                   FROM fired GROUP BY 1, 2 ORDER BY 1, 2""",
                query.start,
                query.end,
                zone,
                sorted(flows),
                LATENESS_TARGET_SECONDS,
            )
        return [_rounded(r) for r in rows]

    return [
        Report(
            slug="cumplimiento-semanal",
            title="Incumplimientos por operador y semana",
            description=(
                "Incumplimientos del libro de cumplimiento por semana (de lunes a domingo, hora "
                "local) y operador, con su gravedad según el régimen de infracciones."
            ),
            columns=WEEKLY_COLUMNS,
            rows=weekly,
            operators_see_own=True,
            jurisdiction=jurisdiction,
            chart=weekly_chart,
        ),
        Report(
            slug="plazos-retraso",
            title="Retraso en la atención de los plazos",
            description=(
                "Cuánto después de su vencimiento atendió el administrador cada plazo (silencio "
                "del cedente, programación, ejecución...), por día y proceso: el registro de "
                "incumplimientos depende de que los plazos se atiendan a tiempo."
            ),
            columns=LATENESS_COLUMNS,
            rows=lateness,
            jurisdiction=jurisdiction,
            # The chart names processes, not operators: their labels, known at start.
            chart=lambda query, rows, _names: lateness_chart(query, rows, flows),
            by_operator=False,
        ),
    ]
