"""The `slurm` engine against a real one-node Slurm (scripts/slurm-local.sh, started once per session):
the same campaign DAG as the local engine, every run step a batch job through dpdispatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lambench_core.results.record import Status, TaskResult
from lambench_core.results.store import ResultStore
from tests.support.fault_helpers import stand_in_family
from workflows.slurm_names import job_name

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
MOLECULES = "force_field/molecules_small"
TASKS = f"{MOLECULES},s22,dbh24"

# Each task category its own partition, CPUs, memory and time limit, so the batch jobs show which
# configuration reached them.
CONFIG = {
    "slurm": {
        "check_interval": 1,
        "defaults": {"partition": "debug", "cpus": 1, "memory": "1000M", "time_limit": "00:05:00", "retries": 0},
        "resources": {"force_field": {"partition": "batch", "cpus": 2, "memory": "1500M", "time_limit": "00:07:00"}},
    }
}

SLOW_FAMILY = """
# Injected by tests/engines/slurm/test_engine_slurm.py into every Python process of a campaign (the batch jobs
# inherit the environment): a model family that hangs while LAMBENCH_TEST_HANG is set, else is EMT.
import os
import time

from ase.calculators.emt import EMT

from lambench_core.models.registry import register_family


class MaybeHanging(EMT):
    def calculate(self, *args, **kwargs):
        if os.environ.get("LAMBENCH_TEST_HANG"):
            time.sleep(3600)
        super().calculate(*args, **kwargs)


