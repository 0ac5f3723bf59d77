"""Every score of the leaderboard from a MetricsTable, with bootstrap intervals, ranks and ties.

A pure function of the table: M_FF and M_PC go through the same scoring functions for the point
values and for every bootstrap replicate (the whole chain — normalization, capping, geometric and
domain means — is recomputed per replicate), so their intervals carry the propagated uncertainty of
every structure-level error. Ranking follows LAMBench: M_FF, then M_PC, M_IS, M_E.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import (
    LABEL_METRICS,
    DatasetNormalization,
    ForceFieldScore,
    RawForceFieldRow,
    score_force_field,
)
from lambench_core.metrics.bootstrap import DEFAULT_CONFIDENCE, interval
from lambench_core.metrics.property import PropertyNormalization, PropertyScore, RawPropertyRow, score_property
from lambench_core.metrics.table import MetricsTable, RawMetric

RANKING_ORDER = ("m_ff", "m_pc", "m_is", "m_e")
APPLICABILITY = {"m_e": (Category.EFFICIENCY, "m_e"), "m_is": (Category.STABILITY, "m_is")}
ADAPTABILITY_METRIC = "normalized_mae"  # per task: clip(MAE ÷ MAE of the training mean, 0, 1)


class Estimate(BaseModel):
    """A value and its bootstrap interval (None where no replicates exist)."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    low: float | None = None
    high: float | None = None

    def overlaps(self, other: Estimate) -> bool:
        if None in (self.low, self.high, other.low, other.high):
            return self.value is not None and self.value == other.value
        return self.low <= other.high and other.low <= self.high  # type: ignore[operator]


class ModelScores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    rank: int | None = Field(description="Only models with a complete M_FF are ranked")
    rank_low: int | None = None
    rank_high: int | None = None
    tied_with: list[str] = Field(default_factory=list, description="Ranked models whose M_FF interval overlaps")
    m_ff: Estimate
    m_ff_partial: bool
    ff_domains: dict[Domain, Estimate]
    m_pc: Estimate
    m_pc_partial: bool
    pc_domains: dict[Domain, Estimate]
    m_ad: Estimate = Field(default_factory=lambda: Estimate(value=None))
    m_ad_partial: bool = False
    m_e: Estimate
    m_is: Estimate
    metrics: dict[str, dict[str, Estimate]] = Field(description="benchmark → raw metric → estimate")
    force_field: ForceFieldScore
    property: PropertyScore | None


class Scoreboard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confidence: float
    n_replicates: int
    order: list[str] = Field(default_factory=lambda: list(RANKING_ORDER))
    force_field_domains: list[Domain]
    property_domains: list[Domain]
    models: list[ModelScores] = Field(description="In ranking order")


def _force_field_inputs(
    rows: Sequence[RawMetric],
    pick: Callable[[RawMetric], float | None],
    pick_dummy: Callable[[RawMetric], float | None],
) -> tuple[list[RawForceFieldRow], list[DatasetNormalization]]:
    label_of = {metric: label for label, metric in LABEL_METRICS.items()}
    dummies: dict[str, dict[str, float]] = {}
    meta: dict[str, tuple[str, Domain]] = {}
    values: dict[tuple[str, str], dict[str, float | None]] = {}
    for row in rows:
        if row.kind != Category.FORCE_FIELD or row.metric not in label_of:
            continue
        dataset = row.dataset or row.benchmark
        dummy = pick_dummy(row)
        if dummy is not None and dummy > 0 and row.domain is not None:
            dummies.setdefault(dataset, {})[row.metric] = dummy
            meta[dataset] = (row.benchmark, row.domain)
        if row.usable:
            values.setdefault((row.model, dataset), {})[row.metric] = pick(row)
    norms = [
        DatasetNormalization(dataset=dataset, set_name=meta[dataset][0], domain=meta[dataset][1], **dummy)
        for dataset, dummy in sorted(dummies.items())
        if "energy_rmse_per_atom" in dummy and "force_rmse" in dummy
    ]
    known = {n.dataset for n in norms}
    ff_rows = [
        RawForceFieldRow(model=model, dataset=dataset, set_name=meta[dataset][0], **metrics)
        for (model, dataset), metrics in values.items()
        if dataset in known
    ]
    return ff_rows, norms


