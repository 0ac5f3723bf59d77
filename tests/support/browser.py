"""Headless Chromium (Debian's `chromium` and `chromium-driver`) driven through Selenium.

Where CI runs (CI is set) a missing browser is a failure, not a skip: .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LAMBENCH_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def require_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    message = "headless Chromium not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium(width: int = 1400, height: int = 1600) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--allow-file-access-from-files",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER or ""))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_plots(driver, timeout: float = 30.0) -> list[str]:  # noqa: ANN001 (selenium's driver)
    """Ids of the page's plot containers, once every one of them has drawn its SVG."""
    from selenium.webdriver.support.ui import WebDriverWait

    ids = driver.execute_script("return Array.from(document.querySelectorAll('.plot')).map(p => p.id)")
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('.plot')).every("
            "p => p.getAttribute('data-rendered') === 'true' && p.querySelector('svg.main-svg'))"
        )
    )
    return ids


def severe_console_errors(driver) -> list[str]:  # noqa: ANN001
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, name: str) -> Path:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    driver.save_screenshot(str(target))
    return target
