"""Campaign planning and job execution, free of any workflow engine.

`plan_campaign` turns models × task instances into jobs with identity keys and drops those
already in the store; `execute_job` runs one job and returns its TaskResult. The dflow OPs are
thin wrappers around these two functions.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import lambench_core
from lambench_core.data.checksums import dataset_digest, verify_dataset
from lambench_core.data.manifest import BUILTIN_MANIFEST, DatasetEntry, ManifestDocument, load_datasets
from lambench_core.errors import LambenchError
from lambench_core.hashing import sha256_json
from lambench_core.models.card import ModelCard
from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.loading import LoadedModel, ModelCache, load_model
from lambench_core.results.identity import PlannedJob, job_key, remember_planned
from lambench_core.results.provenance import batch_job, git_commit, hardware, package_versions
from lambench_core.results.record import Provenance, Status, TaskResult
from lambench_core.results.store import ResultStore
from lambench_core.tasks.base import TaskContext, TaskData, TaskInput, TaskOutput, task_class
from lambench_core.tasks.suite import BUILTIN_SUITE, Profile, TaskInstance, TaskSuite


class CampaignSpec(BaseModel):
    """Everything that defines a campaign; serialised into the DAG so every step sees the same."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    models: list[str]
    tasks: list[str]
    store: str
    manifest: str = str(BUILTIN_MANIFEST)
    suite: str = Field(default=str(BUILTIN_SUITE), description="The suite file: which tasks, with which params")
    cards_dirs: list[str] = Field(default_factory=list)
    device: str = "auto"
    threads_per_job: int | None = Field(
        default=None,
        ge=1,
        description="torch, BLAS and OpenMP threads of each job (None: 1, or a Slurm job's CPUs)",
    )
    jobs_per_step: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Jobs of one model and task category per run step: the model is loaded once per step",
    )
    force: bool = False
    progress_dir: str | None = None
    profile: Profile = Field(default="quick", description="quick: laptop-sized applicability runs; full: LAMBench's")
    bootstrap_replicates: int = Field(default=1000, ge=0, description="Bootstrap replicates per interval (0: none)")
    job_timeout_s: float | None = Field(
        default=None, gt=0, description="A job running longer is recorded as failed and its step ended (None: no limit)"
    )
    engine: str = Field(default="local", description="Engine running the campaign (recorded in every result)")


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    model: str
    instance: TaskInstance
    dataset: str | None = Field(description="The label set this model is scored on")
    identity_sha256: str | None = Field(
        default=None,
        description="The digest of the data the key was computed from (the set's, with its referenced sets')",
    )
    task_name: str | None = Field(default=None, description="The task class's name, as hashed into the key")


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: CampaignSpec
    to_run: list[Job]
    already_done: list[Job]
    attempt: str = Field(
        default_factory=lambda: secrets.token_hex(6),
        description="This execution of the campaign's DAG (a retry of the campaign plans anew: a new attempt)",
    )

    @property
    def all_jobs(self) -> list[Job]:
        return sorted(self.to_run + self.already_done, key=lambda job: (job.model, job.instance.name))

    def job(self, key: str) -> Job:
        for job in self.to_run + self.already_done:
            if job.key == key:
                return job
        raise LambenchError(f"campaign {self.campaign.campaign_id}: its plan has no job with key {key}")


def load_plan(data: str | bytes) -> Plan:
    """A stored plan, its jobs remembered as planned: a step or a status reader that reads the plan
    instead of planning checks every result it reads against the job planned under its key, as the
    planning process does. (Plans written before jobs carried their task name are not remembered.)"""
    plan = Plan.model_validate_json(data)
    for job in plan.to_run + plan.already_done:
        if job.task_name is not None:
            remember_planned(
                job.key, PlannedJob(model=job.model, task_name=job.task_name, dataset_sha256=job.identity_sha256)
            )
    return plan


