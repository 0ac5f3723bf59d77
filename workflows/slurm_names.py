"""How run steps are named as Slurm jobs. Apart from `workflows.slurm` (which imports dflow) so the
live display can find a step's job without that import."""

from __future__ import annotations

JOB_NAME_PREFIX = "lambench-"


def job_name(job_key: str) -> str:
    """The Slurm job name of a run step: `squeue` and the live display find a job's Slurm id by it."""
    return f"{JOB_NAME_PREFIX}{job_key[:16]}"
