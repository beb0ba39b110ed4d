"""The SVG bar-chart renderer, as pure functions: axis scales, escaping, accessibility."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from npc.web.charts import BarChart, Reference, Series, nice_ceiling, render_bar_chart

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("value", "counts", "expected"),
    [
        (0, False, (1.0, 0.25)),
        (0, True, (1.0, 1.0)),
        (2, True, (2.0, 1.0)),  # no half a port on the axis
        (2, False, (2.0, 0.5)),
        (300, False, (300.0, 100.0)),  # the donor's 5 minutes is the top tick
        (301, False, (400.0, 100.0)),
        (60, False, (60.0, 20.0)),
        (7, True, (8.0, 2.0)),
    ],
)
def test_the_axis_tops_at_a_round_tick_above_the_highest_value(
    value: float, counts: bool, expected: tuple[float, float]
) -> None:
    assert nice_ceiling(value, counts=counts) == expected


def test_a_chart_is_accessible_escaped_and_carries_its_figures() -> None:
    chart = BarChart(
        title="Tiempo <de> respuesta",
        description="Mediana & máximo",
        categories=("A&B <Perú>", "Entel"),
        series=(Series("Mediana", (120.0, None)), Series("Máximo", (290.5, 10.0))),
        unit="segundos",
        reference=Reference(300, "Plazo: 5 minutos"),
    )
    svg = ET.fromstring(str(render_bar_chart(chart)))  # well-formed XML: names are escaped
    assert svg.get("role") == "img"
    ids = (svg.get("aria-labelledby") or "").split()
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert [title.get("id"), desc.get("id")] == ids
    assert (title.text, desc.text) == ("Tiempo <de> respuesta", "Mediana & máximo")
    bars = {
        (r.get("data-category"), r.get("data-series")): float(r.get("data-value") or "nan")
        for r in svg.iter(f"{SVG}rect")
        if r.get("data-series")
    }
    # A missing value draws nothing; every other one is a bar with its figure.
    assert bars == {
        ("A&B <Perú>", "Mediana"): 120.0,
        ("A&B <Perú>", "Máximo"): 290.5,
        ("Entel", "Máximo"): 10.0,
    }
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"A&B <Perú>", "Entel", "Mediana", "Máximo", "Plazo: 5 minutos", "segundos"} <= set(
        texts
    )
    reference = next(line for line in svg.iter(f"{SVG}line") if line.get("class") == "reference")
    heights = {k: float(r.get("height") or 0) for k, r in _rects(svg).items()}
    # 290.5 s is drawn just under the 300 s line, on the same scale.
    assert heights[("A&B <Perú>", "Máximo")] == pytest.approx(260 * 290.5 / 300, abs=0.1)
    assert float(reference.get("y1") or 0) == pytest.approx(16.0)
    assert not re.search(r"style=|<script", str(render_bar_chart(chart)))  # the site's CSP


def _rects(svg: ET.Element) -> dict[tuple[str | None, str | None], ET.Element]:
    return {
        (r.get("data-category"), r.get("data-series")): r
        for r in svg.iter(f"{SVG}rect")
        if r.get("data-series")
    }


def test_stacked_series_share_one_bar_per_category() -> None:
    chart = BarChart(
        title="Portabilidades",
        description="Por día",
        categories=("01/11",),
        series=(Series("a → b", (1.0,)), Series("c → d", (3.0,))),
        unit="portabilidades",
        stacked=True,
        counts=True,
    )
    rects = _rects(ET.fromstring(str(render_bar_chart(chart))))
    first, second = rects[("01/11", "a → b")], rects[("01/11", "c → d")]
    assert first.get("x") == second.get("x")
    # The second sits on the first: its bottom is the first's top.
    assert float(second.get("y") or 0) + float(second.get("height") or 0) == pytest.approx(
        float(first.get("y") or 0)
    )


def test_thinned_labels_keep_the_latest_category() -> None:
    days = tuple(f"{d:02}/11" for d in range(1, 25))  # 24 days: every other label
    chart = BarChart(
        title="Portabilidades",
        description="Por día",
        categories=days,
        series=(Series("a → b", (None,) * 23 + (1.0,)),),
        unit="portabilidades",
        counts=True,
    )
    svg = ET.fromstring(str(render_bar_chart(chart)))
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.text in days]
    assert labels == list(days[1::2])  # 02/11 ... 24/11: the bar's day is named
