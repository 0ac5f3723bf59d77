"""TaskResult: one (model, task) outcome with the provenance that makes it traceable."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Status(StrEnum):
    SUCCEEDED = "succeeded"  # every item scored
    PARTIAL = "partial"  # some items failed or were skipped; metrics cover the rest
    UNSUPPORTED = "unsupported"  # the model supports the elements of no item: nothing to score, nothing failed
    FAILED = "failed"  # nothing could be scored (model did not load, items failed, ...)


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float | None
    unit: str


class ItemIssue(BaseModel):
    """A structure (or other item) that was not scored, and why."""

    model_config = ConfigDict(extra="forbid")

    item: str
    kind: Literal["failed", "skipped"]
    reason: str


class Hardware(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: str
    cpu_count: int
    threads: int
    gpu: str | None
    memory_gib: float


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lambench_version: str
    git_commit: str | None
    model_card: dict[str, Any]
    weights_sha256: str | None
    weights_pinned: bool
    head: str | None
    dataset: str | None
    dataset_sha256: str | None
    task: str
    task_version: str
    params: dict[str, Any]
    packages: dict[str, str]
    python: str
    platform: str
    hardware: Hardware
    device: str
    dtype: str
    started_at: datetime
    finished_at: datetime
    wall_seconds: float = Field(description="Wall clock of the whole job, loading included.")
    compute_seconds: float = Field(description="Wall clock spent inside model calls only.")
    load_seconds: float = Field(description="Wall clock spent building the calculator.")
    engine: str | None = Field(default=None, description="Engine that ran the job: local, slurm or argo.")
    slurm_job_id: str | None = Field(default=None, description="The Slurm job that ran it, on the slurm engine.")
    slurm_partition: str | None = None
    slurm_node: str | None = None


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    key: str
    model: str
    task: str
    status: Status
    metrics: dict[str, Metric] = Field(default_factory=dict)
    n_items: int = 0
    n_scored: int = 0
    success_rate: float = 0.0
    issues: list[ItemIssue] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the whole job failed, if it did.")
    transient: bool = Field(
        default=False,
        description="The failure came from the infrastructure (node lost, preempted, cancelled, device out of "
        "memory, storage unreachable), not from the model or the data: engines retry it.",
    )
    campaign_id: str | None = Field(default=None, description="The campaign that computed (or failed) it.")
    attempt: str | None = Field(default=None, description="The execution of the campaign's DAG that stored it.")
    records: list[dict[str, Any]] = Field(
        default_factory=list, description="Per-item raw values, for statistics and re-scoring."
    )
    provenance: Provenance | None = None

    def metric(self, name: str) -> float | None:
        entry = self.metrics.get(name)
        return entry.value if entry is not None else None
