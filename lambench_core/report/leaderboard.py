"""The leaderboard document: scores with intervals, every raw metric, job outcomes, model
provenance and benchmark definitions — everything the Markdown summary and the site render."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from lambench_core.campaign import Job
from lambench_core.categories import Category
from lambench_core.data.manifest import DatasetEntry, ManifestDocument
from lambench_core.domains import Domain
from lambench_core.metrics.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_REPLICATES
from lambench_core.metrics.scoring import ModelScores, Scoreboard, score_table
from lambench_core.metrics.table import MetricsTable, RawMetric
from lambench_core.models.card import DEFAULT_LEVEL
from lambench_core.report.collect import JobSummary, benchmark_of, metrics_table, summarize_jobs
from lambench_core.results.record import TaskResult
from lambench_core.tasks.base import task_class


class ModelInfo(BaseModel):
    """A model's card and where its numbers were computed (from its results' provenance)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    card: dict[str, Any] | None = None
    level_of_theory: str | None = Field(
        default=None, description="The card's level of theory (display text); None for results from before cards had it"
    )
    level_mismatches: list[str] = Field(
        default_factory=list,
        description="'dataset (level)' of each reference set it was scored on whose level differs from the card's "
        "level for that domain (no label set at its own level), sorted",
    )
    weights_sha256: str | None = None
    lambench_version: str | None = None
    git_commit: str | None = None
    hardware: dict[str, Any] | None = None
    device: str | None = None
    dtype: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    python: str | None = None
    platform: str | None = None
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0

    def mismatched_levels(self) -> list[str]:
        """The distinct reference levels of the mismatched sets, sorted."""
        return sorted({entry.rsplit(" (", 1)[-1].rstrip(")") for entry in self.level_mismatches})


class MetricInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = ""
    dummy: float | None = None


class CriterionCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    criterion: str
    limit: float
    worst: float | None
    frame: str | None
    passed: bool


class ConvergenceInfo(BaseModel):
    """A reference set's convergence certificate, as the task page shows it."""

    model_config = ConfigDict(extra="forbid")

    verdict: str = Field(description="passed, failed or uncertified")
    protocol: str | None = None
    frames: int = 0
    criteria: list[CriterionCheck] = Field(default_factory=list)
    note: str = ""


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    level: str
    level_of_theory: dict[str, Any]
    source: str
    citation: str | None
    licence: str
    description: str
    sha256: str | None = None
    convergence: ConvergenceInfo | None = None