class CampaignContext:
    """The catalog, manifest and suite a campaign spec refers to, loaded and validated once."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.catalog = ModelCatalog.load(Path(d) for d in spec.cards_dirs)
        self.manifest: ManifestDocument = load_datasets(Path(spec.manifest))
        self.suite = TaskSuite.from_file(Path(spec.suite), self.manifest, spec.profile)

    def job_for(self, card: ModelCard, instance: TaskInstance) -> Job:
        task = task_class(instance.task)
        dataset = instance.dataset_for(card.level_for(instance.domain))
        digest = dataset_digest(self.manifest.get(dataset)) if dataset is not None else None
        referenced = task.referenced_datasets(task.Params.model_validate(instance.params))
        if referenced:
            digests = {name: dataset_digest(self.manifest.get(name)) for name in referenced}
            digest = sha256_json({"dataset": digest, "referenced": digests})
        key = job_key(card, task.name, task.version, instance.params, digest)
        return Job(
            key=key, model=card.name, instance=instance, dataset=dataset, identity_sha256=digest, task_name=task.name
        )


_CONTEXTS: dict[str, CampaignContext] = {}


def campaign_context(spec: CampaignSpec) -> CampaignContext:
    """The spec's context, loaded once per process (a run step of several jobs reads the catalog,
    manifest and suite once)."""
    text = spec.model_dump_json()
    if text not in _CONTEXTS:
        _CONTEXTS.clear()  # one campaign per process: never more than the latest
        _CONTEXTS[text] = CampaignContext(spec)
    return _CONTEXTS[text]


def campaign_jobs(spec: CampaignSpec, context: CampaignContext | None = None) -> list[Job]:
    """Every job of the campaign, in model-then-task order; deterministic in the spec, the cards and
    the manifest, so a cluster step can find its job from the spec and its key alone."""
    context = context or CampaignContext(spec)
    cards = context.catalog.select(spec.models)
    instances = context.suite.select(spec.tasks)
    return [context.job_for(card, instance) for card in cards for instance in instances]


def plan_campaign(spec: CampaignSpec, store: ResultStore) -> Plan:
    """Validate every name and checksum, then split the jobs into those to run and those done."""
    context = CampaignContext(spec)
    jobs = campaign_jobs(spec, context)
    for dataset in sorted({job.dataset for job in jobs if job.dataset is not None}):
        verify_dataset(context.manifest, context.manifest.get(dataset))
    to_run: list[Job] = []
    done: list[Job] = []
    for job in jobs:
        (done if store.has(job.key) and not spec.force else to_run).append(job)
    return Plan(campaign=spec, to_run=to_run, already_done=done)


class ProgressFile:
    """Writes a job's progress where the local runner's display can read it."""

    def __init__(self, directory: str | None, job: Job, interval: float = 0.5) -> None:
        self.path = Path(directory) / f"{job.key}.json" if directory else None
        self.job = job
        self.interval = interval
        self._last = 0.0

    def __call__(self, done: int, total: int, state: str = "running", force: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not force and done < total and now - self._last < self.interval:
            return
        self._last = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(
                {
                    "key": self.job.key,
                    "model": self.job.model,
                    "task": self.job.instance.name,
                    "done": done,
                    "total": total,
                    "state": state,
                }
            )
        )
        temporary.replace(self.path)


_THREAD_LIMITS: list[Any] = []  # the process's threadpoolctl limit, kept alive


def set_threads(threads: int | None) -> int:
    """Limit torch, BLAS and OpenMP to `threads` in this process and return the number. A Slurm job
    uses the CPUs it was given; elsewhere one thread per job is the default, and the cores are used
    through parallel jobs (several threads per small structure were slower than one, and threads of
    parallel jobs oversubscribe the cores)."""
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) or 1
    from threadpoolctl import threadpool_limits

    _THREAD_LIMITS[:] = [threadpool_limits(limits=threads)]
    try:
        import torch
    except ImportError:
        return threads
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def load_task_data(needs: TaskInput, manifest: ManifestDocument, entry: DatasetEntry | None, job: Job) -> TaskData:
    """The job's dataset in the form its task declares, checksums verified; nothing it does not read."""
    # Imported here: the readers pull in ase.io (and through it scipy), half a second that the plan,
    # aggregate and publish steps, which read no frames, would pay at every start.
    from lambench_core.data.loaders import load_directory, load_frames

    match needs:
        case TaskInput.FRAMES:
            if entry is None:
                return TaskData()
            frames, digest = load_frames(manifest, entry)
            return TaskData(frames=frames, sha256=digest)
        case TaskInput.DIRECTORY:
            if entry is None:
                raise LambenchError(f"task {job.instance.name}: reads a data directory, and names no dataset")
            root, digest = load_directory(manifest, entry)
            return TaskData(root=root, sha256=digest)
        case TaskInput.NONE:
            return TaskData()


