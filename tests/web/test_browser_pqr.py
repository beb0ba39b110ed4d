"""The PQR status page in a real headless Chromium: a user types their CUN and reads the
regulated sentence of art. 2.1.5.14; an unknown CUN gets the generic answer. Screenshots go to
test-artifacts/ at the repository's root."""

from __future__ import annotations

import pytest

from tests.flows.pqr.conftest import co, filing
from tests.web.test_browser import click_and_wait, run, screenshot

pytestmark = pytest.mark.slow  # starts processes

__all__ = ["co"]  # the Colombian providers' fixture, shared with the flow's own tests


def type_cun_and_submit(driver, cun: str) -> str:
    """Type the CUN as a person would and press the button; return the page's text."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "campo-cun")
    field.clear()
    field.send_keys(cun)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.lookup button[type=submit]"))
    return driver.find_element(By.TAG_NAME, "body").text


async def test_a_user_checks_their_pqr_by_cun_in_the_browser(app, co, chrome):
    from selenium.webdriver.common.by import By

    driver = chrome
    base = f"http://127.0.0.1:{app.http_port}"
    filed = await co["claro-co"]("FilePqr", filing())

    def open_form() -> str:
        driver.get(base + "/co")  # the Colombian home page: Peru's does not list it
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Estado de mi PQR"))
        return driver.find_element(By.CSS_SELECTOR, "label[for=campo-cun]").text

    assert await run(open_form) == "Código Único Numérico (CUN)"

    def look_up() -> tuple[str, bool, str]:
        text = type_cun_and_submit(driver, filed.cun)
        sentence = driver.find_element(By.CSS_SELECTOR, ".status .explanation")
        return text, sentence.is_displayed(), sentence.text

    page, visible, sentence = await run(look_up)
    assert f"Su PQR con CUN {filed.cun}" in page
    assert "Estado: En análisis por parte del proveedor" in page
    assert visible
    assert sentence == filed.status_sentence
    assert sentence.startswith(
        f"Señor usuario, le informamos que su queja, radicada bajo el Código Único Numérico -CUN- "
        f"{filed.cun} en fecha 23/11/2026, se encuentra en análisis por parte del proveedor"
    )
    assert sentence.endswith("a más tardar el día 15/12/2026.")
    assert "Claro Colombia" in page
    await run(lambda: screenshot(driver, "pqr-estado"))

    def on_a_phone() -> tuple[int, bool]:
        driver.set_window_size(390, 844)
        try:
            screenshot(driver, "pqr-estado-movil")
            width = int(driver.execute_script("return document.documentElement.scrollWidth"))
            shown = driver.find_element(By.CSS_SELECTOR, ".status .explanation").is_displayed()
            return width, shown
        finally:
            driver.set_window_size(1200, 900)

    width, shown = await run(on_a_phone)
    assert width <= 390 and shown

    def unknown() -> str:
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Hacer otra consulta"))
        return type_cun_and_submit(driver, "1999999999")

    stranger = await run(unknown)
    assert "No encontramos una petición, queja o recurso con ese CUN." in stranger
    assert "Claro Colombia" not in stranger and "Señor usuario" not in stranger
    await run(lambda: screenshot(driver, "pqr-no-encontrada"))
