"""`lambench run` killed at any moment after it starts its DAG child leaves no process behind.

The DAG child is its own session (so a timeout can stop all of dflow's workers), so neither a
SIGKILL of `lambench run` nor one of its process group reaches it: it is started with
PR_SET_PDEATHSIG (set between fork and exec) and kills its own group when the parent goes; a thread
watching the parent's pid is the fallback. Each case kills the parent a given delay after its first
`dag.log` appears (the runner opens it right before it forks the child) and waits for every
process mentioning the case's folder to be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fault_helpers import processes_mentioning

REPO = Path(__file__).resolve().parents[2]

# (signal, seconds after the runner opens dag.log, which it does right before it forks the DAG
# child): the first moments densely (the child forked but not yet exec'd, Python starting, dflow
# importing), then the DAG at work (dflow's pool workers and step processes running).
CASES = [
    (signal.SIGKILL, 0.0),
    (signal.SIGKILL, 0.01),
    (signal.SIGKILL, 0.03),
    (signal.SIGKILL, 0.1),
    (signal.SIGKILL, 0.3),
    (signal.SIGKILL, 1.0),
    (signal.SIGKILL, 4.0),
    (signal.SIGTERM, 0.0),
    (signal.SIGTERM, 0.03),
    (signal.SIGTERM, 0.3),
    (signal.SIGTERM, 2.0),
]


def environment() -> dict[str, str]:
    # The repository first on the path: the steps (run from their own folders) import this tree.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def dag_started(folder: Path) -> bool:
    runs = folder / "work" / "runs"
    try:
        return any((run / "dag.log").exists() for run in runs.iterdir())
    except FileNotFoundError:
        return False


def start(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", "run", "--models", "dummy,emt", "--tasks",
         "force_field/molecules_small", "--bootstrap", "0", "--workdir", str(folder / "work")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(),
    )


@pytest.mark.slow
def test_killing_lambench_run_at_any_moment_after_it_starts_its_dag_leaves_no_process(tmp_path):
    # All cases at once (each in its own folder): the machine's load only shifts the moments.
    runs = []
    for index, (signum, delay) in enumerate(CASES):
        folder = tmp_path / f"case{index}-{signum.name}-{delay}s"  # no name inside another
        folder.mkdir()
        runs.append((signum, delay, folder, start(folder)))
    deadline = time.monotonic() + 240
    pending = list(runs)
    started: dict[int, float] = {}
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            signum, delay, folder, process = run
            if process.pid not in started:
                if process.poll() is not None:
                    pytest.fail(f"{folder.name}: lambench run ended (exit {process.returncode}) before it started its DAG")
                if dag_started(folder):
                    started[process.pid] = time.monotonic()
            if process.pid in started and time.monotonic() - started[process.pid] >= delay:
                process.send_signal(signum)
                pending.remove(run)
        time.sleep(0.001)
    assert not pending, f"no DAG child within 240 s: {[run[2].name for run in pending]}"

    left: dict[str, list[int]] = {}
    for signum, _delay, folder, process in runs:
        process.wait(timeout=60)
        # SIGTERM: the runner stops the DAG's group (SIGKILL after a 10 s grace) and exits 130,
        # or dies of the signal if it arrived before its handler was installed.
        if signum == signal.SIGTERM:
            assert process.returncode in (130, -signal.SIGTERM), (folder.name, process.returncode)
        end = time.monotonic() + 30
        while processes_mentioning(str(folder)) and time.monotonic() < end:
            time.sleep(0.2)
        if processes_mentioning(str(folder)):
            left[folder.name] = processes_mentioning(str(folder))
    for pids in left.values():  # never leave them running
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, f"processes left after the runner was killed: {left}"
