"""Compare two published runs: what changed, and whether the change exceeds the bootstrap interval.

A run is a published folder (or its parent, holding site/), local or s3://bucket/prefix: its
rankings.json (scores with intervals), results.json (every job's outcome and raw metric) and, where
present, leaderboard.json (each benchmark's definition: task, version, parameters, datasets and
their sha256, dummy values). The nightly run compares itself with the previous night this way.

Only like is compared with like:
- a score (M_FF, M_PC, M_AD, M_E, M_IS and the domain columns) is compared only when both runs
  scored it on the same benchmarks, defined the same way (same version, parameters, datasets and
  normalizing values), and the model's score covers the same benchmarks in both; otherwise the
  change is `not comparable`, and what differs is listed, never called a regression;
- a benchmark's raw metric only when both runs have it (else `new` or `gone`) and the benchmark is
  defined the same way in both;
- a difference within the tolerance (relative `REL_TOL`, absolute `ABS_TOL`: float noise, not a
  change) is `unchanged`; a change counts as a regression or improvement only when the new value lies
  beyond the baseline's bootstrap interval (B's interval where A has none); without any interval
  it is `changed`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.errors import LambenchError
from lambench_core.metrics.scoring import Estimate, ModelScores, Scoreboard
from lambench_core.report.collect import JobSummary
from lambench_core.report.formatting import estimate as estimate_text
from lambench_core.report.markdown import Columns, table
from lambench_core.results.store import open_backend

HIGHER_IS_BETTER = {"m_e", "survival_fraction", "max_atoms"}
LOWER_IS_BETTER = {"mae", "normalized_mae", "eta_us_per_atom", "m_is"}
REL_TOL = 1e-9
ABS_TOL = 1e-12
Verdict = Literal[
    "regression", "improvement", "within interval", "changed", "unchanged", "new", "gone", "not comparable"
]
SCORE_KINDS = {"M_AD": "adaptability", "M_E": "efficiency", "M_IS": "stability"}
SCORE_METRICS = {"M_AD": "normalized_mae", "M_E": "m_e", "M_IS": "m_is"}


class BenchmarkDefinition(BaseModel):
    """What a benchmark measured in one run; None where the run does not say (older runs)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str | None = None
    domain: str | None = None
    task: str | None = None
    version: str | None = None
    params: dict[str, Any] | None = None
    datasets: dict[str, str | None] = Field(default_factory=dict, description="dataset → sha256 (None: unknown)")
    dummies: dict[str, float] = Field(default_factory=dict, description="metric → the dummy value normalizing it")


class PublishedRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: str
    campaign: str
    scoreboard: Scoreboard
    jobs: list[JobSummary]
    normalized_metrics: set[tuple[str, str]] = Field(description="(benchmark, metric) pairs that carry a dummy value")
    benchmarks: dict[str, BenchmarkDefinition] = Field(default_factory=dict)


def _definitions(leaderboard: dict[str, Any] | None, results: dict[str, Any]) -> dict[str, BenchmarkDefinition]:
    """From leaderboard.json's benchmarks where published, else from results.json's rows and jobs."""
    if leaderboard and isinstance(leaderboard.get("benchmarks"), list):
        found = {}
        for info in leaderboard["benchmarks"]:
            metrics = info.get("metrics") or {}
            found[info["name"]] = BenchmarkDefinition(
                name=info["name"],
                kind=info.get("kind"),
                domain=info.get("domain"),
                task=info.get("task"),
                version=info.get("version"),
                params=info.get("params"),
                datasets={d["name"]: d.get("sha256") for d in info.get("datasets") or []},
                dummies={m: x["dummy"] for m, x in metrics.items() if x.get("dummy") is not None},
            )
        return found
    digests = {(j.get("benchmark"), j.get("dataset")): j.get("dataset_sha256") for j in results.get("jobs", [])}
    tasks = {j.get("benchmark"): j.get("task") for j in results.get("jobs", [])}
    found = {}
    for row in results.get("metrics", []):
        name = row["benchmark"]
        definition = found.setdefault(
            name,
            BenchmarkDefinition(name=name, kind=row.get("kind"), domain=row.get("domain"), task=tasks.get(name)),
        )
        if row.get("dataset"):
            definition.datasets.setdefault(row["dataset"], digests.get((name, row["dataset"])))
        if row.get("dummy") is not None:
            definition.dummies.setdefault(row["metric"], row["dummy"])
    return found


