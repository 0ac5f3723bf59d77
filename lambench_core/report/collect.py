"""Stored TaskResults of a campaign → the MetricsTable every score is computed from.

This is the only place that knows how this harness stores its numbers: it reads each result's
metrics, attaches the normalization constants (dummy errors from the manifest, dummy values from the
task), and bootstraps each metric by recomputing it with the task's own `summarize` on resampled
per-item records. A job with no result becomes `missing` rows, so no model or benchmark vanishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from lambench_core.campaign import Job
from lambench_core.categories import Category
from lambench_core.data.manifest import ManifestDocument
from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import LABEL_METRICS
from lambench_core.metrics.bootstrap import replicate_metrics, resample_items, resampling_unit
from lambench_core.metrics.table import MetricsTable, RawMetric
from lambench_core.models.registry import normalizer_families
from lambench_core.results.record import TaskResult
from lambench_core.tasks.base import task_class


class JobSummary(BaseModel):
    """What a job produced, for the site, the exports and run comparisons."""

    model_config = ConfigDict(extra="forbid")

    key: str
    model: str
    task: str
    kind: Category
    benchmark: str
    domain: Domain
    dataset: str | None
    status: str
    error: str | None = None
    n_items: int = 0
    n_scored: int = 0
    success_rate: float | None = None
    coverage: float | None = None
    issues: list[dict[str, str]] = []
    wall_seconds: float | None = None
    compute_seconds: float | None = None
    dataset_sha256: str | None = None
    weights_sha256: str | None = None
    lambench_version: str | None = None
    git_commit: str | None = None


def benchmark_of(job: Job) -> str:
    return (
        job.instance.set_name or job.instance.name
        if job.instance.category == Category.FORCE_FIELD
        else job.instance.name
    )


def rates(result: TaskResult) -> tuple[float, float]:
    """Success rate over attempted items (skipped ones excluded) and coverage (attempted ÷ all)."""
    skipped = sum(issue.kind == "skipped" for issue in result.issues)
    attempted = result.n_items - skipped
    if result.status.value == "failed":
        return result.success_rate, attempted / result.n_items if result.n_items else 0.0
    return (result.n_scored / attempted if attempted else 0.0), (attempted / result.n_items if result.n_items else 0.0)


def summarize_jobs(jobs: Sequence[Job], results: dict[str, TaskResult]) -> list[JobSummary]:
    summaries = []
    for job in jobs:
        result = results.get(job.key)
        base: dict[str, Any] = dict(
            key=job.key,
            model=job.model,
            task=job.instance.name,
            kind=job.instance.category,
            benchmark=benchmark_of(job),
            domain=job.instance.domain,
            dataset=job.dataset,
        )
        if result is None:
            summaries.append(JobSummary(**base, status="missing"))
            continue
        success, coverage = rates(result)
        provenance = result.provenance
        summaries.append(
            JobSummary(
                **base,
                status=result.status.value,
                error=result.error,
                n_items=result.n_items,
                n_scored=result.n_scored,
                success_rate=success,
                coverage=coverage,
                issues=[issue.model_dump() for issue in result.issues[:50]],
                wall_seconds=provenance.wall_seconds if provenance else None,
                compute_seconds=provenance.compute_seconds if provenance else None,
                dataset_sha256=provenance.dataset_sha256 if provenance else None,
                weights_sha256=provenance.weights_sha256 if provenance else None,
                lambench_version=provenance.lambench_version if provenance else None,
                git_commit=provenance.git_commit if provenance else None,
            )
        )
    return summaries


def _dummies(job: Job, manifest: ManifestDocument) -> dict[str, float]:
    """The constants that normalize this job's metrics (empty for unnormalized kinds)."""
    if job.instance.category == Category.FORCE_FIELD:
        entry = manifest.get(job.dataset) if job.dataset else None
        if entry is None or entry.dummy_errors is None:
            return {}
        errors = entry.dummy_errors.model_dump()
        return {metric: errors[metric] for metric in LABEL_METRICS.values() if errors.get(metric) is not None}
    if job.instance.category == Category.PROPERTY:
        task = task_class(job.instance.task)
        dummy = task.dummy_values
        return {metric: dummy[metric] for metric in task.scored_metrics}
    return {}


