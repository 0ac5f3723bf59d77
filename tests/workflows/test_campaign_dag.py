"""The whole campaign as `lambench run` runs it: a dflow DAG in debug mode on the shipped data.

The leaderboard's numbers are checked against values computed here, independently of the harness:
own predictions, own least-squares bias removal, own normalization.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO / "lambench_core/data/sets/molecules_small/pbe.extxyz"
TASK = "force_field/molecules_small"
MODELS = "dummy,emt,chgnet-0.3.0,mace-mp-0-medium"

pytestmark = pytest.mark.slow


def lambench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *args], capture_output=True, text=True, timeout=900, env=env, cwd=REPO
    )


def bias_corrected_energy_rmse_per_atom(frames, predicted: np.ndarray) -> float:
    elements = sorted({s for atoms in frames for s in atoms.get_chemical_symbols()})
    counts = np.array([[atoms.get_chemical_symbols().count(e) for e in elements] for atoms in frames], float)
    difference = predicted - np.array([atoms.get_potential_energy() for atoms in frames])
    shifts = np.linalg.lstsq(counts, difference, rcond=None)[0]
    residual = (difference - counts @ shifts) / counts.sum(axis=1)
    return float(np.sqrt(np.mean(residual**2)))


def force_rmse(frames, predicted: list[np.ndarray]) -> float:
    errors = np.concatenate([(p - atoms.get_forces()).ravel() for p, atoms in zip(predicted, frames, strict=True)])
    return float(np.sqrt(np.mean(errors**2)))


def independent_predictions(frames, calculator, box: bool):
    energies, forces = [], []
    for atoms in frames:
        copy = atoms.copy()
        if box:
            copy.center(vacuum=15.0)
            copy.pbc = True
        copy.calc = calculator
        energies.append(copy.get_potential_energy())
        forces.append(copy.get_forces())
    return np.array(energies), forces


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("campaign")
    env = dict(os.environ, LAMBENCH_WEIGHTS_DIR=str(workdir / "no-weights"), OMP_NUM_THREADS="1")
    first = lambench("run", "--models", MODELS, "--tasks", TASK, "--workdir", str(workdir), "--workers", "2", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    (run_dir,) = (workdir / "runs").iterdir()
    board = json.loads((run_dir / "site" / "leaderboard.json").read_text())
    return workdir, env, first, run_dir, board


def scores_of(board: dict) -> dict[str, dict]:
    return {scores["model"]: scores for scores in board["scoreboard"]["models"]}


def raw(board: dict, model: str, benchmark: str, metric: str) -> dict:
    return next(
        r for r in board["table"]["rows"] if (r["model"], r["benchmark"], r["metric"]) == (model, benchmark, metric)
    )


def job_of(board: dict, model: str, benchmark: str) -> dict:
    return next(j for j in board["jobs"] if (j["model"], j["benchmark"]) == (model, benchmark))


def test_leaderboard_matches_independent_computation(campaign):
    from ase.calculators.emt import EMT
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    _, _, _, _, board = campaign
    frames = read(FRAMES, index=":")
    reference_forces = np.concatenate([a.get_forces().ravel() for a in frames])
    dummy_e = bias_corrected_energy_rmse_per_atom(frames, np.zeros(len(frames)))
    dummy_f = float(np.sqrt(np.mean(reference_forces**2)))

    rows = scores_of(board)
    chgnet = CHGNetCalculator(CHGNet.load(model_name="0.3.0", verbose=False), use_device="cpu")
    for model, calculator, box in (("emt", EMT(), False), ("chgnet-0.3.0", chgnet, True)):
        energies, forces = independent_predictions(frames, calculator, box)
        e_rmse = bias_corrected_energy_rmse_per_atom(frames, energies)
        f_rmse = force_rmse(frames, forces)
        assert job_of(board, model, "molecules_small")["status"] == "succeeded"
        energy = raw(board, model, "molecules_small", "energy_rmse_per_atom")
        assert energy["value"] == pytest.approx(e_rmse, rel=1e-4)
        assert raw(board, model, "molecules_small", "force_rmse")["value"] == pytest.approx(f_rmse, rel=1e-4)
        m_ff = 0.5 * min(e_rmse / dummy_e, 1) + 0.5 * min(f_rmse / dummy_f, 1)
        assert rows[model]["m_ff"]["value"] == pytest.approx(m_ff, rel=1e-4)
        assert rows[model]["m_ff"]["low"] < rows[model]["m_ff"]["value"] < rows[model]["m_ff"]["high"]
        assert rows[model]["m_ff_partial"] is False

    # Normalized by its own errors on every resample, the dummy scores exactly 1 with no spread.
    assert rows["dummy"]["m_ff"] == pytest.approx({"value": 1.0, "low": 1.0, "high": 1.0})
    assert rows["chgnet-0.3.0"]["m_ff"]["value"] < rows["emt"]["m_ff"]["value"] < 1.0
    shown = board["scoreboard"]["models"]
    # The baselines (dummy, EMT) are reference rows after the contenders: shown, never ranked.
    assert [s["model"] for s in shown if s["rank"] is not None] == ["chgnet-0.3.0"]
    assert [s["model"] for s in shown if s["baseline"]] == ["emt", "dummy"] == [s["model"] for s in shown[-2:]]
    assert all(s["rank"] is None for s in shown if s["baseline"])


def test_a_failing_model_is_shown_and_does_not_sink_the_campaign(campaign):
    workdir, _, first, run_dir, board = campaign
    mace = scores_of(board)["mace-mp-0-medium"]
    assert mace["rank"] is None and mace["m_ff"]["value"] is None
    assert job_of(board, "mace-mp-0-medium", "molecules_small")["status"] == "failed"
    assert "weights not found" in job_of(board, "mace-mp-0-medium", "molecules_small")["error"]
    assert "failed mace-mp-0-medium × force_field/molecules_small: model mace-mp-0-medium: weights not found" in " ".join(first.stdout.split())
    assert "| 1 | chgnet-0.3.0 |" in first.stdout
    page = (run_dir / "site" / "index.html").read_text()
    assert page.count("<tr data-model=") == 4 and "mace-mp-0-medium" in page


def test_the_run_site_opens_in_a_browser_with_every_model_and_interval(campaign):
    from selenium.webdriver.common.by import By

    from tests.support.browser import chromium, screenshot, severe_console_errors, wait_for_plots

    *_, run_dir, board = campaign
    with chromium() as driver:
        driver.get((run_dir / "site" / "index.html").as_uri())
        wait_for_plots(driver)
        rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        assert [r.get_attribute("data-model") for r in rows] == [s["model"] for s in board["scoreboard"]["models"]]
        chgnet = rows[0].text
        low, high = (f"{scores_of(board)['chgnet-0.3.0']['m_ff'][k]:.3f}" for k in ("low", "high"))
        assert f"[{low}, {high}]" in chgnet
        mace = next(r for r in rows if r.get_attribute("data-model") == "mace-mp-0-medium")
        assert "failed" in mace.text  # no weights here, shown as a gap
        assert [r.get_attribute("class") for r in rows[-2:]] == ["baseline", "baseline"]  # emt, dummy
        assert rows[-1].text.startswith("ref. dummy")
        assert severe_console_errors(driver) == []
        screenshot(driver, "run-site-index.png")
        driver.find_element(By.LINK_TEXT, "molecules_small").click()
        wait_for_plots(driver)
        assert "Level of theory" in driver.page_source and "weights not found" not in driver.page_source
        driver.back()
        driver.find_element(By.LINK_TEXT, "chgnet-0.3.0").click()
        assert "d14ab7c0f093efe64b60a7bcd540bca10e74fb7f46c86108a079af60524659d1" in driver.page_source


def test_results_carry_provenance(campaign):
    workdir, *_ = campaign
    results = [json.loads(p.read_text()) for p in (workdir / "store" / "results").glob("*.json")]
    assert {r["model"] for r in results} == {"dummy", "emt", "chgnet-0.3.0"}
    chgnet = next(r for r in results if r["model"] == "chgnet-0.3.0")
    provenance = chgnet["provenance"]
    assert provenance["weights_sha256"] == "d14ab7c0f093efe64b60a7bcd540bca10e74fb7f46c86108a079af60524659d1"
    assert provenance["dataset_sha256"] and provenance["packages"]["chgnet"] and provenance["packages"]["torch"]
    assert provenance["compute_seconds"] > 0 and provenance["wall_seconds"] >= provenance["compute_seconds"]
    assert provenance["hardware"]["cpu"] and provenance["device"] == "cpu"
    assert len(chgnet["records"]) == 55 and chgnet["success_rate"] == 1.0


def test_second_run_recomputes_nothing(campaign):
    workdir, env, _, _, board = campaign
    stored = {p: p.stat().st_mtime_ns for p in (workdir / "store" / "results").glob("*.json")}
    again = lambench("run", "--models", MODELS, "--tasks", TASK, "--workdir", str(workdir), env=env)
    assert again.returncode == 0, again.stderr
    # The failed job is retried (it is not a result); everything else is already there.
    assert "1 to compute, 3 already in the store" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    newest = max((workdir / "runs").iterdir(), key=lambda p: p.name)
    second = json.loads((newest / "site" / "leaderboard.json").read_text())
    # Same results, same seeds: the same scores and the same intervals.
    assert second["scoreboard"]["models"] == board["scoreboard"]["models"]


def test_nothing_to_compute_says_so(campaign):
    workdir, env, *_ = campaign
    done = lambench("run", "--models", "dummy,emt", "--tasks", TASK, "--workdir", str(workdir), env=env)
    assert done.returncode == 0, done.stderr
    assert "nothing to compute" in done.stdout
    # No DAG to start: aggregate and publish ran in the runner's process, and the site is there.
    newest = max((workdir / "runs").iterdir(), key=lambda p: p.name)
    assert not (newest / "dag.log").exists() and (newest / "site" / "leaderboard.json").exists()
    campaign_id = newest.name
    assert (workdir / "store" / "campaigns" / campaign_id / "plan.json").exists()


def test_default_suite_covers_three_domains(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = lambench("run", "--models", "dummy,emt", "--workdir", str(tmp_path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    board = json.loads((run_dir / "site" / "leaderboard.json").read_text())
    assert board["scoreboard"]["force_field_domains"] == ["catalysis", "inorganic_materials", "molecules"]
    dummy, emt = scores_of(board)["dummy"], scores_of(board)["emt"]
    assert dummy["m_ff"]["value"] == pytest.approx(1.0) and not dummy["m_ff_partial"]
    # EMT knows neither Si nor C+Si: those sets are skipped structure by structure, and its score is partial.
    assert emt["m_ff_partial"] and emt["rank"] is None
    # Applicability: both tasks ran for both models and reached the leaderboard. The dummy's energy is
    # constant, so its MD conserves energy exactly (M_IS = 0).
    assert dummy["m_is"]["value"] == pytest.approx(0.0)
    assert raw(board, "dummy", "md_stability", "survival_fraction")["value"] == 1.0
    assert emt["m_e"]["value"] > 0 and emt["m_e"]["low"] <= emt["m_e"]["value"] <= emt["m_e"]["high"]
    assert raw(board, "emt", "efficiency", "eta_us_per_atom")["value"] > 0
    summary = (run_dir / "site" / "leaderboard.md").read_text()
    assert "M_E ↑" in summary and "M_IS ↓" in summary
