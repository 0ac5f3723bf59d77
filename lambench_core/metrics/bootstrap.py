"""Nonparametric bootstrap over structures (items), paired across models.

Replicate b of a benchmark draws, with replacement, as many items as the benchmark has from the
union of the items any model was scored on; every model's metrics are then recomputed from its own
records of exactly those items. The same draw for every model makes differences between models
paired, so rank intervals reflect how often the ordering really flips. Draws are seeded from the
benchmark's name, so the same results always give the same intervals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_REPLICATES = 1000
DEFAULT_CONFIDENCE = 0.95

Summarize = Callable[[list[dict[str, Any]]], Mapping[str, float | None]]


def interval(replicates: Sequence[float | None] | np.ndarray, confidence: float) -> tuple[float, float] | None:
    """The percentile interval of the finite replicates; None when fewer than 90% are finite (the
    statistic is undefined on too many resamples for its spread to mean anything)."""
    values = np.asarray([np.nan if v is None else v for v in replicates], dtype=float)
    finite = values[np.isfinite(values)]
    if values.size == 0 or finite.size < 0.9 * values.size:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def resample_items(universe: Iterable[str], n_replicates: int, key: str) -> list[list[str]]:
    """`n_replicates` draws, with replacement, of len(universe) items; deterministic in `key`."""
    items = sorted(set(universe))
    if not items or n_replicates <= 0:
        return []
    rng = np.random.default_rng(_seed(key))
    draws = rng.integers(0, len(items), size=(n_replicates, len(items)))
    return [[items[i] for i in row] for row in draws]


CLUSTER_KEY = "cluster"


def resampling_unit(record: dict[str, Any]) -> str:
    """Records of one cluster (e.g. the conformers of one molecule, which share its reference) are
    drawn together; by default every item is its own unit."""
    return str(record.get(CLUSTER_KEY, record["item"]))


def replicate_metrics(
    records: Sequence[dict[str, Any]], draws: Sequence[Sequence[str]], summarize: Summarize
) -> dict[str, list[float | None]]:
    """Each metric recomputed on every draw: a drawn unit contributes all of its records (none if
    this model has no record of it, e.g. a failed structure)."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_item.setdefault(resampling_unit(record), []).append(record)
    replicates: dict[str, list[float | None]] = {}
    for draw in draws:
        resampled = [record for item in draw for record in by_item.get(item, ())]
        for name, value in summarize(resampled).items():
            replicates.setdefault(name, []).append(value)
    return replicates
