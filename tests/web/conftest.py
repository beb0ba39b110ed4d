"""Fixtures of the web tests: a small lookup limit, an HTTP session on the app's port, and a
headless Chromium driven by Selenium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from npc.app import Clearinghouse
from npc.config import Settings, WebSettings

LOOKUPS_PER_MINUTE = 5
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with a lookup limit a test can reach quickly."""
    return replace(
        settings,
        web=WebSettings(lookups_per_window=LOOKUPS_PER_MINUTE, lookup_window=timedelta(minutes=1)),
    )


@pytest.fixture
async def http(app: Clearinghouse) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session whose relative URLs go to the app's HTTP port."""
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{app.http_port}") as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_http(module_app: Clearinghouse) -> AsyncIterator[aiohttp.ClientSession]:
    """`http` on the module's shared clearinghouse (`module_app`), for cases that only read."""
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{module_app.http_port}"
    ) as session:
        yield session


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium (Debian's chromium + chromium-driver) for the whole session.

    Skipped only when Chromium is not installed on a developer's machine; in CI (CI=true), where
    `./dev setup` installs it, its absence is a failure.
    """
    found = _chromium()
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium and chromedriver are missing in CI: ./dev setup installs them")
        pytest.skip("chromium/chromedriver not installed (./dev setup installs them)")
    browser, driver_path = found
    # Never let Selenium Manager try to download a browser or a driver.
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,900",
        "--lang=es-PE",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()
