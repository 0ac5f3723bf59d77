"""The leaderboard: stored results → scores → Markdown, HTML and JSON."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.campaign import Job
from lambench_core.data.manifest import ManifestDocument
from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import (
    DatasetNormalization,
    ForceFieldScore,
    RawForceFieldRow,
    score_force_field,
)
from lambench_core.metrics.property import PropertyNormalization, PropertyScore, RawPropertyRow, score_property
from lambench_core.results.record import TaskResult
from lambench_core.tasks.base import task_class

MILLI = 1000.0


class DatasetCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    energy_rmse_per_atom: float | None = None
    force_rmse: float | None = None
    virial_rmse_per_atom: float | None = None
    success_rate: float | None = None
    error: str | None = None


class PropertyCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict)
    success_rate: float | None = Field(default=None, description="Scored ÷ attempted (skipped items excluded)")
    coverage: float | None = Field(default=None, description="Attempted ÷ all items")
    error: str | None = None


class ApplicabilityCell(BaseModel):
    """LAMBench's applicability metrics: efficiency M_E = 100 µs/atom ÷ η̄ (higher is faster) and
    instability M_IS (mean over systems of the clipped log10 energy drift; 0 is stable, 5 the worst)."""

    model_config = ConfigDict(extra="forbid")

    m_e: float | None = None
    eta_us_per_atom: float | None = None
    efficiency_status: str = "missing"
    m_is: float | None = None
    survival_fraction: float | None = None
    stability_status: str = "missing"


APPLICABILITY_METRICS = {
    "efficiency": ("efficiency_status", ("m_e", "eta_us_per_atom")),
    "stability": ("stability_status", ("m_is", "survival_fraction")),
}


class LeaderboardRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int | None
    model: str
    score: ForceFieldScore
    property_score: PropertyScore | None = None
    datasets: dict[str, DatasetCell]
    tasks: dict[str, PropertyCell] = Field(default_factory=dict)
    applicability: ApplicabilityCell | None = None
    compute_seconds: float
    wall_seconds: float


class Leaderboard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: str
    created_at: datetime
    domains: list[Domain]
    datasets: list[DatasetNormalization]
    property_domains: list[Domain] = Field(default_factory=list)
    property_tasks: list[PropertyNormalization] = Field(default_factory=list)
    rows: list[LeaderboardRow]
    notes: list[str] = Field(default_factory=list)

    def set_names(self) -> list[str]:
        """Benchmark sets in domain order, then by name."""
        domain_of = {n.benchmark_set: n.domain for n in self.datasets}
        return sorted(domain_of, key=lambda name: (domain_of[name], name))


def normalizations(manifest: ManifestDocument, datasets: Sequence[str]) -> tuple[list[DatasetNormalization], list[str]]:
    found, notes = [], []
    for name in datasets:
        entry = manifest.get(name)
        if entry.dummy_errors is None:
            notes.append(f"{name}: no dummy errors in the manifest; left out of M_FF")
            continue
        found.append(
            DatasetNormalization(
                dataset=name, set_name=entry.set_name, domain=entry.domain, **entry.dummy_errors.model_dump()
            )
        )
    return found, notes


def _cell(result: TaskResult) -> DatasetCell:
    return DatasetCell(
        status=result.status.value,
        energy_rmse_per_atom=result.metric("energy_rmse_per_atom"),
        force_rmse=result.metric("force_rmse"),
        virial_rmse_per_atom=result.metric("virial_rmse_per_atom"),
        success_rate=result.success_rate,
        error=result.error,
    )


def build_leaderboard(
    campaign: str,
    models: Sequence[str],
    results: Sequence[TaskResult],
    jobs: Sequence[Job],
    manifest: ManifestDocument,
) -> Leaderboard:
    """Score `models` on the benchmark sets of the campaign's force-field jobs.

    `results` holds at most one result per job: the stored scored one, or else the latest failure.
    Failed and missing ones show as gaps, never as zeros.
    """
    force_field = {j.key: j for j in jobs if j.instance.category == "force_field" and j.dataset is not None}
    norms, notes = normalizations(manifest, sorted({j.dataset for j in force_field.values() if j.dataset}))
    scored = [r for r in results if r.key in force_field]
    rows = [
        RawForceFieldRow(
            model=r.model,
            dataset=force_field[r.key].dataset or "",
            set_name=force_field[r.key].instance.set_name,
            energy_rmse_per_atom=r.metric("energy_rmse_per_atom"),
            force_rmse=r.metric("force_rmse"),
            virial_rmse_per_atom=r.metric("virial_rmse_per_atom"),
        )
        for r in scored
        if r.status not in ("failed", "unsupported")
    ]
    scores = {s.model: s for s in score_force_field(models, rows, norms)}
    properties = {j.key: j for j in jobs if j.instance.category == "property"}
    property_norms = _property_normalizations(properties.values())
    property_results = [r for r in results if r.key in properties]
    property_rows = [_property_row(r) for r in property_results if r.status not in ("failed", "unsupported")]
    property_scores = {s.model: s for s in score_property(models, property_rows, property_norms)}
    applicability = {j.key: j for j in jobs if j.instance.category in APPLICABILITY_METRICS}
    table = []
    for model in models:
        own = [r for r in scored if r.model == model]
        own_properties = [r for r in property_results if r.model == model]
        own_applicability = [r for r in results if r.key in applicability and r.model == model]
        table.append(
            LeaderboardRow(
                rank=None,
                model=model,
                score=scores[model],
                property_score=property_scores[model] if property_norms else None,
                datasets={force_field[r.key].instance.set_name or "": _cell(r) for r in own},
                tasks={r.task: _property_cell(r) for r in own_properties},
                applicability=(
                    _applicability_cell(own_applicability, applicability) if applicability else None
                ),
                compute_seconds=sum(
                    r.provenance.compute_seconds for r in [*own, *own_properties, *own_applicability] if r.provenance
                ),
                wall_seconds=sum(
                    r.provenance.wall_seconds for r in [*own, *own_properties, *own_applicability] if r.provenance
                ),
            )
        )
    # LAMBench's order: M_FF, then M_PC; complete scores before partial ones; no score last.
    table.sort(key=_rank_key)
    for rank, row in enumerate(table, start=1):
        row.rank = rank if row.score.m_ff is not None and not row.score.partial else None
    return Leaderboard(
        campaign=campaign,
        created_at=datetime.now(UTC),
        domains=sorted({n.domain for n in norms}),
        datasets=norms,
        property_domains=sorted({n.domain for n in property_norms}),
        property_tasks=property_norms,
        rows=table,
        notes=notes,
    )


def _rank_key(row: LeaderboardRow) -> tuple[object, ...]:
    pc = row.property_score
    return (
        row.score.m_ff is None,
        row.score.partial,
        row.score.m_ff or 0.0,
        pc is None or pc.m_pc is None,
        pc.partial if pc else True,
        (pc.m_pc if pc else None) or 0.0,
        row.model,
    )


def _property_normalizations(jobs: Iterable[Job]) -> list[PropertyNormalization]:
    found: dict[str, PropertyNormalization] = {}
    for job in jobs:
        task = task_class(job.instance.task)
        dummy = task.dummy_values()
        found[job.instance.name] = PropertyNormalization(
            task=job.instance.name,
            domain=job.instance.domain,
            dummy={metric: dummy[metric] for metric in task.scored_metrics},
        )
    return sorted(found.values(), key=lambda n: (n.domain, n.task))


def _property_row(result: TaskResult) -> RawPropertyRow:
    skipped = sum(issue.kind == "skipped" for issue in result.issues)
    attempted = result.n_items - skipped
    return RawPropertyRow(
        model=result.model,
        task=result.task,
        metrics={name: metric.value for name, metric in result.metrics.items()},
        success_rate=result.n_scored / attempted if attempted else 0.0,
        coverage=attempted / result.n_items if result.n_items else 0.0,
    )


def _property_cell(result: TaskResult) -> PropertyCell:
    row = _property_row(result)  # the success rate M_PC divides by: skipped items are a coverage gap
    return PropertyCell(
        status=result.status.value,
        metrics={name: metric.value for name, metric in result.metrics.items()},
        units={name: metric.unit for name, metric in result.metrics.items()},
        success_rate=row.success_rate if result.status.value != "failed" else result.success_rate,
        coverage=row.coverage,
        error=result.error,
    )


def _applicability_cell(results: Sequence[TaskResult], jobs: dict[str, Job]) -> ApplicabilityCell:
    cell = ApplicabilityCell()
    for result in results:
        status_field, metrics = APPLICABILITY_METRICS[jobs[result.key].instance.category]
        setattr(cell, status_field, result.status.value)
        if result.status.value not in ("failed", "unsupported"):
            for metric in metrics:
                setattr(cell, metric, result.metric(metric))
    return cell


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _score_text(score: ForceFieldScore) -> str:
    if score.m_ff is None:
        return "missing"
    return f"{score.m_ff:.3f}" + (" (partial)" if score.partial else "")


def _dataset_text(cell: DatasetCell | None, metric: str, scale: float) -> str:
    if cell is None:
        return "missing"
    if cell.status in ("failed", "unsupported"):
        return cell.status
    value = getattr(cell, metric)
    text = "—" if value is None else f"{value * scale:.1f}"
    return text + ("*" if cell.status == "partial" else "")


def _score_columns(board: Leaderboard) -> list[tuple[str, list[str]]]:
    columns: list[tuple[str, list[str]]] = [
        ("Rank", [str(r.rank) if r.rank else "–" for r in board.rows]),
        ("Model", [r.model for r in board.rows]),
        ("M_FF ↓", [_score_text(r.score) for r in board.rows]),
    ]
    for domain in board.domains:
        columns.append((f"FF {domain.value}", [_fmt(r.score.domains.get(domain)) for r in board.rows]))
    if board.property_tasks:
        columns.append(("M_PC ↓", [_property_text(r.property_score) for r in board.rows]))
        for domain in board.property_domains:
            values = [_fmt(r.property_score.domains.get(domain) if r.property_score else None) for r in board.rows]
            columns.append((f"PC {domain.value}", values))
    if any(r.applicability is not None for r in board.rows):
        for title, metric, status, digits in (
            ("M_E ↑", "m_e", "efficiency_status", 3),
            ("η̄ (µs/atom)", "eta_us_per_atom", "efficiency_status", 1),
            ("M_IS ↓", "m_is", "stability_status", 3),
            ("MD survival", "survival_fraction", "stability_status", 2),
        ):
            columns.append((title, [_applicability_text(r.applicability, metric, status, digits) for r in board.rows]))
    columns.append(("Model time (s)", [f"{r.compute_seconds:.1f}" for r in board.rows]))
    return columns


def _applicability_text(cell: ApplicabilityCell | None, metric: str, status_field: str, digits: int = 3) -> str:
    if cell is None:
        return "missing"
    status = getattr(cell, status_field)
    if status in ("missing", "failed", "unsupported"):
        return status
    value = getattr(cell, metric)
    return "—" if value is None else f"{value:.{digits}f}"


def _property_text(score: PropertyScore | None) -> str:
    if score is None or score.m_pc is None:
        return "missing"
    return f"{score.m_pc:.3f}" + (" (partial)" if score.partial else "")


def _property_columns(board: Leaderboard) -> list[tuple[str, list[str]]]:
    """One row per property metric: the raw values behind M_PC, with their units."""
    labels: list[str] = []
    cells: dict[str, list[str]] = {row.model: [] for row in board.rows}
    for norm in board.property_tasks:
        for metric in norm.dummy:
            unit = next((r.tasks[norm.task].units.get(metric) for r in board.rows if norm.task in r.tasks), "")
            labels.append(f"{norm.task} {metric} ({unit}); dummy {norm.dummy[metric]:.3g}")
            for row in board.rows:
                cell = row.tasks.get(norm.task)
                if cell is None:
                    cells[row.model].append("missing")
                elif cell.status in ("failed", "unsupported"):
                    cells[row.model].append(cell.status)
                else:
                    value = cell.metrics.get(metric)
                    text = "—" if value is None else f"{value:.3g}"
                    cells[row.model].append(text + ("*" if cell.status == "partial" else ""))
        labels.append(f"{norm.task} success rate (coverage)")
        for row in board.rows:
            cell = row.tasks.get(norm.task)
            if cell is None or cell.success_rate is None:
                cells[row.model].append("—")
            else:
                coverage = "" if cell.coverage in (None, 1.0) else f" ({cell.coverage:.2f})"
                cells[row.model].append(f"{cell.success_rate:.2f}{coverage}")
    return [("Task metric", labels), *((row.model, cells[row.model]) for row in board.rows)]


_ERROR_COLUMNS = (
    ("E RMSE (meV/atom)", "energy_rmse_per_atom"),
    ("F RMSE (meV/Å)", "force_rmse"),
    ("V RMSE (meV/atom)", "virial_rmse_per_atom"),
)


def _error_columns(board: Leaderboard) -> list[tuple[str, list[str]]]:
    """One row per (benchmark set, error): the raw errors behind the normalized scores."""
    labels: list[str] = []
    cells: dict[str, list[str]] = {row.model: [] for row in board.rows}
    for set_name in board.set_names():
        has_virial = any(n.virial_rmse_per_atom is not None for n in board.datasets if n.benchmark_set == set_name)
        for title, metric in _ERROR_COLUMNS[: 3 if has_virial else 2]:
            labels.append(f"{set_name} {title}")
            for row in board.rows:
                cells[row.model].append(_dataset_text(row.datasets.get(set_name), metric, MILLI))
    return [("Set and error", labels), *((row.model, cells[row.model]) for row in board.rows)]


def _footnotes(board: Leaderboard) -> list[str]:
    lines = [
        "M_FF and M_PC: 0 is perfect, 1 is the composition-only dummy model (errors capped at the dummy's; "
        "M_PC's are divided by each task's success rate). Ranked by M_FF, then M_PC.",
        "M_E = 100 µs/atom ÷ η̄ (η̄: mean model time per atom over the efficiency task's size window; higher is "
        "faster, on the hardware in the results' provenance); M_IS: mean over MD systems of "
        "clip(log10(|drift| / 5e-4 eV/atom/ps), 0, 5), a failed run counting 5.",
        "`*` some structures were skipped or failed (see the JSON for reasons); `failed`, `missing` and "
        "`unsupported` (the model lacks the set's elements) are gaps, never zeros, and make a score partial.",
    ]
    for row in board.rows:
        for dataset, cell in row.datasets.items():
            if cell.error and cell.status == "failed":
                lines.append(f"{row.model} on {dataset}: {cell.error}")
        for task, property_cell in row.tasks.items():
            if property_cell.error and property_cell.status == "failed":
                lines.append(f"{row.model} on {task}: {property_cell.error}")
        lines.extend(f"{row.model}: {note}" for note in row.score.notes)
    lines.extend(board.notes)
    return lines


def _markdown_table(columns: list[tuple[str, list[str]]]) -> str:
    height = len(columns[0][1]) if columns else 0
    header = "| " + " | ".join(name for name, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(values[i] for _, values in columns) + " |" for i in range(height)]
    return "\n".join([header, rule, *body])


def to_markdown(board: Leaderboard) -> str:
    notes = "\n".join(f"- {line}" for line in _footnotes(board))
    return (
        f"## lambench leaderboard — campaign {board.campaign}\n\n{_markdown_table(_score_columns(board))}\n\n"
        f"### Errors per benchmark set\n\n{_markdown_table(_error_columns(board))}\n\n"
        + (f"### Property tasks\n\n{_markdown_table(_property_columns(board))}\n\n" if board.property_tasks else "")
        + f"{notes}\n"
    )


def _html_table(columns: list[tuple[str, list[str]]]) -> str:
    escape = html.escape
    height = len(columns[0][1]) if columns else 0
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(values[i])}</td>" for _, values in columns) + "</tr>" for i in range(height)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(board: Leaderboard) -> str:
    escape = html.escape
    notes = "".join(f"<li>{escape(line)}</li>" for line in _footnotes(board))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>lambench leaderboard — {escape(board.campaign)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}"
        "td:nth-child(2),th:nth-child(2){text-align:left}th{background:#f3f3f3}</style></head><body>"
        f"<h1>lambench leaderboard</h1><p>Campaign {escape(board.campaign)}, "
        f"{escape(board.created_at.isoformat(timespec='seconds'))}</p>"
        f"{_html_table(_score_columns(board))}<h2>Errors per benchmark set</h2>{_html_table(_error_columns(board))}"
        + (f"<h2>Property tasks</h2>{_html_table(_property_columns(board))}" if board.property_tasks else "")
        + f"<ul>{notes}</ul></body></html>\n"
    )
