"""Every score of the leaderboard from a MetricsTable, with bootstrap intervals, ranks and ties.

A pure function of the table: M_FF and M_PC go through the same scoring functions for the point
values and for every bootstrap replicate (the whole chain — normalization, capping, geometric and
domain means — is recomputed per replicate), so their intervals carry the propagated uncertainty of
every structure-level error. Ranking follows LAMBench: M_FF, then M_PC, M_IS, M_E.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import (
    LABEL_METRICS,
    DatasetNormalization,
    ForceFieldScore,
    RawForceFieldRow,
    force_field_scores,
    score_force_field,
)
from lambench_core.metrics.bootstrap import DEFAULT_CONFIDENCE, interval
from lambench_core.metrics.property import (
    PropertyNormalization,
    PropertyScore,
    RawPropertyRow,
    property_scores,
    score_property,
)
from lambench_core.metrics.table import MetricsTable, RawMetric

RANKING_ORDER = ("m_ff", "m_pc", "m_is", "m_e")
APPLICABILITY = {"m_e": (Category.EFFICIENCY, "m_e"), "m_is": (Category.STABILITY, "m_is")}
ADAPTABILITY_METRIC = "normalized_mae"  # per task: clip(MAE ÷ MAE of the training mean, 0, 1)
LABEL_OF = {metric: label for label, metric in LABEL_METRICS.items()}


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
    rank: int | None = Field(description="Only models with a complete M_FF are ranked (baselines never)")
    baseline: bool = Field(default=False, description="A reference row (the dummy, a classical potential)")
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


def _force_field_normalizations(
    rows: Sequence[RawMetric], pick_dummy: Callable[[RawMetric], float | None]
) -> tuple[list[DatasetNormalization], dict[str, tuple[str, Domain]]]:
    """The label sets' dummy errors (sets with both energy and force dummies), and each label set's
    (benchmark set, domain)."""
    dummies: dict[str, dict[str, float]] = {}
    meta: dict[str, tuple[str, Domain]] = {}
    for row in rows:
        if row.kind != Category.FORCE_FIELD or row.metric not in LABEL_OF:
            continue
        dummy = pick_dummy(row)
        if dummy is not None and dummy > 0 and row.domain is not None:
            dataset = row.dataset or row.benchmark
            dummies.setdefault(dataset, {})[row.metric] = dummy
            meta[dataset] = (row.benchmark, row.domain)
    norms = [
        DatasetNormalization(dataset=dataset, set_name=meta[dataset][0], domain=meta[dataset][1], **dummy)
        for dataset, dummy in sorted(dummies.items())
        if "energy_rmse_per_atom" in dummy and "force_rmse" in dummy
    ]
    return norms, meta


def _force_field_inputs(
    rows: Sequence[RawMetric],
    pick: Callable[[RawMetric], float | None],
    pick_dummy: Callable[[RawMetric], float | None],
) -> tuple[list[RawForceFieldRow], list[DatasetNormalization]]:
    norms, meta = _force_field_normalizations(rows, pick_dummy)
    values: dict[tuple[str, str], dict[str, float | None]] = {}
    for row in rows:
        if row.kind != Category.FORCE_FIELD or row.metric not in LABEL_OF:
            continue
        if row.usable:
            values.setdefault((row.model, row.dataset or row.benchmark), {})[row.metric] = pick(row)
    known = {n.dataset for n in norms}
    ff_rows = [
        RawForceFieldRow(model=model, dataset=dataset, set_name=meta[dataset][0], **metrics)
        for (model, dataset), metrics in values.items()
        if dataset in known
    ]
    return ff_rows, norms


def _property_normalizations(
    rows: Sequence[RawMetric], pick_dummy: Callable[[RawMetric], float | None]
) -> list[PropertyNormalization]:
    dummies: dict[str, dict[str, float]] = {}
    domains: dict[str, Domain] = {}
    for row in rows:
        if row.kind != Category.PROPERTY:
            continue
        dummy = pick_dummy(row)
        if dummy is not None and dummy > 0 and row.domain is not None:
            dummies.setdefault(row.benchmark, {})[row.metric] = dummy
            domains[row.benchmark] = row.domain
    return [PropertyNormalization(task=task, domain=domains[task], dummy=d) for task, d in sorted(dummies.items())]


def _property_inputs(
    rows: Sequence[RawMetric],
    pick: Callable[[RawMetric], float | None],
    pick_dummy: Callable[[RawMetric], float | None],
) -> tuple[list[RawPropertyRow], list[PropertyNormalization]]:
    found: dict[tuple[str, str], RawPropertyRow] = {}
    for row in rows:
        if row.kind != Category.PROPERTY or row.status in ("failed", "unsupported", "missing"):
            continue
        entry = found.get((row.model, row.benchmark))
        if entry is None:  # the first row of a (model, task) gives its rates
            entry = found[(row.model, row.benchmark)] = RawPropertyRow(
                model=row.model, task=row.benchmark, metrics={}, success_rate=row.success_rate, coverage=row.coverage
            )
        entry.metrics[row.metric] = pick(row) if row.value is not None else None
    return list(found.values()), _property_normalizations(rows, pick_dummy)


def _dummy_rows(rows: Sequence[RawMetric]) -> tuple[list[RawMetric], bool]:
    """The rows that can carry a normalizing constant, and whether it is the same in every replicate."""
    found = [r for r in rows if r.domain is not None and (r.dummy is not None or r.dummy_replicates is not None)]
    return found, all(r.dummy_replicates is None for r in found)


class _FFRow:
    """A replicate's errors of one model on one label set: the attributes of RawForceFieldRow,
    without validating values that were validated when the table was read."""

    __slots__ = ("model", "dataset", "benchmark_set", "energy_rmse_per_atom", "force_rmse", "virial_rmse_per_atom")

    def __init__(self, model: str, dataset: str, set_name: str, metrics: dict[str, float | None]) -> None:
        self.model, self.dataset, self.benchmark_set = model, dataset, set_name
        self.energy_rmse_per_atom = metrics.get("energy_rmse_per_atom")
        self.force_rmse = metrics.get("force_rmse")
        self.virial_rmse_per_atom = metrics.get("virial_rmse_per_atom")


class _PCRow:
    """A replicate's metrics of one model on one property task: the attributes of RawPropertyRow."""

    __slots__ = ("model", "task", "metrics", "success_rate", "coverage")

    def __init__(self, model: str, task: str, success_rate: float, coverage: float) -> None:
        self.model, self.task = model, task
        self.metrics: dict[str, Any] = {}
        self.success_rate, self.coverage = success_rate, coverage


