"""`lambench status | retry | resubmit` of a campaign that `lambench run` drove from this host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def lambench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_status_retry_and_resubmit_of_a_local_campaign(tmp_path):
    env = dict(os.environ, LAMBENCH_WEIGHTS_DIR=str(tmp_path / "no-weights"), OMP_NUM_THREADS="1")
    workdir = tmp_path / "work"
    common = ("--workdir", str(workdir))
    first = lambench("run", "--models", "dummy,mace-mp-0-medium", "--tasks", "s22", "--bootstrap", "0", *common, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    (run_dir,) = (workdir / "runs").iterdir()
    campaign = run_dir.name

    status = lambench("status", campaign, *common, env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = " ".join(status.stdout.split())
    assert f"{campaign} (local engine" in lines and "2 jobs — 1 failed, 1 succeeded" in lines
    assert "failed mace-mp-0-medium × s22" in lines and "succeeded dummy × s22" in lines

    # retry: the same campaign planned anew: only the failed job runs, and fails again (no weights here).
    retry = lambench("retry", campaign, *common, env=env)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "1 to compute, 1 already in the store." in retry.stdout
    assert [p.name for p in (workdir / "runs").iterdir()] == [campaign]
    board = json.loads((run_dir / "site/leaderboard.json").read_text())
    assert {j["model"]: j["status"] for j in board["jobs"]} == {"dummy": "succeeded", "mace-mp-0-medium": "failed"}

    # resubmit: a new campaign of the same spec, reusing what the store has.
    again = lambench("resubmit", campaign, *common, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 to compute, 1 already in the store." in again.stdout
    assert len(list((workdir / "runs").iterdir())) == 2

    # A nightly run: the campaign again, then the comparison with the newest earlier run.
    nightly = lambench(
        "run", "--models", "dummy,mace-mp-0-medium", "--tasks", "s22", "--bootstrap", "0", "--compare-previous",
        *common, env=env,
    )
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    newest = max((workdir / "runs").iterdir(), key=lambda p: p.name)
    report = (newest / "comparison.md").read_text()
    assert "0 regression(s)" in report and f"Compared with {sorted((workdir / 'runs').iterdir())[-2].name}" in " ".join(
        nightly.stdout.split()
    )
    comparison = json.loads((newest / "comparison.json").read_text())
    assert comparison["run_b"].startswith(str(newest)) and comparison["failed_jobs"]  # mace fails every night

    unknown = lambench("status", "no-such-campaign", *common, "--config", str(tmp_path / "none.yaml"), env=env)
    assert unknown.returncode == 2 and f"--config {tmp_path / 'none.yaml'}: no such file" in unknown.stderr