def load_run(location: str) -> PublishedRun:
    backend = open_backend(location)
    for folder in ("", "site/"):
        rankings = backend.read_bytes(f"{folder}rankings.json")
        if rankings is None:
            continue
        results = json.loads(backend.read_bytes(f"{folder}results.json") or b"{}")
        leaderboard_bytes = backend.read_bytes(f"{folder}leaderboard.json")
        leaderboard = json.loads(leaderboard_bytes) if leaderboard_bytes else None
        normalized = {(r["benchmark"], r["metric"]) for r in results.get("metrics", []) if r.get("dummy") is not None}
        return PublishedRun(
            location=location,
            campaign=str(results.get("campaign", location)),
            scoreboard=Scoreboard.model_validate_json(rankings),
            jobs=[JobSummary.model_validate(job) for job in results.get("jobs", [])],
            normalized_metrics=normalized,
            benchmarks=_definitions(leaderboard, results),
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
    note: str | None = Field(default=None, description="Why a change was not compared (what differs)")


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
    differences: list[str] = Field(
        default_factory=list, description="Scores and benchmarks the runs define differently: not compared"
    )
    tolerance: dict[str, float] = Field(default_factory=lambda: {"relative": REL_TOL, "absolute": ABS_TOL})

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]


def same(a: float, b: float) -> bool:
    """Equal within the noise floor: |a − b| ≤ max(ABS_TOL, REL_TOL · max(|a|, |b|))."""
    if a == b:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))


def _inside(value: float, estimate: Estimate) -> bool | None:
    """Whether value lies in the estimate's interval (its bounds widened by the tolerance); None
    without an interval."""
    if estimate.low is None or estimate.high is None:
        return None
    return (estimate.low <= value or same(value, estimate.low)) and (
        value <= estimate.high or same(value, estimate.high)
    )


def _verdict(before: Estimate | None, after: Estimate | None, lower_is_better: bool | None) -> Verdict:
    if before is None or before.value is None:
        return "unchanged" if after is None or after.value is None else "new"
    if after is None or after.value is None:
        return "gone"
    if same(after.value, before.value):
        return "unchanged"
    inside = _inside(after.value, before)
    if inside is None:
        inside = _inside(before.value, after)  # A has no interval: is A's value inside B's?
    if inside is None:
        return "changed"
    if inside:
        return "within interval"
    if lower_is_better is None:
        return "changed"
    worse = after.value > before.value if lower_is_better else after.value < before.value
    return "regression" if worse else "improvement"


@dataclass(frozen=True)
class _Entry:
    """One comparable number of one model in one run: its estimate and direction, the run-level
    benchmarks it is computed on (`scope`, a name for the difference report) and which of them this
    model's value actually covers."""

    estimate: Estimate
    direction: bool | None
    scope: tuple[str, frozenset[str]]
    covered: frozenset[str]


def _normalized_covered(normalized: dict[str, dict[str, float | None]], sets: frozenset[str]) -> frozenset[str]:
    return frozenset(
        f"{name}/{label}" for name in sets for label, x in normalized.get(name, {}).items() if x is not None
    )


def _entries(scores: ModelScores, run: PublishedRun, scopes: dict[str, frozenset[str]]) -> dict[str, _Entry]:
    ff = scores.force_field.normalized
    pc = scores.property.normalized if scores.property is not None else {}
    found: dict[str, _Entry] = {}

    def add(name: str, estimate: Estimate, direction: bool | None, covered: frozenset[str]) -> None:
        found[name] = _Entry(estimate, direction, (name, scopes[name]), covered)

    add("M_FF", scores.m_ff, True, _normalized_covered(ff, scopes["M_FF"]))
    add("M_PC", scores.m_pc, True, _normalized_covered(pc, scopes["M_PC"]))
    for name in ("M_AD", "M_E", "M_IS"):
        metric = SCORE_METRICS[name]
        covered = frozenset(b for b in scopes[name] if metric in scores.metrics.get(b, {}))
        add(name, getattr(scores, name.lower()), name != "M_E", covered)
    for domain, estimate in scores.ff_domains.items():
        name = f"FF {domain.value}"
        scopes.setdefault(name, _domain_scope(run, scopes["M_FF"], domain.value))
        add(name, estimate, True, _normalized_covered(ff, scopes[name]))
    for domain, estimate in scores.pc_domains.items():
        name = f"PC {domain.value}"
        scopes.setdefault(name, _domain_scope(run, scopes["M_PC"], domain.value))
        add(name, estimate, True, _normalized_covered(pc, scopes[name]))
    for benchmark, metrics in scores.metrics.items():
        for metric, estimate in metrics.items():
            lower = metric in LOWER_IS_BETTER or (benchmark, metric) in run.normalized_metrics
            direction = False if metric in HIGHER_IS_BETTER else True if lower else None
            found[f"{benchmark}/{metric}"] = _Entry(
                estimate, direction, (benchmark, frozenset([benchmark])), frozenset()
            )
    return found


