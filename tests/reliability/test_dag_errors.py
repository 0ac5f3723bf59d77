"""Why a campaign could not run, or could not finish, reaches the user in one line.

A store that cannot be written, and a --device this machine does not have, stop `lambench run`
before its DAG starts (exit 2, one line naming the option). A failure inside the DAG (the store
filling up while the site is published) ends with the failing step's own reason, carried out of
the DAG child (the OP leaves it in `lambench-error.json`, the child puts it in status.json), and
nothing computed is lost. Tests run as root, for whom chmod stops nothing: the unwritable stores
are a file where the store's folder goes, a file where its campaigns/ folder goes, and a path in
/sys; the full store is a file-size limit (RLIMIT_FSIZE, as `ulimit -f`) on the campaign.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lambench_core.results.record import TaskResult
from workflows.cli import main

REPO = Path(__file__).resolve().parents[2]
RUN = ["run", "--models", "dummy", "--tasks", "force_field/molecules_small", "--bootstrap", "0"]


def environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("case", ["store is a file", "a parent is a file", "campaigns/ is a file", "in /sys"])
def test_a_store_that_cannot_be_written_stops_the_campaign_before_it_starts(case, tmp_path, capsys):
    store = {
        "store is a file": tmp_path / "store",
        "a parent is a file": tmp_path / "store" / "inner",
        "campaigns/ is a file": tmp_path / "store",
        "in /sys": Path("/sys/lambench-store"),
    }[case]
    if case == "campaigns/ is a file":
        (tmp_path / "store").mkdir()
        (tmp_path / "store" / "campaigns").write_text("not a folder")
    elif case != "in /sys":
        (tmp_path / "store").write_text("not a folder")
    code = main([*RUN, "--workdir", str(tmp_path / "work"), "--store", str(store)])
    line = one_error_line(capsys)
    if code == 2 and line.startswith("lambench: error: --store") and "a file, not a folder" in line:
        return  # refused as it was read (workflows.arguments)
    assert code == 2 and line.startswith(f"lambench: error: --store {store}: "), line
    assert not (tmp_path / "work" / "runs").exists() or not list((tmp_path / "work" / "runs").rglob("dag.log"))


def test_a_cuda_device_this_machine_lacks_stops_the_campaign_before_it_starts(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    for device in ("cuda", "cuda:1"):
        code = main([*RUN, "--workdir", str(tmp_path / "work"), "--device", device])
        line = one_error_line(capsys)
        assert code == 2 and line.startswith(f"lambench: error: --device {device}: this machine has no CUDA device"), line
    assert not (tmp_path / "work" / "runs").exists()


def _limit_file_size() -> None:
    # 1 MiB per file: results and logs fit, the site's plotly.min.js (about 4 MiB) does not.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.slow
def test_a_store_that_fills_up_while_publishing_says_why_and_keeps_the_results(tmp_path):
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", *RUN, "--workdir", str(work)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=environment(), preexec_fn=_limit_file_size,
    )
    assert done.returncode == 1, (done.stdout[-3000:], done.stderr[-3000:])
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("lambench: ")]
    assert line.startswith("lambench: the campaign did not produce a leaderboard; the publish step failed: ")
    assert "plotly.min.js" in line and "File too large" in line and "see " not in line, line
    assert line.endswith(f"(finished results are kept in {(work / 'store').resolve().as_uri()})"), line
    (result,) = (work / "store" / "results").glob("*.json")  # nothing computed is lost
    assert TaskResult.model_validate(json.loads(result.read_text())).n_scored == 55
    (run,) = (work / "runs").iterdir()
    (publish,) = [s for s in json.loads((run / "status.json").read_text())["steps"] if s["key"].startswith("publish-")]
    assert publish["phase"] == "Failed" and "File too large" in publish["error"]
