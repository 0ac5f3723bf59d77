"""M_FF from a table of raw force-field errors, as LAMBench defines it.

For dataset i and label p ∈ {E, F, V}: x = min(error / dummy error, 1). Within a domain, x is
averaged geometrically over the datasets that carry p; the domain error is 0.45·E + 0.45·F + 0.10·V
where any set of the domain has virials, else 0.5·E + 0.5·F; M_FF is the mean over domains.
A pure function of its inputs: results computed anywhere can be scored the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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
    energy_rmse_per_atom: float | None = None
    force_rmse: float | None = None
    virial_rmse_per_atom: float | None = None


class DatasetNormalization(BaseModel):
    """The dummy model's errors on a dataset, which define x = 1."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    domain: Domain
    energy_rmse_per_atom: float = Field(gt=0)
    force_rmse: float = Field(gt=0)
    virial_rmse_per_atom: float | None = Field(default=None, gt=0)

    def reference(self, label: str) -> float | None:
        return getattr(self, LABEL_METRICS[label])


class ForceFieldScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    m_ff: float | None
    partial: bool
    domains: dict[Domain, float | None]
    normalized: dict[str, dict[str, float | None]] = Field(
        description="dataset → label → x (None: missing)"
    )
    missing: list[str] = Field(default_factory=list, description="datasets without a result")
    notes: list[str] = Field(default_factory=list)


def normalized_error(error: float | None, reference: float) -> float | None:
    if error is None or not math.isfinite(error):
        return None
    return min(error / reference, 1.0)


def geometric_mean(values: Sequence[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _score_model(
    model: str, rows: dict[str, RawForceFieldRow], norms: Sequence[DatasetNormalization]
) -> ForceFieldScore:
    normalized: dict[str, dict[str, float | None]] = {}
    notes: list[str] = []
    missing = sorted(n.dataset for n in norms if n.dataset not in rows)
    domains: dict[Domain, float | None] = {}
    partial = bool(missing)
    for domain in sorted({n.domain for n in norms}):
        members = [n for n in norms if n.domain == domain]
        has_virial = any(n.virial_rmse_per_atom is not None for n in members)
        weights = WEIGHTS_WITH_VIRIAL if has_virial else WEIGHTS_WITHOUT_VIRIAL
        label_means: dict[str, float] = {}
        for label in weights:
            xs: list[float] = []
            for norm in members:
                reference = norm.reference(label)
                if reference is None:
                    continue
                row = rows.get(norm.dataset)
                x = None
                if row is not None:
                    x = normalized_error(getattr(row, LABEL_METRICS[label]), reference)
                    if x is None and label == "V":
                        # A model that cannot predict stress is no better than the dummy on virials.
                        x = 1.0
                        notes.append(f"{norm.dataset}: no virial prediction, scored as the dummy")
                normalized.setdefault(norm.dataset, {})[label] = x
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
    return ForceFieldScore(
        model=model,
        m_ff=m_ff,
        partial=partial,
        domains=domains,
        normalized=normalized,
        missing=missing,
        notes=notes,
    )


def score_force_field(
    models: Iterable[str],
    rows: Iterable[RawForceFieldRow],
    normalizations: Sequence[DatasetNormalization],
) -> list[ForceFieldScore]:
    """Score every listed model; a model with no rows at all is still returned, as missing."""
    by_model: dict[str, dict[str, RawForceFieldRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.dataset] = row
    return [_score_model(model, by_model.get(model, {}), normalizations) for model in models]