def _domain_scope(run: PublishedRun, members: frozenset[str], domain: str) -> frozenset[str]:
    return frozenset(b for b in members if b in run.benchmarks and run.benchmarks[b].domain == domain)


def _scopes(run: PublishedRun) -> dict[str, frozenset[str]]:
    """Score → the benchmarks it is computed on in this run (every model's, not one model's)."""
    ff: set[str] = set()
    pc: set[str] = set()
    for scores in run.scoreboard.models:
        ff |= scores.force_field.normalized.keys() | set(scores.force_field.missing)
        if scores.property is not None:
            pc |= scores.property.normalized.keys() | set(scores.property.missing)
    scopes = {"M_FF": frozenset(ff), "M_PC": frozenset(pc)}
    for name, kind in SCORE_KINDS.items():
        scopes[name] = frozenset(b for b, d in run.benchmarks.items() if d.kind == kind)
    return scopes


def _listed(items: set[str] | frozenset[str], limit: int = 6) -> str:
    ordered = sorted(items)
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _definition_differences(a: BenchmarkDefinition, b: BenchmarkDefinition) -> list[str]:
    """How one benchmark's definition differs between the runs; what either run does not say is not
    counted as a difference."""
    found = []
    for field in ("kind", "domain", "task", "version"):
        x, y = getattr(a, field), getattr(b, field)
        if x is not None and y is not None and x != y:
            found.append(f"{field} {x or '(none)'} → {y or '(none)'}")
    if a.params is not None and b.params is not None and a.params != b.params:
        keys = {k for k in a.params.keys() | b.params.keys() if a.params.get(k) != b.params.get(k)}
        found.append(f"params differ ({_listed(keys)})")
    if a.datasets and b.datasets and a.datasets.keys() != b.datasets.keys():  # a run naming none says nothing
        only_a, only_b = a.datasets.keys() - b.datasets.keys(), b.datasets.keys() - a.datasets.keys()
        parts = [f"only in A: {_listed(only_a)}" if only_a else "", f"only in B: {_listed(only_b)}" if only_b else ""]
        found.append("datasets differ (" + "; ".join(p for p in parts if p) + ")")
    for name in sorted(a.datasets.keys() & b.datasets.keys()):
        x, y = a.datasets[name], b.datasets[name]
        if x and y and x != y:
            found.append(f"dataset {name} sha256 {x[:12]} → {y[:12]}")
    for metric in sorted(a.dummies.keys() | b.dummies.keys()):
        x, y = a.dummies.get(metric), b.dummies.get(metric)
        if x is None or y is None or not same(x, y):
            found.append(f"dummy {metric} {x} → {y}")
    return found


def _scope_difference(a: frozenset[str], b: frozenset[str], run_a: PublishedRun, run_b: PublishedRun) -> str | None:
    """What differs between the benchmarks a score (or a benchmark's metrics) is computed on; None if nothing."""
    parts = []
    if a - b:
        parts.append(f"only in A: {_listed(a - b)}")
    if b - a:
        parts.append(f"only in B: {_listed(b - a)}")
    redefined = []
    for benchmark in sorted(a & b):
        x, y = run_a.benchmarks.get(benchmark), run_b.benchmarks.get(benchmark)
        if x is not None and y is not None and (what := _definition_differences(x, y)):
            redefined.append(f"{benchmark} ({', '.join(what)})")
    if redefined:
        parts.append("defined differently: " + "; ".join(redefined))
    return "; ".join(parts) if parts else None


