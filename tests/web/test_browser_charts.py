"""The regulator's charts and the public site's layout in a real headless Chromium: each chart is
an accessible SVG whose bars are the figures of the table under it; each jurisdiction's home page
lists its own pages; `main` keeps its padding below the header. One server and one browser for
the module: the traffic is driven once, then every page is read. Screenshots go to
test-artifacts/ at the repository's root."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from npc.app import Clearinghouse
from npc.core.clock import FakeClock
from npc.v1 import portability_pb2
from tests.conftest import Operators
from tests.helpers import advance, advance_to, block, port_request, rid, ts
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.slow  # starts a browser

# Table row -> ((category, series), value) pairs the chart must draw, per report.
Figures = Callable[[list[str]], list[tuple[tuple[str, str], float]]]


def short(day: str) -> str:
    """A table's date (dd/mm/yyyy) as the chart's category (dd/mm)."""
    return day[:5]


CHARTS: dict[str, tuple[str, Figures]] = {
    "portabilidad-respuestas-cedente": (
        "Tiempo de respuesta del operador cedente",
        # donor, owed, answers, in time, silences, median, p95, max
        lambda r: (
            [
                ((r[0], "Mediana"), float(r[5])),
                ((r[0], "Percentil 95"), float(r[6])),
                ((r[0], "Máximo"), float(r[7])),
            ]
            if r[5] != "—"
            else []
        ),
    ),
    "portabilidad-ejecuciones-diarias": (
        "Portabilidades ejecutadas por día y par de operadores",
        lambda r: [((short(r[0]), f"{r[1]} → {r[2]}"), float(r[3]))],
    ),
    "cumplimiento-semanal": (
        "Incumplimientos por operador y semana",
        lambda r: [((short(r[0]), r[1]), float(r[2]))],
    ),
    "plazos-retraso": (
        "Retraso en la atención de los plazos",
        lambda r: [((short(r[0]), r[1]), float(r[5]))],
    ),
}


async def run(action: Callable[[], Any]) -> Any:
    """Selenium blocks; the server under test runs on this event loop."""
    return await asyncio.to_thread(action)


async def drive(app: Clearinghouse, operators: Operators, clock: FakeClock) -> None:
    """movistar answers claro after 2 minutes, entel stays silent (infraction 21, its silence
    handled a minute late); both ports execute when the night's window opens."""
    claro, movistar = operators["claro"], operators["movistar"]
    answered = await claro.call(
        "SubmitPortRequest", port_request(clock, donor="movistar", numbers=[block("940000001")])
    )
    silent = await claro.call(
        "SubmitPortRequest", port_request(clock, donor="entel", numbers=[block("960000001")])
    )
    await advance(app, clock, timedelta(minutes=2))
    await movistar.call(
        "AnswerPortRequest",
        portability_pb2.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=answered.id, accept=True
        ),
    )
    await advance(app, clock, timedelta(minutes=4))  # entel's 5 minutes passed a minute ago
    window_opens = answered.execution_limit.ToDatetime(tzinfo=clock.now().tzinfo)
    window_opens -= timedelta(hours=6)
    for request in (answered, silent):
        await claro.call(
            "SchedulePort",
            portability_pb2.SchedulePortRequest(
                request_id=rid(), port_request_id=request.id, scheduled_at=ts(window_opens)
            ),
        )
    await advance_to(app, clock, window_opens)


