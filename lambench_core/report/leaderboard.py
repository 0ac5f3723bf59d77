"""The leaderboard: stored results → scores → Markdown, HTML and JSON."""

from __future__ import annotations

import html
from collections.abc import Sequence
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
from lambench_core.results.record import TaskResult

MILLI = 1000.0


class DatasetCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    energy_rmse_per_atom: float | None = None
    force_rmse: float | None = None
    virial_rmse_per_atom: float | None = None
    success_rate: float | None = None
    error: str | None = None


class LeaderboardRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int | None
    model: str
    score: ForceFieldScore
    datasets: dict[str, DatasetCell]
    compute_seconds: float
    wall_seconds: float


class Leaderboard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: str
    created_at: datetime
    domains: list[Domain]
    datasets: list[DatasetNormalization]
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
    table = []
    for model in models:
        own = [r for r in scored if r.model == model]
        table.append(
            LeaderboardRow(
                rank=None,
                model=model,
                score=scores[model],
                datasets={force_field[r.key].instance.set_name or "": _cell(r) for r in own},
                compute_seconds=sum(r.provenance.compute_seconds for r in own if r.provenance),
                wall_seconds=sum(r.provenance.wall_seconds for r in own if r.provenance),
            )
        )
    # Complete scores first, by M_FF; partial ones after them; models with no score last.
    table.sort(key=lambda row: (row.score.m_ff is None, row.score.partial, row.score.m_ff or 0.0, row.model))
    for rank, row in enumerate(table, start=1):
        row.rank = rank if row.score.m_ff is not None and not row.score.partial else None
    return Leaderboard(
        campaign=campaign,
        created_at=datetime.now(UTC),
        domains=sorted({n.domain for n in norms}),
        datasets=norms,
        rows=table,
        notes=notes,
    )


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
        columns.append((domain.value, [_fmt(r.score.domains.get(domain)) for r in board.rows]))
    columns.append(("Model time (s)", [f"{r.compute_seconds:.1f}" for r in board.rows]))
    return columns


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
        "M_FF: 0 is perfect, 1 is the composition-only dummy model (errors capped at the dummy's).",
        "`*` some structures were skipped or failed (see the JSON for reasons); `failed`, `missing` and "
        "`unsupported` (the model lacks the set's elements) are gaps, never zeros, and make a score partial.",
    ]
    for row in board.rows:
        for dataset, cell in row.datasets.items():
            if cell.error and cell.status == "failed":
                lines.append(f"{row.model} on {dataset}: {cell.error}")
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
        f"### Errors per benchmark set\n\n{_markdown_table(_error_columns(board))}\n\n{notes}\n"
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
        f"<ul>{notes}</ul></body></html>\n"
    )