def _replicates(
    jobs: Sequence[Job], results: dict[str, TaskResult], n_replicates: int, notes: list[str]
) -> dict[str, dict[str, list]]:
    """job key → metric → replicates, drawn per (task instance, label set) and shared by its models.
    A job whose records cannot be resummarized keeps its point values and gets a note instead."""
    groups: dict[tuple[str, str | None], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.instance.name, job.dataset), []).append(job)
    found: dict[str, dict[str, list]] = {}
    for (name, dataset), members in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        scored = [(job, results[job.key]) for job in members if job.key in results and results[job.key].records]
        universe = {resampling_unit(record) for _, result in scored for record in result.records if "item" in record}
        universe |= {issue.item for _, result in scored for issue in result.issues if issue.kind == "failed"}
        draws = resample_items(universe, n_replicates, f"{name}|{dataset}")
        for job, result in scored:
            if not draws or result.status.value in ("failed", "unsupported"):
                continue
            task = task_class(job.instance.task)
            params = task.Params.model_validate(job.instance.params)
            if any("item" not in record for record in result.records):
                continue

            def summarize(records: list[dict[str, Any]], task=task, params=params) -> dict[str, float | None]:
                return {name: metric.value for name, metric in task.summarize(records, params).items()}

            try:
                found[job.key] = replicate_metrics(result.records, draws, summarize)
            except NotImplementedError:
                notes.append(f"{job.model} on {job.instance.name}: no intervals (the task cannot summarize records)")
            except Exception as exc:  # e.g. records stored by an older task version: keep the point values
                notes.append(f"{job.model} on {job.instance.name}: no intervals ({type(exc).__name__}: {exc})"[:300])
    return found


def _normalizer_keys(jobs: Sequence[Job], results: dict[str, TaskResult]) -> dict[str, str]:
    """job key → key of the dummy model's job on the same benchmark and label set, where it ran.

    Normalizing replicate b by the dummy's own error on the same resampled structures (a ratio
    estimate) recomputes the whole chain; without the dummy in the campaign the constants stay fixed.
    The dummy's jobs are those of a family registered with `normalizer=True`.
    """
    normalizers = normalizer_families()
    dummies: dict[tuple[str, str | None], str] = {}
    for job in jobs:
        result = results.get(job.key)
        card = result.provenance.model_card if result and result.provenance else {}
        if card.get("family") in normalizers and result is not None and result.status.value != "failed":
            dummies[(job.instance.name, job.dataset)] = job.key
    return {
        job.key: dummies[(job.instance.name, job.dataset)]
        for job in jobs
        if (job.instance.name, job.dataset) in dummies
    }


def _dummy_replicates(
    dummy: float, metric: str, normalizer: TaskResult | None, replicates: dict[str, list]
) -> list[float | None] | None:
    """The constant scaled by the dummy's relative change on each resample."""
    base = normalizer.metric(metric) if normalizer is not None else None
    draws = replicates.get(metric)
    if not base or not draws:
        return None
    return [None if r is None else dummy * r / base for r in draws]


def metrics_table(
    models: Sequence[str],
    jobs: Sequence[Job],
    results: dict[str, TaskResult],
    manifest: ManifestDocument,
    n_replicates: int,
    notes: list[str] | None = None,
) -> MetricsTable:
    """One row per (job, metric); a job without a result gives `missing` rows of its normalized metrics.
    Whatever could not be bootstrapped is said in `notes`."""
    replicates = _replicates(jobs, results, n_replicates, notes if notes is not None else [])
    normalizers = _normalizer_keys(jobs, results)
    rows: list[RawMetric] = []
    for job in jobs:
        result = results.get(job.key)
        dummies = _dummies(job, manifest)
        common: dict[str, Any] = dict(
            model=job.model,
            kind=job.instance.category,
            benchmark=benchmark_of(job),
            dataset=job.dataset if job.instance.category == Category.FORCE_FIELD else None,
            domain=job.instance.domain,
        )
        if result is None:
            rows.extend(RawMetric(**common, metric=m, dummy=d, status="missing") for m, d in dummies.items())
            continue
        success, coverage = rates(result)
        names = list(dict.fromkeys([*result.metrics, *dummies]))
        normalizer_key = normalizers.get(job.key)
        normalizer = results.get(normalizer_key) if normalizer_key else None
        normalizer_replicates = replicates.get(normalizer_key, {}) if normalizer_key else {}
        for name in names:
            metric = result.metrics.get(name)
            rows.append(
                RawMetric(
                    **common,
                    metric=name,
                    value=metric.value if metric else None,
                    unit=metric.unit if metric else "",
                    dummy=dummies.get(name),
                    dummy_replicates=(
                        _dummy_replicates(dummies[name], name, normalizer, normalizer_replicates)
                        if name in dummies
                        else None
                    ),
                    status=result.status.value,
                    success_rate=success,
                    coverage=coverage,
                    replicates=replicates.get(job.key, {}).get(name),
                )
            )
    return MetricsTable(models=list(models), rows=rows)
