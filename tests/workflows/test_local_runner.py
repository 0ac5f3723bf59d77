"""The local runner stops its DAG child group when it is terminated, and keeps finished results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.fault_helpers import processes_mentioning

REPO = Path(__file__).resolve().parents[2]


def test_terminating_lambench_run_stops_the_dag(tmp_path):
    run = subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,emt,chgnet-0.3.0",
         "--tasks", "force_field/molecules_small", "--workdir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("*/dflow")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list((tmp_path / "runs").glob("*/dflow")), "the DAG never started"
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted" in err
    time.sleep(1)
    assert processes_mentioning(str(tmp_path)) == []