class BenchmarkInfo(BaseModel):
    """A leaderboard column: a force-field benchmark set or a task, with its definition and references."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Category
    task: str
    domain: Domain
    version: str
    description: str
    params: dict[str, Any]
    datasets: list[DatasetInfo]
    metrics: dict[str, MetricInfo]


class BoardLookup:
    """First-match indexes of a leaderboard's lists, as the linear scans they replace would find.

    `Leaderboard.lookup()` rebuilds it whenever one of the lists is replaced (the lists themselves
    are held, so their identities stay valid); a list edited in place should be replaced instead."""

    def __init__(self, lists: tuple[list, list, list, list, list]) -> None:
        rows, jobs, scores, models, benchmarks = lists
        self.lists = lists
        self.rows: dict[tuple[str, str, str], RawMetric] = {}
        self.first_row: dict[tuple[str, str], RawMetric] = {}
        for row in rows:
            self.rows.setdefault((row.model, row.benchmark, row.metric), row)
            self.first_row.setdefault((row.model, row.benchmark), row)
        self.jobs: dict[tuple[str, str], JobSummary] = {}
        self.job_statuses: dict[tuple[str, Category], set[str]] = {}
        for job in jobs:
            self.jobs.setdefault((job.model, job.benchmark), job)
            self.job_statuses.setdefault((job.model, job.kind), set()).add(job.status)
        self.scores: dict[str, ModelScores] = {}
        for entry in scores:
            self.scores.setdefault(entry.model, entry)
        self.models: dict[str, ModelInfo] = {}
        for info in models:
            self.models.setdefault(info.name, info)
        self.benchmarks: dict[Category, list[BenchmarkInfo]] = {}
        for benchmark in benchmarks:
            self.benchmarks.setdefault(benchmark.kind, []).append(benchmark)


def convergence_info(manifest: ManifestDocument, entry: DatasetEntry) -> ConvergenceInfo | None:
    """The certificate of a set lambench labels itself (None for external data: its source's)."""
    from lambench_core.data.catalog_doc import certificate_of

    if entry.download_url or not entry.files:
        return None
    certificate = certificate_of(manifest, entry)
    if certificate is None or certificate.labels_sha256 != entry.files[0].sha256:
        return ConvergenceInfo(verdict="uncertified")
    return ConvergenceInfo(
        verdict="passed" if certificate.passed else "failed",
        protocol=f"{certificate.protocol}: {certificate.protocol_description}",
        frames=len(certificate.frames),
        criteria=[
            CriterionCheck(criterion=w.criterion, limit=w.limit, worst=w.value, frame=w.frame_id, passed=w.passed)
            for w in certificate.worst
        ],
        note=certificate.note,
    )


class Leaderboard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: str
    created_at: datetime
    scoreboard: Scoreboard
    jobs: list[JobSummary]
    table: MetricsTable = Field(description="Raw metrics (point values; the replicates are in metrics.parquet)")
    models: list[ModelInfo]
    benchmarks: list[BenchmarkInfo]
    notes: list[str] = Field(default_factory=list)
    _lookup: BoardLookup | None = PrivateAttr(default=None)

    def scores(self, model: str) -> ModelScores:
        found = self.lookup().scores.get(model)
        if found is None:
            raise KeyError(f"no scores for model {model!r}")
        return found

    def value(self, model: str, benchmark: str, metric: str) -> RawMetric | None:
        return self.lookup().rows.get((model, benchmark, metric))

    def job(self, model: str, benchmark: str) -> JobSummary | None:
        return self.lookup().jobs.get((model, benchmark))

    def lookup(self) -> BoardLookup:
        """Dictionaries over the rows, jobs, scores and models (built once per set of lists): the
        renderers look up every cell, so a linear scan per cell would make them quadratic."""
        lists = (self.table.rows, self.jobs, self.scoreboard.models, self.models, self.benchmarks)
        cached = self._lookup
        if cached is None or any(a is not b for a, b in zip(cached.lists, lists, strict=True)):
            cached = self._lookup = BoardLookup(lists)
        return cached

    def benchmarks_of(self, kind: Category) -> list[BenchmarkInfo]:
        return list(self.lookup().benchmarks.get(kind, ()))


def _model_info(
    model: str, results: Sequence[TaskResult], jobs: Sequence[Job], manifest: ManifestDocument
) -> ModelInfo:
    """`results` and `jobs`: this model's (or all; others are skipped)."""
    own = [r for r in results if r.model == model and r.provenance is not None]
    info = ModelInfo(
        name=model,
        wall_seconds=sum(r.provenance.wall_seconds for r in own if r.provenance),
        compute_seconds=sum(r.provenance.compute_seconds for r in own if r.provenance),
    )
    if own:
        latest = max(own, key=lambda r: r.provenance.finished_at if r.provenance else datetime.min)
        p = latest.provenance
        assert p is not None
        info = info.model_copy(
            update=dict(
                card=p.model_card,
                level_of_theory=level if isinstance(level := p.model_card.get("level_of_theory"), str) else None,
                level_mismatches=_level_mismatches(model, p.model_card, jobs, manifest),
                weights_sha256=p.weights_sha256,
                lambench_version=p.lambench_version,
                git_commit=p.git_commit,
                hardware=p.hardware.model_dump(),
                device=p.device,
                dtype=p.dtype,
                packages=p.packages,
                python=p.python,
                platform=p.platform,
            )
        )
    return info


def _level_mismatches(model: str, card: dict[str, Any], jobs: Sequence[Job], manifest: ManifestDocument) -> list[str]:
    """'dataset (level)' of each reference set of this model's jobs whose level is not the card's
    level for the job's domain (`levels`, PBE where absent): it was scored on another level's labels."""
    levels = card.get("levels") or {}
    known = _names(manifest)
    found: set[str] = set()
    for job in jobs:
        if job.model != model or job.dataset is None or job.dataset not in known:
            continue
        level = manifest.get(job.dataset).level
        if level != levels.get(job.instance.domain.value, DEFAULT_LEVEL):
            found.add(f"{job.dataset} ({level})")
    return sorted(found)


def _names(manifest: ManifestDocument) -> set[str]:
    return set(manifest.names())


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def _benchmark_infos(
    jobs: Sequence[Job], table: MetricsTable, results: dict[str, TaskResult], manifest: ManifestDocument
) -> list[BenchmarkInfo]:
    infos: dict[str, BenchmarkInfo] = {}
    names = _names(manifest)
    for job in jobs:
        name = benchmark_of(job)
        task = task_class(job.instance.task)
        info = infos.setdefault(
            name,
            BenchmarkInfo(
                name=name,
                kind=job.instance.category,
                task=job.instance.name,
                domain=job.instance.domain,
                version=task.version,
                description=_first_paragraph(task.__doc__),
                params=dict(job.instance.params),
                datasets=[],
                metrics={},
            ),
        )
        dataset_names = [job.dataset] if job.dataset else list(job.instance.datasets.values())
        known = {d.name for d in info.datasets}
        for dataset in dataset_names:
            if dataset in known or dataset not in names:
                continue
            entry = manifest.get(dataset)
            result = results.get(job.key)
            digest = result.provenance.dataset_sha256 if result and result.provenance and job.dataset else None
            info.datasets.append(
                DatasetInfo(
                    name=entry.name,
                    level=entry.level,
                    level_of_theory=dict(entry.level_of_theory),
                    source=entry.source,
                    citation=entry.citation,
                    licence=entry.licence,
                    description=entry.description,
                    sha256=digest,
                    convergence=convergence_info(manifest, entry),
                )
            )
            known.add(dataset)
    for row in table.rows:
        row_info = infos.get(row.benchmark)
        if row_info is None:
            continue
        current = row_info.metrics.get(row.metric)
        if current is None or (not current.unit and row.unit) or (current.dummy is None and row.dummy is not None):
            row_info.metrics[row.metric] = MetricInfo(
                unit=row.unit or (current.unit if current else ""),
                dummy=row.dummy if row.dummy is not None else (current.dummy if current else None),
            )
    order = list(Category)
    return sorted(infos.values(), key=lambda b: (order.index(b.kind), b.domain, b.name))


def build_leaderboard(
    campaign: str,
    models: Sequence[str],
    results: Sequence[TaskResult],
    jobs: Sequence[Job],
    manifest: ManifestDocument,
    n_replicates: int = DEFAULT_REPLICATES,
    confidence: float = DEFAULT_CONFIDENCE,
    baselines: Sequence[str] = (),
) -> tuple[Leaderboard, MetricsTable]:
    """The leaderboard and the full metrics table (with bootstrap replicates) it was scored from.

    `results` holds at most one result per job: the stored scored one, or else the latest failure.
    Failed and missing ones are gaps, never zeros.
    """
    by_key = {r.key: r for r in results}
    names = _names(manifest)
    results_of: dict[str, list[TaskResult]] = {}
    for result in results:
        results_of.setdefault(result.model, []).append(result)
    jobs_of: dict[str, list[Job]] = {}
    for job in jobs:
        jobs_of.setdefault(job.model, []).append(job)
    bootstrap_notes: list[str] = []
    table = metrics_table(models, jobs, by_key, manifest, n_replicates, bootstrap_notes)
    references = set(baselines)
    table.baselines = [model for model in models if model in references]
    scoreboard = score_table(table, confidence)
    notes = bootstrap_notes + sorted(
        {
            f"{job.dataset}: no dummy errors in the manifest; left out of M_FF"
            for job in jobs
            if job.instance.category == Category.FORCE_FIELD
            and job.dataset in names
            and manifest.get(job.dataset).dummy_errors is None
        }
    )
    board = Leaderboard(
        campaign=campaign,
        created_at=datetime.now(UTC),
        scoreboard=scoreboard,
        jobs=summarize_jobs(jobs, by_key),
        table=table.without_replicates(),
        models=[_model_info(model, results_of.get(model, []), jobs_of.get(model, []), manifest) for model in models],
        benchmarks=_benchmark_infos(jobs, table, by_key, manifest),
        notes=notes,
    )
    return board, table


def leaderboard_from_table(campaign: str, table: MetricsTable, confidence: float = DEFAULT_CONFIDENCE) -> Leaderboard:
    """A leaderboard of a table scored elsewhere (`lambench aggregate`): no jobs or provenance."""
    benchmarks: dict[str, BenchmarkInfo] = {}
    for row in table.rows:
        info = benchmarks.get(row.benchmark)
        if info is None:
            info = benchmarks[row.benchmark] = BenchmarkInfo(
                name=row.benchmark,
                kind=row.kind,
                task=row.benchmark,
                domain=row.domain or Domain.INORGANIC_MATERIALS,
                version="",
                description="",
                params={},
                datasets=[],
                metrics={},
            )
        if row.metric not in info.metrics:
            info.metrics[row.metric] = MetricInfo(unit=row.unit, dummy=row.dummy)
    return Leaderboard(
        campaign=campaign,
        created_at=datetime.now(UTC),
        scoreboard=score_table(table, confidence),
        jobs=[],
        table=table.without_replicates(),
        models=[ModelInfo(name=model) for model in table.models],
        benchmarks=list(benchmarks.values()),
        notes=list(table.notes),
    )
