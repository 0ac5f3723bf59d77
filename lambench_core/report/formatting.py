"""How numbers, intervals and gaps are written, shared by the Markdown summary and the site."""

from __future__ import annotations

import html

from lambench_core.categories import Category
from lambench_core.metrics.scoring import Estimate, ModelScores
from lambench_core.metrics.table import RawMetric
from lambench_core.report.collect import JobSummary

GAP = "—"


def plot_text(text: object) -> str:
    """User text in a Plotly name, label or hover text: Plotly renders a little HTML there and decodes
    &lt; &gt; &amp; but not &quot;."""
    return html.escape(str(text), quote=False)


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return GAP
    if abs(value) >= 1e4:  # timings in µs/atom and the like: whole numbers, every digit kept
        return f"{value:.0f}"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def estimate(value: Estimate, digits: int = 3) -> str:
    if value.value is None:
        return GAP
    if value.low is None or value.high is None:
        return number(value.value, digits)
    return f"{number(value.value, digits)} [{number(value.low, digits)}, {number(value.high, digits)}]"


def rank(scores: ModelScores) -> str:
    if scores.baseline:
        return "ref."
    if scores.rank is None:
        return "–"
    spread = ""
    if scores.rank_low is not None and scores.rank_high is not None and scores.rank_low != scores.rank_high:
        spread = f" ({scores.rank_low}–{scores.rank_high})"
    return f"{scores.rank}{'=' if scores.tied_with else ''}{spread}"


def score(value: Estimate, partial: bool, digits: int = 3, gap: str = "missing") -> str:
    if value.value is None:
        return gap
    return estimate(value, digits) + (" (partial)" if partial else "")


def cell(row: RawMetric | None, job: JobSummary | None, scale: float = 1.0, digits: int = 3) -> str:
    """A raw metric, or the reason it is absent: missing (never ran), failed, unsupported."""
    status = row.status if row is not None else (job.status if job is not None else "missing")
    if status in ("missing", "failed", "unsupported"):
        return status
    if row is None or row.value is None:
        return GAP
    return number(row.value * scale, digits) + ("*" if status == "partial" else "")


def gap_for(jobs: list[JobSummary], model: str, kind: Category) -> str:
    """Why a score is absent: every job of that kind failed or was unsupported, or results are missing."""
    return gap_of({j.status for j in jobs if j.model == model and j.kind == kind})


def gap_of(statuses: set[str] | frozenset[str]) -> str:
    """`gap_for` from the statuses of the model's jobs of that kind (see `BoardLookup.job_statuses`)."""
    if statuses and statuses <= {"failed", "unsupported"}:
        return "unsupported" if statuses == {"unsupported"} else "failed"
    return "missing"
