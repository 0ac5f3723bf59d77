"""Run steps that carry several jobs of one model (`--jobs-per-step`): the model loads once per step,
each job keeps its own result, failure and time limit, and a job over its limit does not take its
siblings with it (the step stores its failure and starts itself again for the rest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambench_core.campaign import CampaignSpec, Job, campaign_jobs
from lambench_core.categories import Category
from tests.reliability.test_faults import REPO, lambench_env, no_process_left
from tests.support.fault_helpers import stand_in_family
from workflows.dag import group_step_key, run_groups, run_step_key, run_step_keys

COUNTING_FAMILY = """
# Injected by tests/workflows/test_grouped_steps.py: EMT that writes a line per load and never returns
# on a structure without periodic boundaries.
import os
import time

from ase.calculators.emt import EMT

from lambench_core.models.registry import register_family


class HangsOnMolecules(EMT):
    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and not atoms.pbc.any():
            time.sleep(3600)
        super().calculate(atoms, *args, **kwargs)


def build(card, context):
    with open(os.environ["LAMBENCH_TEST_LOADS"], "a") as loads:
        loads.write(f"{os.getpid()}\\n")
    return HangsOnMolecules()


register_family("test-counting")(build)
"""

TASKS = "force_field/cu_bulk,force_field/molecules_small,force_field/cu111_o,force_field/cu111_h"


def spec(jobs_per_step: int, models: list[str]) -> CampaignSpec:
    return CampaignSpec(
        campaign_id="c", models=models, tasks=TASKS.split(",") + ["s22"], store="/x", jobs_per_step=jobs_per_step
    )


def test_groups_hold_one_model_and_category_and_one_job_steps_keep_their_keys():
    one = spec(1, ["dummy", "emt"])
    jobs = campaign_jobs(one)
    assert [len(g) for g in run_groups(one, jobs)] == [1] * 10
    assert run_step_keys(one, jobs) == {job.key: run_step_key(job.key) for job in jobs}

    grouped = spec(3, ["dummy", "emt"])
    groups = run_groups(grouped, jobs)
    # 4 force-field jobs → 3 + 1; s22 alone, and first: property steps run longer than force-field ones.
    assert [len(g) for g in groups] == [1, 1, 3, 1, 3, 1]
    assert [(g[0].model, g[0].instance.name) for g in groups[:2]] == [("dummy", "s22"), ("emt", "s22")]
    for group in groups:
        assert len({(job.model, job.instance.category) for job in group}) == 1
    keys = run_step_keys(grouped, jobs)
    assert len(set(keys.values())) == 6 and all(k.startswith("run-") and len(k) <= 63 for k in keys.values())
    three = next(group for group in groups if len(group) == 3)
    reordered: list[Job] = [three[1], three[0], three[2]]
    assert group_step_key(reordered) != group_step_key(three)  # a step's key is its jobs, in order


def test_the_longest_categories_start_first_and_each_keeps_the_plan_order():
    tasks = [*TASKS.split(","), "s22", "torsion_scans", "md_stability", "adapt_g2_formation_enthalpy", "efficiency"]
    defaults = CampaignSpec(campaign_id="c", models=["dummy", "emt"], tasks=tasks, store="/x", jobs_per_step=6)
    jobs = campaign_jobs(defaults)
    groups = run_groups(defaults, jobs)
    orders = [group[0].instance.category.start_order for group in groups]
    assert orders == sorted(orders) and groups[0][0].instance.name == "efficiency"
    assert [job.key for group in groups for job in group if job.instance.category == Category.FORCE_FIELD] == [
        job.key for job in jobs if job.instance.category == Category.FORCE_FIELD
    ]


@pytest.mark.slow
def test_a_step_of_several_jobs_loads_once_and_a_timed_out_job_spares_its_siblings(tmp_path):
    inject, cards = stand_in_family(tmp_path, "counting", "test-counting", COUNTING_FAMILY)
    loads = tmp_path / "loads.txt"
    env = lambench_env(tmp_path, PYTHONPATH=str(inject), LAMBENCH_TEST_LOADS=str(loads))
    workdir = tmp_path / "work"
    run = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "counting", "--tasks", TASKS, "--cards", str(cards),
         "--jobs-per-step", "4", "--job-timeout", "20", "--bootstrap", "0", "--workdir", str(workdir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = " ".join(run.stdout.split())
    assert "failed counting × force_field/molecules_small: timed out after 20 s" in out
    # One step: loaded once, then once more after it restarted itself past the hung job.
    pids = loads.read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 1  # os.execv keeps the process id
    site = next((workdir / "runs").iterdir()) / "site"
    board = json.loads((site / "leaderboard.json").read_text())
    status = {job["task"]: job["status"] for job in board["jobs"]}
    assert status == {
        "force_field/cu_bulk": "succeeded",
        "force_field/molecules_small": "failed",
        "force_field/cu111_o": "succeeded",
        "force_field/cu111_h": "succeeded",
    }, status
    results = [json.loads(p.read_text()) for p in (workdir / "store" / "results").glob("*.json")]
    assert all(r["provenance"]["hardware"]["threads"] == 1 for r in results)
    assert no_process_left(workdir)

    # Without the hanging task: one load for all of a step's jobs.
    loads.unlink()
    again = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "counting", "--tasks",
         "force_field/cu_bulk,force_field/cu111_o,force_field/cu111_h", "--cards", str(cards), "--force",
         "--jobs-per-step", "4", "--bootstrap", "0", "--workdir", str(workdir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(loads.read_text().split()) == 1
    assert Path(workdir).exists()