def _property_inputs(
    rows: Sequence[RawMetric],
    pick: Callable[[RawMetric], float | None],
    pick_dummy: Callable[[RawMetric], float | None],
) -> tuple[list[RawPropertyRow], list[PropertyNormalization]]:
    dummies: dict[str, dict[str, float]] = {}
    domains: dict[str, Domain] = {}
    found: dict[tuple[str, str], RawPropertyRow] = {}
    for row in rows:
        if row.kind != Category.PROPERTY:
            continue
        dummy = pick_dummy(row)
        if dummy is not None and dummy > 0 and row.domain is not None:
            dummies.setdefault(row.benchmark, {})[row.metric] = dummy
            domains[row.benchmark] = row.domain
        if row.status in ("failed", "unsupported", "missing"):
            continue
        entry = found.setdefault(
            (row.model, row.benchmark),
            RawPropertyRow(
                model=row.model, task=row.benchmark, metrics={}, success_rate=row.success_rate, coverage=row.coverage
            ),
        )
        entry.metrics[row.metric] = pick(row) if row.value is not None else None
    norms = [PropertyNormalization(task=task, domain=domains[task], dummy=d) for task, d in sorted(dummies.items())]
    return list(found.values()), norms


def _replicate(b: int) -> Callable[[RawMetric], float | None]:
    def pick(row: RawMetric) -> float | None:
        # A row without replicates (no per-item records) enters every replicate at its point value:
        # it adds no spread, and it must not turn into a gap.
        if row.replicates is None or b >= len(row.replicates):
            return row.value
        return row.replicates[b]

    return pick


def _replicate_dummy(b: int) -> Callable[[RawMetric], float | None]:
    def pick(row: RawMetric) -> float | None:
        if row.dummy_replicates is None or b >= len(row.dummy_replicates) or row.dummy_replicates[b] is None:
            return row.dummy
        return row.dummy_replicates[b]

    return pick


def _point(row: RawMetric) -> float | None:
    return row.value


def _point_dummy(row: RawMetric) -> float | None:
    return row.dummy


def _estimate(value: float | None, replicates: list[float | None], confidence: float) -> Estimate:
    if value is None or not replicates:
        return Estimate(value=value)
    bounds = interval(replicates, confidence)
    return Estimate(value=value, low=bounds[0], high=bounds[1]) if bounds else Estimate(value=value)


def _adaptability(
    rows: Sequence[RawMetric], model: str, pick: Callable[[RawMetric], float | None]
) -> tuple[float | None, bool]:
    """M_AD: the mean over adaptability tasks of the normalized MAE; partial if a task is missing."""
    tasks = {r.benchmark for r in rows if r.kind == Category.ADAPTABILITY and r.metric == ADAPTABILITY_METRIC}
    own = {
        r.benchmark: r
        for r in rows
        if r.model == model and r.kind == Category.ADAPTABILITY and r.metric == ADAPTABILITY_METRIC and r.usable
    }
    values = [v for v in (pick(own[t]) for t in sorted(tasks) if t in own) if v is not None]
    return (sum(values) / len(values) if values else None), len(values) < len(tasks)


def _applicability(rows: Sequence[RawMetric], model: str, kind: Category, metric: str) -> RawMetric | None:
    return next((r for r in rows if r.model == model and r.kind == kind and r.metric == metric and r.usable), None)


def _sort_key(scores: ModelScores) -> tuple[object, ...]:
    def part(estimate: Estimate, partial: bool, sign: float) -> tuple[object, ...]:
        return (estimate.value is None, partial, sign * (estimate.value or 0.0))

    return (
        *part(scores.m_ff, scores.m_ff_partial, 1.0),
        *part(scores.m_pc, scores.m_pc_partial, 1.0),
        *part(scores.m_is, False, 1.0),
        *part(scores.m_e, False, -1.0),
        scores.model,
    )