def _coverage_difference(a: frozenset[str], b: frozenset[str]) -> str | None:
    if a == b:
        return None
    parts = [f"only A has {_listed(a - b)}" if a - b else "", f"only B has {_listed(b - a)}" if b - a else ""]
    return "the model's values cover different benchmarks: " + "; ".join(p for p in parts if p)


def compare_runs(a: PublishedRun, b: PublishedRun) -> Comparison:
    before = {s.model: s for s in a.scoreboard.models}
    after = {s.model: s for s in b.scoreboard.models}
    scopes_a, scopes_b = _scopes(a), _scopes(b)
    scope_notes: dict[str, str | None] = {}

    def scope_note(name: str, x: frozenset[str], y: frozenset[str]) -> str | None:
        if name not in scope_notes:
            scope_notes[name] = _scope_difference(x, y, a, b)
        return scope_notes[name]

    changes = []
    for model in [m for m in after if m in before]:
        old = _entries(before[model], a, scopes_a)
        new = _entries(after[model], b, scopes_b)
        for name in dict.fromkeys([*new, *old]):
            x_entry, y_entry = old.get(name), new.get(name)
            x = x_entry.estimate if x_entry else None
            y = y_entry.estimate if y_entry else None
            direction = (
                x_entry.direction
                if x_entry and x_entry.direction is not None
                else (y_entry.direction if y_entry else None)
            )
            delta = y.value - x.value if x and y and x.value is not None and y.value is not None else None
            verdict = _verdict(x, y, direction)
            note = None
            if verdict not in ("unchanged", "new", "gone") and x_entry and y_entry:
                note = scope_note(x_entry.scope[0], x_entry.scope[1], y_entry.scope[1])
                if note is None:
                    note = _coverage_difference(x_entry.covered, y_entry.covered)
                if note is not None:
                    verdict = "not comparable"
            if verdict != "unchanged":
                changes.append(
                    Change(model=model, metric=name, before=x, after=y, delta=delta, verdict=verdict, note=note)
                )
    for name in scopes_a.keys() | scopes_b.keys():  # also scores that no model of both runs has
        scope_note(name, scopes_a.get(name, frozenset()), scopes_b.get(name, frozenset()))
    for name in a.benchmarks.keys() & b.benchmarks.keys():  # and benchmarks redefined, changed or not
        scope_note(name, frozenset([name]), frozenset([name]))
    differences = [f"{name} differs between the runs: {note}" for name, note in scope_notes.items() if note]
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
        differences=sorted(differences),
    )


def _text(x: Estimate | None) -> str:
    return "—" if x is None else estimate_text(x)


def comparison_markdown(c: Comparison) -> str:
    order = ("regression", "improvement", "changed", "not comparable", "new", "gone", "within interval")
    changes = sorted(c.changes, key=lambda x: (order.index(x.verdict), x.model, x.metric))
    lines = [
        f"## lambench comparison\n\nA: {c.run_a}\n\nB: {c.run_b}\n",
        f"{len(c.regressions)} regression(s) beyond A's bootstrap interval; "
        f"{sum(x.verdict == 'improvement' for x in c.changes)} improvement(s); "
        f"{sum(x.verdict == 'within interval' for x in c.changes)} change(s) within the interval; "
        f"{sum(x.verdict == 'not comparable' for x in c.changes)} not comparable (the runs differ). "
        f"Differences within {c.tolerance['relative']:g} relative or {c.tolerance['absolute']:g} absolute "
        "are unchanged.\n",
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
        if any(x.note for x in changes):
            columns.append(("Why", [x.note or "" for x in changes]))
        lines.append(table(columns) + "\n")
    for title, items in (
        ("Not compared: the runs differ", c.differences),
        ("New models", c.new_models),
        ("Removed models", c.removed_models),
        ("New jobs", c.new_jobs),
        ("Removed jobs", c.removed_jobs),
        ("Failed jobs in B", c.failed_jobs),
    ):
        if items:
            lines.append(f"### {title}\n\n" + "\n".join(f"- {item}" for item in items) + "\n")
    return "\n".join(lines)