register_family("test-slow")(lambda card, context: MaybeHanging())
"""


def write_config(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def lambench(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def results(store: Path) -> dict[str, TaskResult]:
    return {path.stem: TaskResult.model_validate_json(path.read_text()) for path in (store / "results").glob("*.json")}


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in records]


def last_run(workdir: Path) -> Path:
    return max((workdir / "runs").iterdir(), key=lambda p: p.name)


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("slurm-env")
    return dict(os.environ, LAMBENCH_WEIGHTS_DIR=str(root / "no-weights"), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def campaigns(slurm_cluster, tmp_path_factory, environment):
    """The same 2 models × 3 tasks campaign on the local engine and on Slurm."""
    root = tmp_path_factory.mktemp("engines")
    config = write_config(root / "slurm.yaml", CONFIG)
    common = ("--models", "dummy,emt", "--tasks", TASKS, "--bootstrap", "50")
    local = lambench(*common, "--workdir", str(root / "local"), env=environment)
    assert local.returncode == 0, local.stdout + local.stderr
    started = time.monotonic()
    slurm = lambench(
        *common, "--engine", "slurm", "--config", str(config), "--workdir", str(root / "slurm"), env=environment
    )
    assert slurm.returncode == 0, slurm.stdout + slurm.stderr
    print(f"slurm campaign: {time.monotonic() - started:.1f} s")
    return root, local, slurm


def test_a_campaign_through_slurm_equals_the_local_one(campaigns):
    root, _, slurm = campaigns
    local_results, slurm_results = results(root / "local/store"), results(root / "slurm/store")
    assert len(slurm_results) == 6 and set(slurm_results) == set(local_results)  # the same identity keys
    job_ids = set()
    for key, result in slurm_results.items():
        expected = local_results[key]
        assert result.status == expected.status and result.metrics == expected.metrics, result.task
        assert without_timings(result.records) == without_timings(expected.records)
        provenance = result.provenance
        assert provenance is not None and provenance.engine == "slurm" and provenance.slurm_job_id
        assert provenance.slurm_node and provenance.slurm_partition in ("batch", "debug")
        assert local_results[key].provenance.engine == "local" and local_results[key].provenance.slurm_job_id is None
        job_ids.add(provenance.slurm_job_id)
    assert len(job_ids) == 6  # one batch job per run step
    # Live progress named each job's Slurm id and state.
    assert "[Slurm job " in slurm.stdout and "RUNNING" in slurm.stdout
    board = json.loads((last_run(root / "slurm") / "site/leaderboard.json").read_text())
    assert {j["model"] for j in board["jobs"]} == {"dummy", "emt"}


def test_the_batch_jobs_had_their_categorys_partition_cpus_memory_and_time(campaigns, slurm_cluster):
    root, _, _ = campaigns
    by_category = {}
    for result in results(root / "slurm/store").values():
        category = "force_field" if result.task.startswith("force_field/") else "property"
        by_category[category] = slurm_cluster.job_info(result.provenance.slurm_job_id)
    force_field, prop = by_category["force_field"], by_category["property"]
    assert force_field["Partition"] == "batch" and force_field["TimeLimit"] == "00:07:00"
    assert force_field["NumCPUs"] == "2" and force_field["MinMemoryNode"] == "1500M"
    assert prop["Partition"] == "debug" and prop["TimeLimit"] == "00:05:00"
    assert prop["NumCPUs"] == "1" and prop["MinMemoryNode"] == "1000M"
    assert force_field["JobName"].startswith("lambench-") and force_field["JobState"] == "COMPLETED"
    # The batch script Slurm ran (as dpdispatcher wrote it) says the same.
    scripts = {name: batch_script(info["JobId"]) for name, info in by_category.items()}
    for line in ("#SBATCH --partition batch", "#SBATCH --mem=1500M", "#SBATCH --time=00:07:00", "--cpus-per-task=2"):
        assert line in scripts["force_field"]
    for line in ("#SBATCH --partition debug", "#SBATCH --mem=1000M", "#SBATCH --time=00:05:00", "--cpus-per-task=1"):
        assert line in scripts["property"]
    assert 'trap "" TERM' in scripts["property"]  # the step outlives Slurm's SIGTERM long enough to record it


def batch_script(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "write", "batch_script", job_id, "-"], capture_output=True, text=True, check=True
    ).stdout


def test_a_second_submission_computes_nothing(campaigns, environment):
    root, _, _ = campaigns
    before = {key: r.provenance.slurm_job_id for key, r in results(root / "slurm/store").items()}
    again = lambench(
        "--models",
        "dummy,emt",
        "--tasks",
        TASKS,
        "--bootstrap",
        "50",
        "--engine",
        "slurm",
        "--config",
        str(root / "slurm.yaml"),
        "--workdir",
        str(root / "slurm"),
        env=environment,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "All 6 jobs are already in the store: nothing to compute" in again.stdout
    assert "[Slurm job" not in again.stdout
    after = {key: r.provenance.slurm_job_id for key, r in results(root / "slurm/store").items()}
    assert after == before


def slow_campaign(root: Path, environment: dict[str, str], config: dict) -> tuple[dict[str, str], tuple[str, ...]]:
    inject, cards = stand_in_family(root, "slow", "test-slow", SLOW_FAMILY)
    env = dict(environment, PYTHONPATH=str(inject))
    args = (
        "--models",
        "dummy,slow",
        "--tasks",
        MOLECULES,
        "--cards",
        str(cards),
        "--bootstrap",
        "0",
        "--engine",
        "slurm",
        "--config",
        str(write_config(root / "slurm.yaml", config)),
        "--workdir",
        str(root / "work"),
    )
    return env, args


def slow_job_key(store: Path) -> str:
    plan = json.loads(next((store / "campaigns").glob("*/plan.json")).read_text())
    return next(job["key"] for job in plan["to_run"] if job["model"] == "slow")


def wait_for_running(name: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True).stdout
        if "RUNNING" in out:
            return out.split()[0]
        time.sleep(0.5)
    raise TimeoutError(f"no running Slurm job named {name}")


def test_a_cancelled_job_is_recorded_failed_and_only_it_runs_next_time(slurm_cluster, tmp_path, environment):
    env, args = slow_campaign(tmp_path, environment, CONFIG)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "workflows.cli", "run", *args],
            cwd=REPO,
            env=dict(env, LAMBENCH_TEST_HANG="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        store = tmp_path / "work/store"
        deadline = time.monotonic() + 120
        while not list((store / "campaigns").glob("*/plan.json")) and time.monotonic() < deadline:
            time.sleep(0.5)
        key = slow_job_key(store)
        job_id = wait_for_running(job_name(key))
        progress = next((tmp_path / "work/runs").iterdir()) / "progress" / f"{key}.json"
        while not progress.exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # the run step is executing the job (the model hangs in its first structure)
        time.sleep(3)
        subprocess.run(["scancel", job_id], check=True)
        assert run.wait(timeout=300) == 0, log.read_text()
    text = " ".join(log.read_text().split())
    failure = ResultStore.open(store).get_failure(key)
    assert failure is not None and failure.status == Status.FAILED and failure.transient
    assert failure.error.startswith(f"Slurm job {job_id} on ") and "CANCELLED" in failure.error
    assert f"failed slow × {MOLECULES}: Slurm job {job_id}" in text
    board = json.loads((last_run(tmp_path / "work") / "site/leaderboard.json").read_text())
    assert {j["model"]: j["status"] for j in board["jobs"]} == {"dummy": "succeeded", "slow": "failed"}
    status = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "status", last_run(tmp_path / "work").name, "--workdir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    lines = " ".join(status.stdout.split())
    assert "(slurm engine" in lines and f"failed slow × {MOLECULES} Slurm job {job_id} on" in lines, status.stdout
    assert "succeeded dummy × force_field/molecules_small Slurm job " in lines

    again = lambench(*args, env=env)  # the model no longer hangs
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 to compute, 1 already in the store." in again.stdout
    assert ResultStore.open(store).get(key).status == Status.SUCCEEDED


def test_a_job_over_its_slurm_time_limit_is_recorded_failed_with_the_reason(slurm_cluster, tmp_path, environment):
    config = {"slurm": CONFIG["slurm"] | {"defaults": CONFIG["slurm"]["defaults"] | {"time_limit": "00:01:00"}}}
    config["slurm"]["resources"] = {}
    env, args = slow_campaign(tmp_path, environment, config)
    started = time.monotonic()
    run = lambench(*args, env=dict(env, LAMBENCH_TEST_HANG="1"))
    assert run.returncode == 0, run.stdout + run.stderr
    print(f"time-limited campaign: {time.monotonic() - started:.1f} s")
    store = tmp_path / "work/store"
    key = slow_job_key(store)
    failure = ResultStore.open(store).get_failure(key)
    assert failure is not None and not failure.transient
    assert "exceeded its Slurm time limit (00:01:00): TIMEOUT" in failure.error, failure.error
    board = json.loads((last_run(tmp_path / "work") / "site/leaderboard.json").read_text())
    assert {j["model"]: j["status"] for j in board["jobs"]} == {"dummy": "succeeded", "slow": "failed"}


def test_a_failure_for_good_is_submitted_once_despite_retries(slurm_cluster, tmp_path, environment):
    """The one failure policy on Slurm: a deterministic failure (a model whose weights are missing)
    ends its batch job "finished", so dpdispatcher does not resubmit it, however many retries."""
    config = {"slurm": CONFIG["slurm"] | {"defaults": CONFIG["slurm"]["defaults"] | {"retries": 2}}}
    run = lambench(
        "--models", "mace-mp-0-medium", "--tasks", "s22", "--bootstrap", "0", "--engine", "slurm",
        "--config", str(write_config(tmp_path / "slurm.yaml", config)), "--workdir", str(tmp_path / "work"),
        env=environment,
    )
    assert run.returncode == 0, run.stdout + run.stderr  # the failure is on the leaderboard
    plan = json.loads(next((tmp_path / "work/store/campaigns").glob("*/plan.json")).read_text())
    (job,) = plan["to_run"]
    failure = ResultStore.open(tmp_path / "work/store").get_failure(job["key"])
    assert failure is not None and not failure.transient and "weights" in failure.error
    jobs = subprocess.run(["scontrol", "show", "jobs", "-o"], capture_output=True, text=True, check=True).stdout
    submitted = [line for line in jobs.splitlines() if f"JobName={job_name(job['key'])} " in line]
    assert len(submitted) == 1, submitted
    assert "JobState=COMPLETED" in submitted[0]  # batch_step turned the FatalError into a finished job
