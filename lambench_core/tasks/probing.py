"""The probe protocol of adaptability: frozen features → a small head, under k-fold cross-validation.

For each outer fold the head is chosen and fitted on the training part only: features are scaled
with the training part's statistics, the target is centred on the training mean, and the head
(ridge at several strengths, or a two-layer MLP) is picked by an inner k-fold validation inside the
training part. The test part is touched once, to predict. Folds and every random choice are seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

RIDGE_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MLP_ALPHAS = (1e-4, 1e-2)


class Estimator(Protocol):
    """The part of a scikit-learn regressor a head uses."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, x: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class Head:
    """A candidate head: its name and how to build an unfitted estimator with a seed."""

    name: str
    build: Callable[[int], Estimator]


def candidate_heads(seed: int, mlp: bool = True) -> list[Head]:
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor

    def ridge(alpha: float) -> Callable[[int], Estimator]:
        return lambda s: Ridge(alpha=alpha)

    def mlp_head(alpha: float) -> Callable[[int], Estimator]:
        return lambda s: MLPRegressor(
            hidden_layer_sizes=(64, 64),
            alpha=alpha,
            max_iter=2000,
            early_stopping=False,
            learning_rate_init=1e-3,
            random_state=s,
        )

    heads = [Head(f"ridge(alpha={a:g})", ridge(a)) for a in RIDGE_ALPHAS]
    if mlp:
        heads += [Head(f"mlp(64,64; alpha={a:g})", mlp_head(a)) for a in MLP_ALPHAS]
    return heads


def kfold(n: int, k: int, seed: int) -> list[np.ndarray]:
    """Test indices of each of k folds (a seeded shuffle, sizes differing by at most one)."""
    if k < 2 or n < k:
        raise ValueError(f"{k}-fold cross-validation needs at least {k} items (have {n})")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


class _Scaled:
    """Features scaled and target centred with statistics of the rows it was fitted on only."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale < 1e-12] = 1.0
        self.y_mean = float(y.mean())

    def x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


def fit_predict(head: Head, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    scaled = _Scaled(x_train, y_train)
    estimator = head.build(seed)
    estimator.fit(scaled.x(x_train), y_train - scaled.y_mean)
    return np.asarray(estimator.predict(scaled.x(x_test)), dtype=float) + scaled.y_mean


def choose_head(heads: Sequence[Head], x: np.ndarray, y: np.ndarray, inner_folds: int, seed: int) -> Head:
    """The head with the lowest inner-validation MAE on (x, y): the training part of an outer fold."""
    folds = kfold(len(y), min(inner_folds, len(y)), seed + 1)
    best, best_mae = heads[0], np.inf
    for head in heads:
        errors = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            errors.append(np.abs(fit_predict(head, x[train], y[train], x[test], seed) - y[test]))
        mae = float(np.mean(np.concatenate(errors)))
        if mae < best_mae:
            best, best_mae = head, mae
    return best


@dataclass
class FoldPrediction:
    index: int
    fold: int
    target: float
    predicted: float
    train_mean: float
    head: str


def cross_validate(
    x: np.ndarray, y: np.ndarray, folds: int, seed: int, inner_folds: int = 3, mlp: bool = True
) -> list[FoldPrediction]:
    """Out-of-fold predictions of every item, each by a head that never saw it (nor chose it)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    heads = candidate_heads(seed, mlp)
    predictions = []
    for fold, test in enumerate(kfold(len(y), folds, seed)):
        train = np.setdiff1d(np.arange(len(y)), test)
        head = choose_head(heads, x[train], y[train], inner_folds, seed)
        predicted = fit_predict(head, x[train], y[train], x[test], seed)
        train_mean = float(y[train].mean())
        for index, value in zip(test, predicted, strict=True):
            predictions.append(FoldPrediction(int(index), fold, float(y[index]), float(value), train_mean, head.name))
    return sorted(predictions, key=lambda p: p.index)


def composition_features(symbols_per_structure: Sequence[Sequence[str]]) -> np.ndarray:
    """The model-free baseline's features: element counts and fractions over the elements present."""
    elements = sorted({s for symbols in symbols_per_structure for s in symbols})
    counts = np.array([[list(symbols).count(e) for e in elements] for symbols in symbols_per_structure], float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.concatenate([counts, counts / np.where(totals > 0, totals, 1.0), totals], axis=1)
