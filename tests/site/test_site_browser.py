"""The static site in a real browser: opened from disk (file://), sorted, plots drawn, nothing
injected. A screenshot of each page visited is kept in test-artifacts/."""

from __future__ import annotations

import pytest

from lambench_core.metrics.table import table_to_parquet
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.publish import site_files, write_folder
from tests.support.browser import chromium, screenshot, severe_console_errors, wait_for_plots
from tests.support.site_tables import HOSTILE, MODELS, SCALE, synthetic_table


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    table = synthetic_table()
    write_folder(site_files(leaderboard_from_table("synthetic", table), table_to_parquet(table), b""), folder)
    return folder


def table_models(driver) -> list[str]:  # noqa: ANN001
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.dataset.model)"
    )


def test_leaderboard_opens_from_disk_sorts_and_draws_every_plot(site):
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        driver.get((site / "index.html").as_uri())
        plots = wait_for_plots(driver)
        assert set(plots) == {"plot-radar", "plot-pareto", "plot-benchmarks"}
        # Ranked by M_FF: alpha (0.2) < hostile (0.5) < quoted (0.8).
        assert table_models(driver) == sorted(MODELS, key=SCALE.get)
        # The hostile name is shown as text and never ran.
        assert HOSTILE in driver.find_element(By.ID, "leaderboard").text
        assert driver.execute_script("return typeof window.__pwned") == "undefined"

        header = next(h for h in driver.find_elements(By.CSS_SELECTOR, "#leaderboard th") if h.text.startswith("M_E"))
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        assert table_models(driver) == sorted(MODELS, key=lambda m: 1.0 / SCALE[m])  # M_E = 1/scale
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        assert table_models(driver) == sorted(MODELS, key=SCALE.get)
        # Each plot drew one trace per model (the radar and bars) or its groups and front (scatter:
        # alpha dominates both others, so it alone is on the front).
        traces = driver.execute_script(
            "return Object.fromEntries(Array.from(document.querySelectorAll('.plot')).map(p => [p.id, p.data.length]))"
        )
        assert traces == {"plot-radar": 3, "plot-pareto": 3, "plot-benchmarks": 3}
        front = driver.execute_script("return document.getElementById('plot-pareto').data[0]")
        assert front["name"] == "on the Pareto front" and front["text"] == ["alpha"]
        assert severe_console_errors(driver) == []
        screenshot(driver, "site-index.png")

        driver.find_element(By.LINK_TEXT, "bulk_moduli").click()
        assert wait_for_plots(driver) == ["plot-task-0"]
        assert "Normalized by the dummy model's values: bulk_modulus_mae = 50 GPa" in driver.page_source
        screenshot(driver, "site-task.png")

        driver.get((site / "index.html").as_uri())
        driver.find_element(By.LINK_TEXT, HOSTILE).click()
        assert driver.title.startswith(f"Model {HOSTILE}")
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        assert severe_console_errors(driver) == []
        screenshot(driver, "site-model.png")
