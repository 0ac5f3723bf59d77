"""Facts about the software and hardware a result was computed with."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

from lambench_core.results.record import Hardware

_ALWAYS_RECORDED = ("lambench", "ase", "numpy", "torch", "pydflow", "dpdata", "dftd3")


def package_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    names = set(_ALWAYS_RECORDED) | set(extra or {})
    versions = {}
    for name in sorted(names):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return str(torch.cuda.get_device_name(torch.device(device)))


def thread_count() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:
        return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def hardware(device: str) -> Hardware:
    return Hardware(
        cpu=cpu_name(),
        cpu_count=os.cpu_count() or 1,
        threads=thread_count(),
        gpu=gpu_name(device),
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
    )


@functools.cache
def git_commit() -> str | None:
    repository = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# Slurm sets these in every batch job; reading them keeps the core free of any engine's code.
_SLURM_ENVIRONMENT = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_partition": "SLURM_JOB_PARTITION",
    "slurm_node": "SLURMD_NODENAME",
}


def batch_job(environ: dict[str, str] | None = None) -> dict[str, str | None]:
    """The Slurm job, partition and node this process runs in (all None outside Slurm)."""
    environ = dict(os.environ) if environ is None else environ
    return {field: environ.get(variable) or None for field, variable in _SLURM_ENVIRONMENT.items()}
