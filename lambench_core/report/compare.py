"""Compare two published runs: what changed, and whether the change exceeds the bootstrap interval.

A run is a published folder (or its parent, holding site/), local or s3://bucket/prefix: its
rankings.json (scores with intervals) and results.json (every job's outcome and raw metric). The
nightly run compares itself with the previous night this way.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.errors import LambenchError
from lambench_core.metrics.scoring import Estimate, ModelScores, Scoreboard
from lambench_core.report.collect import JobSummary
from lambench_core.report.formatting import estimate as estimate_text
from lambench_core.report.markdown import Columns, table
from lambench_core.results.store import open_backend

HIGHER_IS_BETTER = {"m_e", "survival_fraction", "max_atoms"}
LOWER_IS_BETTER = {"mae", "normalized_mae", "eta_us_per_atom", "m_is"}
Verdict = Literal["regression", "improvement", "within interval", "changed", "unchanged", "new", "gone"]


class PublishedRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: str
    campaign: str
    scoreboard: Scoreboard
    jobs: list[JobSummary]
    normalized_metrics: set[tuple[str, str]] = Field(description="(benchmark, metric) pairs that carry a dummy value")


def load_run(location: str) -> PublishedRun:
    backend = open_backend(location)
    for folder in ("", "site/"):
        rankings = backend.read_bytes(f"{folder}rankings.json")
        if rankings is None:
            continue
        results = json.loads(backend.read_bytes(f"{folder}results.json") or b"{}")
        normalized = {(r["benchmark"], r["metric"]) for r in results.get("metrics", []) if r.get("dummy") is not None}
        return PublishedRun(
            location=location,
            campaign=str(results.get("campaign", location)),
            scoreboard=Scoreboard.model_validate_json(rankings),
            jobs=[JobSummary.model_validate(job) for job in results.get("jobs", [])],
            normalized_metrics=normalized,
        )
    raise LambenchError(f"{location}: no rankings.json there or in site/ (give a published run folder)")


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    metric: str
    before: Estimate | None
    after: Estimate | None
    delta: float | None
    verdict: Verdict


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_a: str
    run_b: str
    changes: list[Change]
    new_jobs: list[str]
    removed_jobs: list[str]
    failed_jobs: list[str] = Field(description="Failed in B; '(newly)' where A had a result")
    new_models: list[str]
    removed_models: list[str]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]


def _verdict(before: Estimate | None, after: Estimate | None, lower_is_better: bool | None) -> Verdict:
    if before is None or before.value is None:
        return "unchanged" if after is None or after.value is None else "new"
    if after is None or after.value is None:
        return "gone"
    if after.value == before.value:
        return "unchanged"
    if before.low is None or before.high is None:
        return "changed"
    if before.low <= after.value <= before.high:
        return "within interval"
    if lower_is_better is None:
        return "changed"
    worse = after.value > before.value if lower_is_better else after.value < before.value
    return "regression" if worse else "improvement"


def _estimates(scores: ModelScores, normalized: set[tuple[str, str]]) -> dict[str, tuple[Estimate, bool | None]]:
    found: dict[str, tuple[Estimate, bool | None]] = {
        "M_FF": (scores.m_ff, True),
        "M_PC": (scores.m_pc, True),
        "M_AD": (scores.m_ad, True),
        "M_E": (scores.m_e, False),
        "M_IS": (scores.m_is, True),
    }
    found |= {f"FF {d.value}": (x, True) for d, x in scores.ff_domains.items()}
    found |= {f"PC {d.value}": (x, True) for d, x in scores.pc_domains.items()}
    for benchmark, metrics in scores.metrics.items():
        for metric, estimate in metrics.items():
            lower = metric in LOWER_IS_BETTER or (benchmark, metric) in normalized
            direction = False if metric in HIGHER_IS_BETTER else True if lower else None
            found[f"{benchmark}/{metric}"] = (estimate, direction)
    return found


def compare_runs(a: PublishedRun, b: PublishedRun) -> Comparison:
    before = {s.model: s for s in a.scoreboard.models}
    after = {s.model: s for s in b.scoreboard.models}
    changes = []
    for model in [m for m in after if m in before]:
        old = _estimates(before[model], a.normalized_metrics)
        new = _estimates(after[model], b.normalized_metrics)
        for name in dict.fromkeys([*new, *old]):
            x, direction = old.get(name, (None, None))
            y, direction_b = new.get(name, (None, None))
            delta = y.value - x.value if x and y and x.value is not None and y.value is not None else None
            verdict = _verdict(x, y, direction if direction is not None else direction_b)
            if verdict != "unchanged":
                changes.append(Change(model=model, metric=name, before=x, after=y, delta=delta, verdict=verdict))
    jobs_a = {(j.model, j.task): j for j in a.jobs}
    jobs_b = {(j.model, j.task): j for j in b.jobs}
    failed = []
    for key, job in sorted(jobs_b.items()):
        if job.status == "failed":
            previous = jobs_a.get(key)
            newly = previous is not None and previous.status != "failed"
            failed.append(f"{key[0]} × {key[1]}{' (newly)' if newly else ''}: {job.error or 'no reason recorded'}")
    return Comparison(
        run_a=a.location,
        run_b=b.location,
        changes=changes,
        new_jobs=[f"{m} × {t}" for m, t in sorted(jobs_b.keys() - jobs_a.keys())],
        removed_jobs=[f"{m} × {t}" for m, t in sorted(jobs_a.keys() - jobs_b.keys())],
        failed_jobs=failed,
        new_models=sorted(after.keys() - before.keys()),
        removed_models=sorted(before.keys() - after.keys()),
    )


def _text(x: Estimate | None) -> str:
    return "—" if x is None else estimate_text(x)


def comparison_markdown(c: Comparison) -> str:
    order = ("regression", "improvement", "changed", "new", "gone", "within interval")
    changes = sorted(c.changes, key=lambda x: (order.index(x.verdict), x.model, x.metric))
    lines = [
        f"## lambench comparison\n\nA: {c.run_a}\n\nB: {c.run_b}\n",
        f"{len(c.regressions)} regression(s) beyond A's bootstrap interval; "
        f"{sum(x.verdict == 'improvement' for x in c.changes)} improvement(s); "
        f"{sum(x.verdict == 'within interval' for x in c.changes)} change(s) within the interval.\n",
    ]
    if changes:
        columns: Columns = [
            ("Model", [x.model for x in changes]),
            ("Metric", [x.metric for x in changes]),
            ("A", [_text(x.before) for x in changes]),
            ("B", [_text(x.after) for x in changes]),
            ("Δ", ["—" if x.delta is None else f"{x.delta:+.4g}" for x in changes]),
            ("Verdict", [x.verdict for x in changes]),
        ]
        lines.append(table(columns) + "\n")
    for title, items in (
        ("New models", c.new_models),
        ("Removed models", c.removed_models),
        ("New jobs", c.new_jobs),
        ("Removed jobs", c.removed_jobs),
        ("Failed jobs in B", c.failed_jobs),
    ):
        if items:
            lines.append(f"### {title}\n\n" + "\n".join(f"- {item}" for item in items) + "\n")
    return "\n".join(lines)