def read_chart(driver: Any, slug: str, base: str) -> dict[str, Any]:
    """Open report `slug` and read its chart (title, description, bars) and its table."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/reportes/{slug}")
    svg = driver.find_element(By.CSS_SELECTOR, "figure.chart svg")
    labelled = (svg.get_attribute("aria-labelledby") or "").split()
    bars = {
        (rect.get_attribute("data-category"), rect.get_attribute("data-series")): float(
            rect.get_attribute("data-value")
        )
        for rect in svg.find_elements(By.CSS_SELECTOR, "rect[data-series]")
    }
    rows = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
    ]
    driver.execute_script("arguments[0].scrollIntoView()", svg)
    driver.save_screenshot(str(ARTIFACTS / f"grafico-{slug}.png"))
    return {
        "role": svg.get_attribute("role"),
        "title": svg.find_element(By.TAG_NAME, "title").get_attribute("textContent"),
        "desc": svg.find_element(By.TAG_NAME, "desc").get_attribute("textContent"),
        "labelled": [driver.find_element(By.ID, name).tag_name for name in labelled],
        "bars": bars,
        "rows": rows,
        "width": driver.execute_script("return document.documentElement.scrollWidth"),
    }


async def test_the_regulators_charts_home_pages_and_layout_in_the_browser(
    app: Clearinghouse, operators: Operators, clock: FakeClock, chrome: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = chrome
    base = f"http://127.0.0.1:{app.http_port}"
    ARTIFACTS.mkdir(exist_ok=True)
    await drive(app, operators, clock)

    def home(path: str) -> dict[str, Any]:
        driver.get(base + path)
        main = driver.find_element(By.TAG_NAME, "main")
        header = driver.find_element(By.CSS_SELECTOR, "header.site")
        heading = driver.find_element(By.TAG_NAME, "h1")
        driver.save_screenshot(str(ARTIFACTS / f"inicio{path.replace('/', '-')}.png"))
        return {
            "links": [a.text for a in driver.find_elements(By.CSS_SELECTOR, "main .cards a")],
            "nav": [a.text for a in driver.find_elements(By.CSS_SELECTOR, "nav a")],
            "brand": driver.find_element(By.CSS_SELECTOR, "a.brand").get_attribute("href"),
            "masthead": driver.find_element(By.CSS_SELECTOR, "a.brand").text,
            "footer": driver.find_element(By.CSS_SELECTOR, "footer.site").text,
            "padding": main.value_of_css_property("padding-top"),
            "gap": heading.rect["y"] - (header.rect["y"] + header.rect["height"]),
        }

    peru = await run(lambda: home("/"))
    assert peru["links"] == [
        "Consulte el estado de su portabilidad",
        *[link for link in peru["links"][1:] if "PQR" not in link],
    ]
    assert "Estado de mi PQR" not in peru["nav"] and "Estado de mi portabilidad" in peru["nav"]
    # main's own padding (1.5rem), not the .wrap shorthand's 0: the heading clears the header.
    assert peru["padding"] == "24px"
    assert peru["gap"] >= 24
    colombia = await run(lambda: home("/co"))
    assert colombia["links"] == ["Consulte el estado de su PQR"]
    assert "Estado de mi portabilidad" not in colombia["nav"]
    assert (peru["brand"], colombia["brand"]) == (f"{base}/", f"{base}/co")
    # Colombia's pages are the PQR service: no portability in its header or footer.
    assert (peru["masthead"], colombia["masthead"]) == ("Portabilidad numérica", "Consulta de PQR")
    assert "portabilidad" not in colombia["footer"].lower() and "(PQR)" in colombia["footer"]

    credentials = base64.b64encode(b"osiptel:dev-token-osiptel").decode()
    await run(lambda: driver.execute_cdp_cmd("Network.enable", {}))
    await run(
        lambda: driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders",
            {"headers": {"Authorization": f"Basic {credentials}"}},
        )
    )
    try:
        seen = {slug: await asyncio.to_thread(read_chart, driver, slug, base) for slug in CHARTS}
    finally:
        await run(lambda: driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}}))

    for slug, (title, figures) in CHARTS.items():
        chart = seen[slug]
        assert (chart["role"], chart["title"], chart["labelled"]) == (
            "img",
            title,
            ["title", "desc"],
        )
        assert chart["desc"]
        expected = dict(pair for row in chart["rows"] for pair in figures(row))
        assert expected, f"{slug}: nothing to draw"
        assert chart["bars"] == expected, slug
        assert chart["width"] <= 1200  # nothing scrolls sideways
    # The figures themselves, as the page names the operators.
    answers = {row[0]: row[1:5] for row in seen["portabilidad-respuestas-cedente"]["rows"]}
    assert answers["Telefónica del Perú (Movistar)"] == ["1", "1", "1", "0"]
    assert (
        seen["portabilidad-respuestas-cedente"]["bars"][
            ("Telefónica del Perú (Movistar)", "Mediana")
        ]
        == 120.0
    )
    assert answers["Entel Perú"] == ["1", "0", "0", "1"]
    weekly = seen["cumplimiento-semanal"]["rows"]
    assert [(r[0], r[1], r[2]) for r in weekly] == [("23/11/2026", "Entel Perú", "1")]
    lateness = {(row[0], row[1]): row for row in seen["plazos-retraso"]["rows"]}
    # entel's silence was handled a minute late (the clock jumped past it); the ports on time.
    # The page names processes in Spanish (the chart's series too: compared above).
    assert float(lateness[("23/11/2026", "Portabilidad numérica")][6]) == 60.0
    assert float(lateness[("24/11/2026", "Portabilidad numérica")][6]) == 0.0
