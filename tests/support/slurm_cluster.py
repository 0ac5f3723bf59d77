"""A real one-node Slurm cluster for the session: the ``slurm_cluster`` fixture.

``scripts/slurm-local.sh start`` runs once per session (munged, slurmctld, slurmd on this machine,
partitions ``debug`` (default) and ``batch``); ``stop`` runs at the end, but only when this session
started the cluster -- one that was already running is left running. While the session lasts,
``SLURM_CONF`` points at the cluster's config, so ``sbatch``/``squeue`` (and dpdispatcher) find it.

Without the Slurm binaries, or when not root outside CI, the tests that take the fixture skip; under
CI (env ``CI`` set) they fail instead, since CI must run them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm-local.sh"
DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel")
# Slurm's keys: JobId, CPUs/Task, AllocNode:Sid, MCS_label, ...
_KEY = re.compile(r"^[A-Z][A-Za-z0-9_:/]*=")
# States after which a job never runs again.
TERMINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
)


def parse_job_record(line: str) -> dict[str, str]:
    """``Key=Value Key=Value ...`` (one ``scontrol show job -o`` record) as a dict.

    A token without ``=`` belongs to the value before it (values such as ``Command=`` may hold
    spaces).
    """
    info: dict[str, str] = {}
    key = None
    for token in line.strip().split(" "):
        if not token:
            continue
        if _KEY.match(token):
            key, _, value = token.partition("=")
            info[key] = value
        elif key is not None:
            info[key] += " " + token
    return info


@dataclass
class SlurmCluster:
    """The running cluster: where its config is and what partitions it has."""

    conf: Path
    partitions: tuple[str, ...] = ("debug", "batch")
    default_partition: str = "debug"
    started_here: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def job_info(self, job_id: int | str) -> dict[str, str]:
        """``scontrol show job -o JOB_ID`` as a dict (``JobState``, ``Partition``, ...)."""
        out = subprocess.run(
            ["scontrol", "show", "job", "-o", str(job_id)],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
            timeout=30,
        ).stdout
        line = next((ln for ln in out.splitlines() if ln.startswith("JobId=")), "")
        if not line:
            raise LookupError(f"scontrol knows no job {job_id}: {out.strip()!r}")
        return parse_job_record(line)

    def wait(self, job_id: int | str, timeout: float = 60.0) -> dict[str, str]:
        """Poll until the job reaches a terminal state; returns its ``job_info``."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.job_info(job_id)
            if info.get("JobState") in TERMINAL_STATES:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {info.get('JobState')} after {timeout}s")
            time.sleep(0.5)


def _missing() -> list[str]:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [name for name in DAEMONS + COMMANDS if shutil.which(name, path=path) is None]


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"Slurm cluster unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _run_script(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the one-node cluster (once), yield a :class:`SlurmCluster`, stop it if we started it."""
    missing = _missing()
    if missing:
        _unavailable(f"Slurm not installed (missing {' '.join(missing)}): apt-get install -y slurm-wlm munge")
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("the local Slurm cluster needs root (its daemons run as root)")
    result = _run_script("start")
    if result.returncode != 0:
        _unavailable(
            f"scripts/slurm-local.sh start failed ({result.returncode}): "
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )
    started_here = "already running" not in result.stdout
    conf = None
    for line in result.stdout.splitlines():
        if line.startswith("export SLURM_CONF="):
            conf = Path(line.split("=", 1)[1].strip())
    assert conf is not None, result.stdout
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield SlurmCluster(conf=conf, started_here=started_here, env=dict(os.environ))
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started_here:
            _run_script("stop")