def execute_job(spec: CampaignSpec, job: Job, models: ModelCache | None = None) -> TaskResult:
    """Run one job to a TaskResult. Never raises for a model or data problem: it reports it.

    The task gets the campaign's manifest and catalog in its TaskContext (the ones its job's identity
    key was computed from), and only the input it declares (`Task.needs`). With `models`, a model
    this process loaded for an earlier job is reused (its load time is then 0)."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    progress = ProgressFile(spec.progress_dir, job)
    progress(0, 0, "loading", force=True)
    set_threads(spec.threads_per_job)
    # A step of several jobs (it passes `models`) reads the campaign's files once.
    context = campaign_context(spec) if models is not None else CampaignContext(spec)
    card = context.catalog.get(job.model)
    task = task_class(job.instance.task)()
    params = task.Params.model_validate(job.instance.params)
    loaded: LoadedModel | None = None
    output: TaskOutput | None = None
    error: str | None = None
    dataset_sha: str | None = None
    load_seconds = 0.0
    try:
        entry = context.manifest.get(job.dataset) if job.dataset is not None else None
        data = load_task_data(task.needs, context.manifest, entry, job)
        dataset_sha = data.sha256
        load_start = time.perf_counter()
        if models is None:
            loaded = load_model(card, job.instance.domain, spec.device)
        else:
            loaded, _ = models.load(card, job.instance.domain, spec.device)
        load_seconds = time.perf_counter() - load_start
        task_context = TaskContext(
            manifest=context.manifest,
            catalog=context.catalog,
            device=loaded.device,
            dtype=card.dtype,
            progress=progress,
        )
        output = task.execute(loaded, data, params, task_context)
    except LambenchError as exc:
        error = str(exc)
    except Exception as exc:  # a model package's own failure must not sink the campaign
        error = f"{type(exc).__name__}: {exc}"
    finished = datetime.now(UTC)
    result = _result(job, card, output, error)
    result.campaign_id = spec.campaign_id
    result.transient = result.status == Status.FAILED and is_infrastructure_failure(result.error)
    result.provenance = Provenance(
        lambench_version=lambench_core.__version__,
        git_commit=git_commit(),
        model_card=card.model_dump(mode="json"),
        weights_sha256=loaded.weights_sha256 if loaded else None,
        weights_pinned=loaded.weights_pinned if loaded else card.weights is None or card.weights.sha256 is not None,
        head=loaded.head if loaded else None,
        dataset=job.dataset,
        dataset_sha256=dataset_sha,
        task=job.instance.name,
        task_version=task.version,
        params=job.instance.params,
        packages=package_versions(card.packages),
        python=sys.version.split()[0],
        platform=platform.platform(),
        hardware=hardware(loaded.device if loaded else "cpu"),
        device=loaded.device if loaded else spec.device,
        dtype=card.dtype,
        started_at=started,
        finished_at=finished,
        wall_seconds=time.perf_counter() - clock,
        compute_seconds=output.compute_seconds if output else 0.0,
        load_seconds=load_seconds,
        engine=spec.engine,
        **batch_job(),
    )
    progress(result.n_items, result.n_items, result.status.value, force=True)
    return result


EXIT_TIMED_OUT = 3


def execute_job_with_deadline(
    spec: CampaignSpec,
    job: Job,
    store: ResultStore,
    models: ModelCache | None = None,
    after_expiry: Callable[[], None] | None = None,
    attempt: str | None = None,
) -> TaskResult:
    """execute_job under the spec's per-job time limit. A model call can hang inside compiled code
    where no exception reaches it, so on expiry a watchdog stores the job's failure (with the reason)
    and ends the whole step process, or calls `after_expiry` (a step of several jobs starts itself
    again for the rest); the campaign goes on with its other steps."""
    limit = spec.job_timeout_s
    if limit is None:
        return execute_job(spec, job, models)

    def expire() -> None:
        try:
            reason = f"timed out after {limit:g} s (the campaign's per-job limit)"
            store.put(failure(spec, job, reason, transient=False, attempt=attempt))
        finally:
            if after_expiry is not None:
                after_expiry()
            os._exit(EXIT_TIMED_OUT)  # the hung call cannot be interrupted otherwise

    watchdog = threading.Timer(limit, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        return execute_job(spec, job, models)
    finally:
        watchdog.cancel()


def failure(spec: CampaignSpec, job: Job, reason: str, transient: bool, attempt: str | None = None) -> TaskResult:
    """The record of a job that ended before it could report (time limit, killed, node lost)."""
    return TaskResult(
        attempt=attempt,
        key=job.key,
        model=job.model,
        task=job.instance.name,
        status=Status.FAILED,
        error=reason,
        transient=transient,
        campaign_id=spec.campaign_id,
    )


# Infrastructure failures reach a job as text: the per-structure loop keeps each structure's exception
# as its reason, and a job fails when none scored. These are the failures another node or a later try
# can cure; everything else (bad input, a model that cannot run these structures) is deterministic.
INFRASTRUCTURE_MARKERS = ("CUDA out of memory", "CUDA error", "ConnectionError", "Connection refused")


def is_infrastructure_failure(reason: str | None) -> bool:
    return any(marker in (reason or "") for marker in INFRASTRUCTURE_MARKERS)


def _result(job: Job, card: ModelCard, output: TaskOutput | None, error: str | None) -> TaskResult:
    if output is None:
        return TaskResult(key=job.key, model=card.name, task=job.instance.name, status=Status.FAILED, error=error)
    scored = output.n_scored
    if scored == 0 and output.issues and all(issue.kind == "skipped" for issue in output.issues):
        status = Status.UNSUPPORTED
        error = output.issues[0].reason
    elif scored == 0:
        status = Status.FAILED
        error = error or "no item could be scored: " + "; ".join(
            f"{issue.item}: {issue.reason}" for issue in output.issues[:3]
        )
    elif output.issues:
        status = Status.PARTIAL
    else:
        status = Status.SUCCEEDED
    return TaskResult(
        key=job.key,
        model=card.name,
        task=job.instance.name,
        status=status,
        metrics=output.metrics,
        n_items=output.n_items,
        n_scored=scored,
        success_rate=scored / output.n_items if output.n_items else 0.0,
        issues=output.issues,
        error=error,
        records=output.records,
    )