def _rank_intervals(
    ranked: list[ModelScores], m_ff_replicates: dict[str, list[float | None]], confidence: float
) -> None:
    """Per replicate, rank the ranked models by their M_FF; the percentile interval of each rank."""
    n = min((len(m_ff_replicates[s.model]) for s in ranked), default=0)
    if n == 0 or not ranked:
        return
    matrix = np.array([[np.inf if v is None else v for v in m_ff_replicates[s.model][:n]] for s in ranked])
    # Stable argsort over models already in point order breaks replicate ties the way the point ranking does.
    ranks = np.empty_like(matrix, dtype=int)
    for b in range(n):
        order = np.argsort(matrix[:, b], kind="stable")
        ranks[order, b] = np.arange(1, len(ranked) + 1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    for scores, row in zip(ranked, ranks, strict=True):
        low, high = np.percentile(row, [tail, 100.0 - tail])
        scores.rank_low, scores.rank_high = int(np.floor(low)), int(np.ceil(high))


def score_table(table: MetricsTable, confidence: float = DEFAULT_CONFIDENCE) -> Scoreboard:
    """Scores, intervals, ranks and ties of every model of the table."""
    models = table.models
    n = table.n_replicates
    ff_rows, ff_norms = _force_field_inputs(table.rows, _point, _point_dummy)
    ff_point = {s.model: s for s in score_force_field(models, ff_rows, ff_norms)}
    pc_rows, pc_norms = _property_inputs(table.rows, _point, _point_dummy)
    pc_point = {s.model: s for s in score_property(models, pc_rows, pc_norms)}

    ff_reps: list[dict[str, ForceFieldScore]] = []
    pc_reps: list[dict[str, PropertyScore]] = []
    for b in range(n):
        rows_b, norms_b = _force_field_inputs(table.rows, _replicate(b), _replicate_dummy(b))
        ff_reps.append({s.model: s for s in score_force_field(models, rows_b, norms_b)})
        prows_b, pnorms_b = _property_inputs(table.rows, _replicate(b), _replicate_dummy(b))
        pc_reps.append({s.model: s for s in score_property(models, prows_b, pnorms_b)})

    ff_domains = sorted({n.domain for n in ff_norms})
    pc_domains = sorted({n.domain for n in pc_norms})
    board = []
    m_ff_replicates: dict[str, list[float | None]] = {}
    for model in models:
        ff, pc = ff_point[model], pc_point[model]
        m_ff_replicates[model] = [rep[model].m_ff for rep in ff_reps]
        applicability = {}
        for name, (kind, metric) in APPLICABILITY.items():
            row = _applicability(table.rows, model, kind, metric)
            applicability[name] = (
                _estimate(row.value, row.replicates or [], confidence) if row else Estimate(value=None)
            )
        m_ad, m_ad_partial = _adaptability(table.rows, model, _point)
        m_ad_replicates = [_adaptability(table.rows, model, _replicate(b))[0] for b in range(n)]
        raw: dict[str, dict[str, Estimate]] = {}
        for row in table.rows:
            if row.model == model and row.usable:
                raw.setdefault(row.benchmark, {})[row.metric] = _estimate(row.value, row.replicates or [], confidence)
        board.append(
            ModelScores(
                model=model,
                rank=None,
                m_ff=_estimate(ff.m_ff, m_ff_replicates[model], confidence),
                m_ff_partial=ff.partial,
                ff_domains={
                    d: _estimate(ff.domains.get(d), [rep[model].domains.get(d) for rep in ff_reps], confidence)
                    for d in ff_domains
                },
                m_pc=_estimate(pc.m_pc, [rep[model].m_pc for rep in pc_reps], confidence),
                m_pc_partial=pc.partial,
                pc_domains={
                    d: _estimate(pc.domains.get(d), [rep[model].domains.get(d) for rep in pc_reps], confidence)
                    for d in pc_domains
                },
                m_ad=_estimate(m_ad, m_ad_replicates, confidence),
                m_ad_partial=m_ad_partial,
                m_e=applicability["m_e"],
                m_is=applicability["m_is"],
                metrics=raw,
                force_field=ff,
                property=pc if pc_norms else None,
            )
        )
    board.sort(key=_sort_key)
    ranked = [s for s in board if s.m_ff.value is not None and not s.m_ff_partial]
    for rank, scores in enumerate(ranked, start=1):
        scores.rank = rank
    _rank_intervals(ranked, m_ff_replicates, confidence)
    for scores in ranked:
        scores.tied_with = [o.model for o in ranked if o is not scores and o.m_ff.overlaps(scores.m_ff)]
    return Scoreboard(
        confidence=confidence,
        n_replicates=n,
        force_field_domains=ff_domains,
        property_domains=pc_domains,
        models=board,
    )
