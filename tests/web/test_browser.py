"""The pages in a real headless Chromium: a subscriber looks up their port request, a stranger
gets the generic answer, the rate limit stops a flood, the regulator reads and downloads the
compliance ledger, and an SGU subscriber confirms their e-mail and checks their problem.
Screenshots go to test-artifacts/ at the repository's root."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.helpers import advance, block, port_request, subscriber
from tests.web.conftest import ARTIFACTS, LOOKUPS_PER_MINUTE

pytestmark = pytest.mark.slow  # starts processes

T = TypeVar("T")


async def run(action: Callable[[], T]) -> T:
    """Selenium blocks; the server under test runs on this event loop, so drive it from a thread."""
    return await asyncio.to_thread(action)


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def fill_and_submit(driver: Any, code: str, document: str) -> str:
    """Type into the form as a person would and press the button; return the page's text."""
    from selenium.webdriver.common.by import By

    for field, value in (("campo-codigo", code), ("campo-documento", document)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.lookup button[type=submit]"))
    return driver.find_element(By.TAG_NAME, "body").text


def click_and_wait(driver: Any, element: Any) -> None:
    """Click, then wait until the next page has replaced this one and finished loading.

    The old page is marked with a script variable that the next document does not have. Asking an
    element of the old page whether it went stale races the navigation inside chromedriver (it can
    answer "unhandled inspector error"), so errors while the page changes count as "not yet".
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    driver.execute_script("window.__npcPreviousPage = true;")
    element.click()

    def next_page_loaded(d: Any) -> bool:
        return bool(
            d.execute_script(
                "return window.__npcPreviousPage === undefined"
                " && document.readyState === 'complete';"
            )
        )

    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(next_page_loaded)


async def test_subscriber_checks_their_request_in_the_browser(app, operators, clock, chrome):
    from selenium.webdriver.common.by import By

    driver = chrome
    base = f"http://127.0.0.1:{app.http_port}"
    filed = await operators["claro"].call(
        "SubmitPortRequest",
        port_request(clock, numbers=[block("940000001")], subscriber=subscriber("44556677")),
    )

    def open_form() -> str:
        driver.get(base + "/")
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Estado de mi portabilidad"))
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
        label = driver.find_element(By.CSS_SELECTOR, "label[for=campo-codigo]").text
        return label

    assert await run(open_form) == "Número de solicitud de portabilidad"

    found = await run(lambda: fill_and_submit(driver, filed.id.lower(), "44556677"))
    assert f"Solicitud de portabilidad {filed.id}" in found
    assert "Estado: En evaluación" in found
    assert "Telefónica del Perú (Movistar)" in found
    await run(lambda: screenshot(driver, "portabilidad-estado"))

    def on_a_phone() -> int:
        driver.set_window_size(390, 844)
        try:
            screenshot(driver, "portabilidad-estado-movil")
            # The layout fits the screen: nothing scrolls sideways.
            return int(driver.execute_script("return document.documentElement.scrollWidth"))
        finally:
            driver.set_window_size(1200, 900)

    assert await run(on_a_phone) <= 390

    def wrong_document() -> str:
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Hacer otra consulta"))
        return fill_and_submit(driver, filed.id, "87654321")

    stranger = await run(wrong_document)
    assert "No encontramos una solicitud con esos datos." in stranger
    assert "En evaluación" not in stranger
    await run(lambda: screenshot(driver, "portabilidad-no-encontrada"))

    invalid = await run(lambda: fill_and_submit(driver, "<b>SP1</b>", "44556677"))
    assert "Revise los datos ingresados" in invalid
    # The markup typed comes back as the field's literal value, never as an element.
    echoed = await run(lambda: driver.find_element(By.ID, "campo-codigo").get_attribute("value"))
    assert echoed == "<B>SP1</B>"
    assert await run(lambda: driver.find_elements(By.CSS_SELECTOR, "main b")) == []

    # Two lookups counted so far, plus the invalid one: the rest of the minute's allowance.
    for _ in range(LOOKUPS_PER_MINUTE - 3):
        await run(lambda: fill_and_submit(driver, filed.id, "00000000"))
    refused = await run(lambda: fill_and_submit(driver, filed.id, "44556677"))
    assert "Demasiadas consultas" in refused
    assert "espere 60 segundos" in refused
    await run(lambda: screenshot(driver, "portabilidad-demasiadas-consultas"))

    await advance(app, clock, timedelta(minutes=1))

    def after_the_window() -> str:
        driver.get(base + "/portabilidad/consulta")
        return fill_and_submit(driver, filed.id, "44556677")

    assert "Estado: En evaluación" in await run(after_the_window)


async def test_regulator_reads_and_downloads_the_compliance_ledger(app, operators, clock, chrome):
    from selenium.webdriver.common.by import By

    driver = chrome
    base = f"http://127.0.0.1:{app.http_port}"
    filed = await operators["claro"].call(
        "SubmitPortRequest", port_request(clock, numbers=[block("940000002")])
    )
    await advance(app, clock, timedelta(minutes=5))  # the donor stays silent: infraction 21

    # (Without a token the browser gets 401 and asks for one: tested over plain HTTP.)
    credentials = base64.b64encode(b"osiptel:dev-token-osiptel").decode()

    def as_regulator() -> list[list[str]]:
        # What the browser's own Basic-authentication dialog would send.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders",
            {"headers": {"Authorization": f"Basic {credentials}"}},
        )
        driver.get(base + "/reportes")
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Registro de incumplimientos"))
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.filter button"))
        rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    table = await run(as_regulator)
    assert len(table) == 1
    assert table[0][:6] == [
        "23/11/2026 10:05:00",
        "Telefónica del Perú (Movistar)",  # the page names operators; CSV and JSON give the id
        "Portabilidad numérica",  # the process's name; CSV and JSON give the flow's key
        filed.id,
        "request_donor_answer",
        "norma del regulador",
    ]
    assert (table[0][6], table[0][8]) == ("21", "grave")
    await run(lambda: screenshot(driver, "reporte-cumplimiento"))

    downloads: Path = driver.downloads

    def download_csv() -> list[Path]:
        for old in downloads.glob("*"):
            old.unlink()
        driver.find_element(By.ID, "descargar-csv").click()
        for _ in range(100):
            done = list(downloads.glob("*.csv"))
            if done and not list(downloads.glob("*.crdownload")):
                return done
            time.sleep(0.1)
        return []

    done = await run(download_csv)
    assert [p.name for p in done] == ["cumplimiento_todos_2026-11-01_2026-11-23.csv"]
    rows = list(csv.DictReader(io.StringIO(done[0].read_text(encoding="utf-8-sig"))))
    assert [(r["operator"], r["case_id"], r["rule"], r["infraction"]) for r in rows] == [
        ("movistar", filed.id, "request_donor_answer", "21")
    ]
    await run(lambda: driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}}))


async def test_subscriber_confirms_the_email_and_checks_the_sgu_problem(
    app, operators, clock, chrome
):
    from selenium.webdriver.common.by import By

    from npc.v1 import common_pb2, sgu_pb2
    from tests.helpers import rid

    driver = chrome
    base = f"http://127.0.0.1:{app.http_port}"
    osiptel = operators["osiptel"]
    problem = await osiptel.sgu.RegisterProblem(
        sgu_pb2.RegisterProblemRequest(
            request_id=rid(),
            channel=sgu_pb2.CHANNEL_WEB,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani",
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
                ),
                email="rosa@example.pe",
            ),
            number="940000001",
            subcategory="REC-01",
            description="Recargué 10 soles el lunes y no se acreditaron.",
        ),
        metadata=osiptel.metadata,
    )
    async with app.core.db.pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM notifications WHERE case_id = $1 AND channel = 'email'", problem.id
        )
    url = re.search(r"https?://\S+", body)
    assert url is not None, body
    link = urlsplit(url.group(0))

    def follow_the_link() -> str:
        driver.get(f"{base}{link.path}?{link.query}")
        screenshot(driver, "sgu-confirmar-correo")
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.lookup button"))
        return driver.find_element(By.TAG_NAME, "body").text

    confirmed = await run(follow_the_link)
    assert "Gracias: su correo electrónico está confirmado." in confirmed
    assert "Estado: En atención por su empresa operadora" in confirmed

    def look_it_up() -> str:
        driver.get(base + "/")
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Estado de mi problema"))
        return fill_and_submit(driver, problem.id.lower(), "44556677")

    found = await run(look_it_up)
    assert f"Problema {problem.id}" in found
    assert "Estado: En atención por su empresa operadora" in found
    assert "Telefónica del Perú (Movistar)" in found
    assert "Recarga no acreditada (REC-01)" in found
    assert "Plazo de respuesta\nmartes 24 de noviembre de 2026, 10:00" in found
    await run(lambda: screenshot(driver, "sgu-estado"))

    def wrong_document() -> str:
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Hacer otra consulta"))
        return fill_and_submit(driver, problem.id, "87654321")

    stranger = await run(wrong_document)
    assert "No encontramos un problema registrado con esos datos." in stranger
    assert "En atención" not in stranger