Replicates = list[dict[str, tuple[float | None, dict[Domain, float | None]]]]


def _force_field_replicates(rows: Sequence[RawMetric], models: Sequence[str], n: int) -> Replicates:
    """Per replicate, model → (M_FF, domain errors): the same chain as `_force_field_inputs` and
    `score_force_field` (the same functions do the arithmetic), with the table's structure worked out
    once instead of once per replicate. `rows`: the force-field label rows."""
    if n == 0:
        return []
    values = [(row.model, row.dataset or row.benchmark, row.metric, row) for row in rows if row.usable]
    dummy_rows, constant = _dummy_rows(rows)
    if constant:  # the normalization is the point one in every replicate: built once
        norms, _ = _force_field_normalizations(dummy_rows, _point_dummy)
    found: Replicates = []
    for b in range(n):
        if not constant:
            norms, _ = _force_field_normalizations(dummy_rows, _replicate_dummy(b))
        known = {norm.dataset: norm.benchmark_set for norm in norms}
        errors: dict[tuple[str, str], dict[str, float | None]] = {}
        for model, dataset, metric, row in values:
            replicates = row.replicates
            value = row.value if replicates is None or b >= len(replicates) else replicates[b]
            errors.setdefault((model, dataset), {})[metric] = value
        ff_rows = [
            _FFRow(model, dataset, known[dataset], metrics)
            for (model, dataset), metrics in errors.items()
            if dataset in known
        ]
        found.append(force_field_scores(models, ff_rows, norms))  # type: ignore[arg-type]
    return found


