"""The task pages' pictures (#20): parity, efficiency curves, MD stability, property curves.

The arithmetic of each view is checked on records whose answer is known; then a real campaign (dummy
and EMT on a force-field set and every task with a view, run in this process) is published and each
view opened from disk in Chromium: every plot has its traces, a property menu switches items, and a
screenshot of each view goes to test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lambench_core.campaign import CampaignSpec, execute_job, plan_campaign
from lambench_core.report import views
from lambench_core.report.publish import SITE, aggregate_campaign, publish_campaign
from lambench_core.report.site import slug
from lambench_core.results import ResultStore
from tests.support.browser import chromium, screenshot, severe_console_errors, wait_for_plots

HOSTILE = "<img src=x onerror=window.__pwned=1>"


def frame(item: str, counts: dict[str, int], e_ref: float, e_pred: float) -> dict:
    return {"item": item, "counts": counts, "n_atoms": sum(counts.values()), "e_ref": e_ref, "e_pred": e_pred}


def test_parity_removes_the_per_element_bias_the_scores_remove():
    # Predictions off by a per-element constant (Cu +2 eV, O −1 eV) are perfect after bias removal.
    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        counts = {"Cu": int(rng.integers(1, 5)), "O": int(rng.integers(0, 3))}
        e_ref = -3.5 * counts["Cu"] - 4.0 * counts["O"] + float(rng.normal(0, 0.1))
        records.append(frame(f"f{i}", counts, e_ref, e_ref + 2.0 * counts["Cu"] - 1.0 * counts["O"]))
    reference, predicted, names = views.energy_parity(records)
    assert np.allclose(reference, predicted, atol=1e-9) and names == [f"f{i}" for i in range(12)]
    # Both axes are relative to the composition fit: the spread is the 0.1 eV noise, not −3.5 eV/atom.
    assert max(abs(x) for x in reference) < 0.5
    # One frame off by 0.3 eV moves that frame only.
    records[3]["e_pred"] += 0.3
    reference, predicted, _ = views.energy_parity(records)
    errors = np.subtract(predicted, reference)
    assert np.argmax(np.abs(errors)) == 3


def test_force_field_records_carry_parity_pairs_of_the_scored_components():
    from ase.build import bulk

    from lambench_core.data.frame_scoring import PARITY_FORCE_COMPONENTS, frame_record
    from lambench_core.data.frames import Frame

    atoms = bulk("Cu", cubic=True).repeat((3, 3, 3))  # 108 atoms: 324 components, 24 kept
    rng = np.random.default_rng(1)
    forces = rng.normal(size=(len(atoms), 3))
    virial = rng.normal(size=(3, 3))
    frame = Frame(frame_id="f", atoms=atoms, energy=-100.0, forces=forces, virial=virial)
    predicted = {"energy": -99.0, "forces": forces + 0.1, "virial": virial + 1.08}
    record = frame_record(frame, predicted, 0.0)
    pairs = np.array(record["force_parity"])
    assert len(pairs) == PARITY_FORCE_COMPONENTS and np.allclose(pairs[:, 1] - pairs[:, 0], 0.1, atol=2e-4)
    assert pairs[0, 0] == round(forces.ravel()[0], 4) and pairs[-1, 0] == round(forces.ravel()[-1], 4)
    virials = np.array(record["virial_parity"])
    assert virials.shape == (9, 2) and np.allclose(virials[:, 1] - virials[:, 0], 0.01, atol=2e-4)


def test_survival_curve_steps_down_at_each_failure():
    runs = [
        {"status": "completed", "steps_requested": 200, "steps_completed": 200, "simulated_time_ps": 0.2},
        {"status": "failed", "steps_requested": 200, "steps_completed": 50, "simulated_time_ps": 0.05},
        {"status": "completed", "steps_requested": 200, "steps_completed": 200, "simulated_time_ps": 0.2},
        {"status": "failed", "steps_requested": 200, "steps_completed": 100, "simulated_time_ps": 0.1},
    ]
    times, alive = views.survival_curve(runs)
    assert times == [0.0, 0.05, 0.05, 0.1, 0.1, 0.2]
    assert alive == [1.0, 1.0, 0.75, 0.75, 0.5, 0.5]
    assert views.survival_curve([]) == ([], [])


def test_element_errors_pool_the_frames_that_contain_each_element():
    records = [
        frame("a", {"Cu": 2}, -7.0, -7.0) | {"force_sse": 4.0, "force_n": 6},
        frame("b", {"Cu": 1, "O": 1}, -8.0, -8.0) | {"force_sse": 2.0, "force_n": 6},
    ]
    errors = views.element_errors([records])
    assert errors["Cu"].force_rmse == pytest.approx((6.0 / 12) ** 0.5) and errors["Cu"].frames == 2
    assert errors["O"].force_rmse == pytest.approx((2.0 / 6) ** 0.5) and errors["O"].frames == 1


def test_the_periodic_table_places_every_element_once():
    from ase.data import chemical_symbols

    positions = {views.element_position(z): chemical_symbols[z] for z in range(1, 87)}
    assert len(positions) == 86
    assert positions[1, 1] == "H" and positions[1, 18] == "He" and positions[2, 13] == "B"
    assert positions[4, 11] == "Cu" and positions[6, 4] == "Hf" and positions[9, 3] == "La"
    assert positions[6, 18] == "Rn" and positions[9, 17] == "Lu"


def test_the_reference_eos_has_its_minimum_at_v0():
    grid = np.linspace(14.0, 20.0, 601)
    energies = views._birch_murnaghan(grid, 17.0, 100.0, 4.5)
    assert grid[np.argmin(energies)] == pytest.approx(17.0, abs=0.01) and energies.min() == pytest.approx(0, abs=1e-9)


def test_names_inside_the_plots_are_escaped_for_plotly():
    records = {HOSTILE: [frame(HOSTILE, {"Cu": 1}, -3.0, -2.9), frame("b", {"Cu": 2}, -7.0, -6.9)]}
    view = views.parity_view(None, records)  # type: ignore[arg-type]
    text = json.dumps(view.figures)
    assert "<img" not in text and "&lt;img" in text
    assert "&lt;img" in views.render_views([views.View(HOSTILE, HOSTILE, HOSTILE)]).replace(HOSTILE, "")


# ---------------------------------------------------------------------------------------------------
# A real campaign, published and opened in a browser

TASKS = ["force_field/cu_bulk", "efficiency", "md_stability", "eos_dcdft", "s22", "torsion_scans", "phonons_phonopy"]
EXPECTED_VIEWS = {
    "cu_bulk": ("parity", ["parity-0", "parity-force_parity", "parity-virial_parity"]),
    "efficiency": ("efficiency-curve", ["efficiency-speed", "efficiency-memory"]),
    "md_stability": ("md-survival", ["md-survival", "md-drift"]),
    "eos_dcdft": ("property-curves", ["eos-curves"]),
    "s22": ("property-curves", ["s22-curves"]),
    "torsion_scans": ("property-curves", ["torsion-profiles"]),
    "phonons_phonopy": ("property-curves", ["phonon-parity"]),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("views")
    spec = CampaignSpec(
        campaign_id="views", models=["dummy", "emt"], tasks=TASKS, store=str(root / "store"), bootstrap_replicates=20
    )
    store = ResultStore.open(spec.store)
    plan = plan_campaign(spec, store)
    for job in plan.to_run:
        store.put(execute_job(spec, job))
    aggregate_campaign(spec, plan.all_jobs, store)
    publish_campaign(spec, store, root / SITE)
    return root / SITE


@pytest.mark.slow
def test_every_view_opens_from_disk_with_its_traces(published):
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        for benchmark, (view, plots) in EXPECTED_VIEWS.items():
            page = published / "tasks" / f"{slug(benchmark)}.html"
            assert f'data-view="{view}"' in page.read_text(), benchmark
            driver.get(page.as_uri())
            drawn = wait_for_plots(driver)
            assert set(plots) <= set(drawn), (benchmark, drawn)
            traces = driver.execute_script(
                "return Object.fromEntries(Array.from(document.querySelectorAll('.plot')).map(p => [p.id, p.data.length]))"
            )
            assert all(traces[plot] >= 1 for plot in plots), (benchmark, traces)
            assert severe_console_errors(driver) == []
            section = driver.find_element(By.CSS_SELECTOR, f"section[data-view='{view}']")
            driver.execute_script("arguments[0].scrollIntoView()", section)
            screenshot(driver, f"view-{view}-{benchmark}.png")

        # The element map on a model page: Cu coloured; clicking it keeps only the sets containing Cu.
        driver.get((published / "models" / f"{slug('emt')}.html").as_uri())
        cells = driver.find_elements(By.CSS_SELECTOR, "section[data-view='element-map'] td.scored")
        assert [c.get_attribute("data-element") for c in cells] == ["Cu"]
        assert cells[0].value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "")
        rows = "return Array.from(document.querySelectorAll('table.sortable-table tbody tr')).filter(r => r.offsetParent !== null).length"
        everything = driver.execute_script(rows)
        cells[0].click()
        assert driver.execute_script(rows) == 1 < everything
        screenshot(driver, "view-element-map.png")
        cells[0].click()
        assert driver.execute_script(rows) == everything

        # A property menu shows one item at a time; choosing another item shows its traces instead.
        driver.get((published / "tasks" / f"{slug('s22')}.html").as_uri())
        wait_for_plots(driver)
        visible = "return document.getElementById('s22-curves').data.map(t => t.visible)"
        before = driver.execute_script(visible)
        assert 0 < sum(before) < len(before)
        driver.execute_script(
            "var p = document.getElementById('s22-curves');"
            "var b = p.layout.updatemenus[0].buttons[1];"
            "Plotly.update(p, b.args[0], b.args[1]);"
        )
        after = driver.execute_script(visible)
        assert after != before and sum(after) > 0


@pytest.fixture(scope="module")
def crossing_site(tmp_path_factory) -> Path:
    """The synthetic board with alpha made poor on molecules (0.9) and good on catalysis (0.2): its
    M_FF (0.55) ranks it behind the hostile-named model (0.5), but catalysis alone ranks it first."""
    from lambench_core.metrics.table import table_to_parquet
    from lambench_core.report.leaderboard import leaderboard_from_table
    from lambench_core.report.publish import site_files, write_folder
    from tests.support.site_tables import synthetic_table

    table = synthetic_table()
    rows = [
        row.model_copy(update={"value": 0.9 * row.dummy, "replicates": [0.9 * row.dummy] * 200})
        if row.model == "alpha" and row.benchmark == "mol_set"
        else row
        for row in table.rows
    ]
    table = table.model_copy(update={"rows": rows})
    folder = tmp_path_factory.mktemp("crossing")
    write_folder(site_files(leaderboard_from_table("crossing", table), table_to_parquet(table), b""), folder)
    return folder


def test_weight_sliders_rerank_in_the_browser_and_the_defaults_restore_the_official_ranking(crossing_site):
    from selenium.webdriver.common.by import By

    from tests.support.site_tables import HOSTILE, QUOTED

    reweighted = "return Array.from(document.querySelectorAll('table.reweighted tbody tr')).map(r => r.dataset.model)"
    official = "return Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(r => r.dataset.model)"
    with chromium() as driver:
        driver.get((crossing_site / "index.html").as_uri())
        driver.find_element(By.CSS_SELECTOR, "section[data-view='weights']")
        assert driver.execute_script(official) == [HOSTILE, "alpha", QUOTED]
        assert driver.execute_script(reweighted) == [HOSTILE, "alpha", QUOTED]  # the defaults are official
        assert driver.execute_script("return typeof window.__pwned") == "undefined"

        molecules = driver.find_element(By.CSS_SELECTOR, "input[data-weight='ff'][data-domain='molecules']")
        driver.execute_script("arguments[0].value = '0'; arguments[0].dispatchEvent(new Event('input'))", molecules)
        assert driver.execute_script(reweighted) == ["alpha", HOSTILE, QUOTED]
        section = driver.find_element(By.CSS_SELECTOR, "section[data-view='weights']")
        driver.execute_script("arguments[0].scrollIntoView()", section)
        screenshot(driver, "view-weights.png")

        driver.find_element(By.ID, "weights-reset").click()
        assert driver.execute_script(reweighted) == [HOSTILE, "alpha", QUOTED]
        assert severe_console_errors(driver) == []


def test_head_to_head_shows_paired_differences_and_which_are_beyond_noise(crossing_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support.site_tables import HOSTILE

    rows = (
        "return Array.from(document.querySelectorAll('table.head-to-head tbody tr'))"
        ".filter(r => r.offsetParent !== null)"
        ".map(r => [r.dataset.benchmark, r.dataset.metric, r.lastChild.textContent])"
    )
    with chromium() as driver:
        driver.get((crossing_site / "index.html").as_uri())
        driver.find_element(By.CSS_SELECTOR, "section[data-view='head-to-head']")
        Select(driver.find_element(By.ID, "h2h-a")).select_by_visible_text("alpha")
        Select(driver.find_element(By.ID, "h2h-b")).select_by_visible_text(HOSTILE)
        verdicts = {(b, m): v for b, m, v in driver.execute_script(rows)}
        # alpha is 0.9 × dummy on molecules and 0.2 × dummy on catalysis; the other model 0.5 on both.
        assert verdicts["mol_set", "force_rmse"] == "B better"
        assert verdicts["cat_set", "force_rmse"] == "A better"
        assert verdicts["efficiency", "m_e"] == "A better"  # higher M_E is better: alpha 5 against 2
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        section = driver.find_element(By.CSS_SELECTOR, "section[data-view='head-to-head']")
        driver.execute_script("arguments[0].scrollIntoView()", section)
        screenshot(driver, "view-head-to-head.png")
        # The same model on both sides: every difference is 0, none beyond noise; the filter hides all.
        Select(driver.find_element(By.ID, "h2h-b")).select_by_visible_text("alpha")
        assert {v for _, _, v in driver.execute_script(rows)} == {"within noise"}
        driver.find_element(By.ID, "h2h-beyond").click()
        assert driver.execute_script(rows) == []
        assert severe_console_errors(driver) == []


def test_the_site_rebuilds_from_the_exports_alone(published, tmp_path):
    """`lambench aggregate results.json --records records.parquet --out DIR` draws the same views."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "rebuilt"
    command = [sys.executable, "-m", "workflows.cli", "aggregate", str(published / "metrics.parquet"),
               "--records", str(published / "records.parquet"), "--out", str(out)]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for benchmark, (view, plots) in EXPECTED_VIEWS.items():
        page = (out / "tasks" / f"{slug(benchmark)}.html").read_text()
        assert f'data-view="{view}"' in page, benchmark
        assert all(f"id=\"{plot}\"" in page for plot in plots), benchmark
    assert 'data-view="element-map"' in (out / "models" / f"{slug('emt')}.html").read_text()

    bad = tmp_path / "not-records.parquet"
    bad.write_bytes(b"PAR1 not really")
    done = subprocess.run(command[:6] + [str(bad), "--out", str(out)], cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"lambench: error: --records: {bad}: not a readable Parquet file"), done.stderr
