"""M_PC from a table of property-task metrics.

Per metric: x = clip(value / dummy value, 0, 1), divided by the task's success rate (failures cost
accuracy; items with elements the model does not support are not failures, they lower the coverage
and mark the score partial); a domain's error is the mean of its metrics' x; M_PC is the mean over
domains. A pure function of its inputs, like M_FF.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.domains import Domain


class RawPropertyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    task: str
    metrics: dict[str, float | None]
    success_rate: float = Field(ge=0, le=1, description="Scored ÷ attempted (unsupported items excluded)")
    coverage: float = Field(default=1.0, ge=0, le=1, description="Attempted ÷ all items")


class PropertyNormalization(BaseModel):
    """A property task's scored metrics and the dummy (or trivial predictor) values of each."""

    model_config = ConfigDict(extra="forbid")

    task: str
    domain: Domain
    dummy: dict[str, float]


class PropertyScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    m_pc: float | None
    partial: bool
    domains: dict[Domain, float | None]
    normalized: dict[str, dict[str, float | None]] = Field(description="task → metric → x")
    missing: list[str] = Field(default_factory=list)


def normalized_property(value: float | None, dummy: float, success_rate: float) -> float | None:
    if value is None or success_rate <= 0:
        return None
    return min(max(value / dummy, 0.0), 1.0) / success_rate


def _score_terms(
    rows: Mapping[str, RawPropertyRow], norms: Sequence[PropertyNormalization], detail: bool = True
) -> tuple[float | None, bool, dict[Domain, float | None], dict[str, dict[str, float | None]]]:
    """(M_PC, partial, domain errors, normalized errors) of one model; `rows`: task → anything with the
    RawPropertyRow attributes. Without `detail` the normalized errors are left empty."""
    normalized: dict[str, dict[str, float | None]] = {}
    domains: dict[Domain, float | None] = {}
    partial = any(n.task not in rows for n in norms)
    for domain in sorted({n.domain for n in norms}):
        xs: list[float] = []
        for norm in (n for n in norms if n.domain == domain):
            row = rows.get(norm.task)
            if row is not None and row.coverage < 1.0:
                partial = True  # some items were outside the model's elements: not comparable in full
            for metric, dummy in norm.dummy.items():
                x = normalized_property(row.metrics.get(metric), dummy, row.success_rate) if row else None
                if detail:
                    normalized.setdefault(norm.task, {})[metric] = x
                if x is None:
                    partial = True
                else:
                    xs.append(x)
        domains[domain] = sum(xs) / len(xs) if xs else None
    scored = [v for v in domains.values() if v is not None]
    m_pc = sum(scored) / len(scored) if scored else None
    return m_pc, partial or len(scored) < len(domains), domains, normalized


def _score_model(model: str, rows: dict[str, RawPropertyRow], norms: Sequence[PropertyNormalization]) -> PropertyScore:
    m_pc, partial, domains, normalized = _score_terms(rows, norms)
    return PropertyScore(
        model=model,
        m_pc=m_pc,
        partial=partial,
        domains=domains,
        normalized=normalized,
        missing=sorted(n.task for n in norms if n.task not in rows),
    )


def property_scores(
    models: Iterable[str], rows: Iterable[RawPropertyRow], normalizations: Sequence[PropertyNormalization]
) -> dict[str, tuple[float | None, dict[Domain, float | None]]]:
    """model → (M_PC, domain errors), exactly as `score_property` computes them but without the
    detail: what each bootstrap replicate needs. `rows` may be any objects with the RawPropertyRow
    attributes (`model`, `task`, `metrics`, `success_rate`, `coverage`)."""
    by_model: dict[str, dict[str, RawPropertyRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.task] = row
    found = {}
    for model in models:
        m_pc, _, domains, _ = _score_terms(by_model.get(model, {}), normalizations, detail=False)
        found[model] = (m_pc, domains)
    return found


def score_property(
    models: Iterable[str], rows: Iterable[RawPropertyRow], normalizations: Sequence[PropertyNormalization]
) -> list[PropertyScore]:
    by_model: dict[str, dict[str, RawPropertyRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, {})[row.task] = row
    return [_score_model(model, by_model.get(model, {}), normalizations) for model in models]