def _property_replicates(rows: Sequence[RawMetric], models: Sequence[str], n: int) -> Replicates:
    """Per replicate, model → (M_PC, domain errors), as `_property_inputs` and `score_property` give
    them, with the table's structure worked out once. `rows`: the property rows."""
    if n == 0:
        return []
    scored = [row for row in rows if row.status not in ("failed", "unsupported", "missing")]
    dummy_rows, constant = _dummy_rows(rows)
    if constant:
        norms = _property_normalizations(dummy_rows, _point_dummy)
    found: Replicates = []
    for b in range(n):
        if not constant:
            norms = _property_normalizations(dummy_rows, _replicate_dummy(b))
        entries: dict[tuple[str, str], _PCRow] = {}
        for row in scored:
            entry = entries.get((row.model, row.benchmark))
            if entry is None:  # the first row of a (model, task) gives its rates
                entry = entries[(row.model, row.benchmark)] = _PCRow(
                    row.model, row.benchmark, row.success_rate, row.coverage
                )
            replicates = row.replicates
            if row.value is None:
                entry.metrics[row.metric] = None
            else:
                entry.metrics[row.metric] = row.value if replicates is None or b >= len(replicates) else replicates[b]
        found.append(property_scores(models, entries.values(), norms))  # type: ignore[arg-type]
    return found


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
    tasks: Sequence[str], own: dict[str, RawMetric], pick: Callable[[RawMetric], float | None]
) -> tuple[float | None, bool]:
    """M_AD: the mean over adaptability tasks (`tasks`: every task of the table, sorted) of the
    normalized MAE (`own`: this model's usable row per task); partial if a task is missing."""
    values = [v for v in (pick(own[t]) for t in tasks if t in own) if v is not None]
    return (sum(values) / len(values) if values else None), len(values) < len(tasks)


def _applicability(own: Sequence[RawMetric], kind: Category, metric: str) -> RawMetric | None:
    """The model's first usable row of that kind and metric (`own`: the model's rows, in table order)."""
    return next((r for r in own if r.kind == kind and r.metric == metric and r.usable), None)


