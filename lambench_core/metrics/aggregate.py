"""M_FF from a table of raw force-field errors, as LAMBench defines it.

For dataset i and label p ∈ {E, F, V}: x = min(error / dummy error, 1). Within a domain, x is
averaged geometrically over the datasets that carry p; the domain error is 0.45·E + 0.45·F + 0.10·V
where any set of the domain has virials, else 0.5·E + 0.5·F; M_FF is the mean over domains.
A pure function of its inputs: results computed anywhere can be scored the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.domains import Domain

LABEL_METRICS = {"E": "energy_rmse_per_atom", "F": "force_rmse", "V": "virial_rmse_per_atom"}
WEIGHTS_WITH_VIRIAL = {"E": 0.45, "F": 0.45, "V": 0.10}
WEIGHTS_WITHOUT_VIRIAL = {"E": 0.5, "F": 0.5}


class RawForceFieldRow(BaseModel):
    """One model's errors on one dataset (None where not computed)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    dataset: str
    set_name: str | None = Field(default=None, description="Benchmark set; defaults to the dataset")
    energy_rmse_per_atom: float | None = None
    force_rmse: float | None = None
    virial_rmse_per_atom: float | None = None

    @property
    def benchmark_set(self) -> str:
        return self.set_name or self.dataset


class DatasetNormalization(BaseModel):
    """The dummy model's errors on a dataset (one label set of a benchmark set), which define x = 1."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    set_name: str | None = None
    domain: Domain
    energy_rmse_per_atom: float = Field(gt=0)
    force_rmse: float = Field(gt=0)
    virial_rmse_per_atom: float | None = Field(default=None, gt=0)

    @property
    def benchmark_set(self) -> str:
        return self.set_name or self.dataset

    def reference(self, label: str) -> float | None:
        return getattr(self, LABEL_METRICS[label])


class ForceFieldScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    m_ff: float | None
    partial: bool
    domains: dict[Domain, float | None]
    normalized: dict[str, dict[str, float | None]] = Field(
        description="benchmark set → label → x (None: missing)"
    )
    missing: list[str] = Field(default_factory=list, description="benchmark sets without a result")
    notes: list[str] = Field(default_factory=list)


def normalized_error(error: float | None, reference: float) -> float | None:
    if error is None or not math.isfinite(error):
        return None
    return min(error / reference, 1.0)


def geometric_mean(values: Sequence[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


class _Sets:
    """Normalizations grouped by benchmark set and domain."""

    def __init__(self, norms: Sequence[DatasetNormalization]) -> None:
        self.by_dataset = {n.dataset: n for n in norms}
        self.by_set: dict[str, list[DatasetNormalization]] = {}
        for norm in norms:
            self.by_set.setdefault(norm.benchmark_set, []).append(norm)
        self.by_domain: dict[Domain, list[str]] = {}
        for name, members in sorted(self.by_set.items()):
            self.by_domain.setdefault(members[0].domain, []).append(name)
        self.has_virial = {
            domain: any(self.carries(name, "V") for name in members) for domain, members in self.by_domain.items()
        }

    def carries(self, set_name: str, label: str) -> bool:
        return any(n.reference(label) is not None for n in self.by_set[set_name])

    def normalization(self, set_name: str, row: RawForceFieldRow | None) -> DatasetNormalization:
        """The label set's own normalization when the model was scored on it, else the first."""
        if row is not None and row.dataset in self.by_dataset:
            return self.by_dataset[row.dataset]
        return self.by_set[set_name][0]


def _score_terms(
    rows: Mapping[str, RawForceFieldRow], sets: _Sets, detail: bool = True
) -> tuple[float | None, bool, dict[Domain, float | None], dict[str, dict[str, float | None]], list[str]]:
    """(M_FF, partial, domain errors, normalized errors, notes) of one model; `rows`: benchmark set →
    its errors (anything with the RawForceFieldRow attributes). Without `detail` the normalized
    errors and notes are left empty (bootstrap replicates need only the scores)."""
    normalized: dict[str, dict[str, float | None]] = {}
    notes: list[str] = []
    partial = any(name not in rows for name in sets.by_set)
    domains: dict[Domain, float | None] = {}
    for domain in sorted(sets.by_domain):
        members = sets.by_domain[domain]
        weights = WEIGHTS_WITH_VIRIAL if sets.has_virial[domain] else WEIGHTS_WITHOUT_VIRIAL
        label_means: dict[str, float] = {}
        for label in weights:
            metric = LABEL_METRICS[label]
            xs: list[float] = []
            for name in members:
                row = rows.get(name)
                reference = getattr(sets.normalization(name, row), metric)  # its .reference(label)
                if reference is None:
                    continue
                x = None
                if row is not None:
                    x = normalized_error(getattr(row, metric), reference)
                    if x is None and label == "V":
                        # A model that cannot predict stress is no better than the dummy on virials.
                        x = 1.0
                        if detail:
                            notes.append(f"{name}: no virial prediction, scored as the dummy")
                if detail:
                    normalized.setdefault(name, {})[label] = x
                if x is None:
                    partial = True
                else:
                    xs.append(x)
            if xs:
                label_means[label] = geometric_mean(xs)
        if set(label_means) == set(weights):
            domains[domain] = sum(weights[label] * label_means[label] for label in weights)
        else:
            domains[domain] = None
            partial = True
    scored = [value for value in domains.values() if value is not None]
    m_ff = sum(scored) / len(scored) if scored else None
    return m_ff, partial, domains, normalized, notes


def _score_model(model: str, rows: dict[str, RawForceFieldRow], sets: _Sets) -> ForceFieldScore:
    m_ff, partial, domains, normalized, notes = _score_terms(rows, sets)
    return ForceFieldScore(
        model=model,
        m_ff=m_ff,
        partial=partial,
        domains=domains,
        normalized=normalized,
        missing=sorted(name for name in sets.by_set if name not in rows),
        notes=notes,
    )


def force_field_scores(
    models: Iterable[str], rows: Iterable[RawForceFieldRow], normalizations: Sequence[DatasetNormalization]
) -> dict[str, tuple[float | None, dict[Domain, float | None]]]:
    """model → (M_FF, domain errors), exactly as `score_force_field` computes them but without the
    detail: what each bootstrap replicate needs. `rows` may be any objects with the RawForceFieldRow
    attributes (`model`, `dataset`, `benchmark_set`, the three errors)."""
    sets = _Sets(normalizations)
    by_model: dict[str, dict[str, RawForceFieldRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.benchmark_set] = row
    found = {}
    for model in models:
        m_ff, _, domains, _, _ = _score_terms(by_model.get(model, {}), sets, detail=False)
        found[model] = (m_ff, domains)
    return found


def score_force_field(
    models: Iterable[str],
    rows: Iterable[RawForceFieldRow],
    normalizations: Sequence[DatasetNormalization],
) -> list[ForceFieldScore]:
    """Score every listed model; a model with no rows at all is still returned, as missing."""
    sets = _Sets(normalizations)
    by_model: dict[str, dict[str, RawForceFieldRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.benchmark_set] = row
    return [_score_model(model, by_model.get(model, {}), sets) for model in models]