def _sort_key(scores: ModelScores) -> tuple[object, ...]:
    def part(estimate: Estimate, partial: bool, sign: float) -> tuple[object, ...]:
        return (estimate.value is None, partial, sign * (estimate.value or 0.0))

    return (
        scores.baseline,  # reference rows after every model they are the reference for
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


def _ties(ranked: list[ModelScores]) -> list[list[str]]:
    """For each ranked model, the other ranked models whose M_FF overlaps its own (`Estimate.overlaps`),
    in ranking order: interval overlap where both have intervals, equal values otherwise."""
    n = len(ranked)
    estimates = [s.m_ff for s in ranked]
    full = np.array([None not in (x.low, x.high) for x in estimates], dtype=bool)
    lows = np.array([x.low if ok else 0.0 for x, ok in zip(estimates, full, strict=True)], dtype=float)
    highs = np.array([x.high if ok else 0.0 for x, ok in zip(estimates, full, strict=True)], dtype=float)
    by_value: dict[float, list[int]] = {}
    for index, x in enumerate(estimates):
        if x.value is not None and x.value == x.value:  # NaN equals nothing
            by_value.setdefault(x.value, []).append(index)
    ties = []
    for i, x in enumerate(estimates):
        mask = np.zeros(n, dtype=bool)
        if full[i]:
            mask |= full & (lows[i] <= highs) & (lows <= highs[i])
        if x.value is not None and x.value == x.value:
            for j in by_value.get(x.value, ()):
                if not (full[i] and full[j]):
                    mask[j] = True
        mask[i] = False
        ties.append([ranked[j].model for j in np.flatnonzero(mask)])
    return ties


def score_table(table: MetricsTable, confidence: float = DEFAULT_CONFIDENCE) -> Scoreboard:
    """Scores, intervals, ranks and ties of every model of the table.

    Linear in the table: the rows are read once into per-model lists and per-kind subsets, and each
    replicate is scored from the subsets that enter a score; of each replicate only the values the
    intervals need are kept (memory O(replicates × models × domains), not × rows)."""
    models = table.models
    baselines = set(table.baselines)
    n = table.n_replicates
    label_metrics = set(LABEL_METRICS.values())
    own_rows: dict[str, list[RawMetric]] = {}
    ff_subset: list[RawMetric] = []
    pc_subset: list[RawMetric] = []
    ad_tasks: set[str] = set()
    for row in table.rows:
        own_rows.setdefault(row.model, []).append(row)
        if row.kind == Category.FORCE_FIELD and row.metric in label_metrics:
            ff_subset.append(row)
        elif row.kind == Category.PROPERTY:
            pc_subset.append(row)
        elif row.kind == Category.ADAPTABILITY and row.metric == ADAPTABILITY_METRIC:
            ad_tasks.add(row.benchmark)
    tasks = sorted(ad_tasks)

    ff_rows, ff_norms = _force_field_inputs(ff_subset, _point, _point_dummy)
    ff_point = {s.model: s for s in score_force_field(models, ff_rows, ff_norms)}
    pc_rows, pc_norms = _property_inputs(pc_subset, _point, _point_dummy)
    pc_point = {s.model: s for s in score_property(models, pc_rows, pc_norms)}

    # Per replicate and model: (M_FF, FF domains) and (M_PC, PC domains) — nothing else is kept.
    ff_reps = _force_field_replicates(ff_subset, models, n)
    pc_reps = _property_replicates(pc_subset, models, n)

    ff_domains = sorted({n.domain for n in ff_norms})
    pc_domains = sorted({n.domain for n in pc_norms})
    board = []
    m_ff_replicates: dict[str, list[float | None]] = {}
    for model in models:
        ff, pc = ff_point[model], pc_point[model]
        own = own_rows.get(model, [])
        m_ff_replicates[model] = [rep[model][0] for rep in ff_reps]
        applicability = {}
        for name, (kind, metric) in APPLICABILITY.items():
            applicable = _applicability(own, kind, metric)
            applicability[name] = (
                _estimate(applicable.value, applicable.replicates or [], confidence)
                if applicable
                else Estimate(value=None)
            )
        own_tasks = {
            r.benchmark: r
            for r in own
            if r.kind == Category.ADAPTABILITY and r.metric == ADAPTABILITY_METRIC and r.usable
        }
        m_ad, m_ad_partial = _adaptability(tasks, own_tasks, _point)
        m_ad_replicates = [_adaptability(tasks, own_tasks, _replicate(b))[0] for b in range(n)]
        raw: dict[str, dict[str, Estimate]] = {}
        for row in own:
            if row.usable:
                raw.setdefault(row.benchmark, {})[row.metric] = _estimate(row.value, row.replicates or [], confidence)
        board.append(
            ModelScores(
                model=model,
                rank=None,
                baseline=model in baselines,
                m_ff=_estimate(ff.m_ff, m_ff_replicates[model], confidence),
                m_ff_partial=ff.partial,
                ff_domains={
                    d: _estimate(ff.domains.get(d), [rep[model][1].get(d) for rep in ff_reps], confidence)
                    for d in ff_domains
                },
                m_pc=_estimate(pc.m_pc, [rep[model][0] for rep in pc_reps], confidence),
                m_pc_partial=pc.partial,
                pc_domains={
                    d: _estimate(pc.domains.get(d), [rep[model][1].get(d) for rep in pc_reps], confidence)
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
    ranked = [s for s in board if s.m_ff.value is not None and not s.m_ff_partial and not s.baseline]
    for rank, scores in enumerate(ranked, start=1):
        scores.rank = rank
    _rank_intervals(ranked, m_ff_replicates, confidence)
    for scores, tied in zip(ranked, _ties(ranked), strict=True):
        scores.tied_with = tied
    return Scoreboard(
        confidence=confidence,
        n_replicates=n,
        force_field_domains=ff_domains,
        property_domains=pc_domains,
        models=board,
    )
