"""The fine-tune protocol of adaptability: update the model's last interaction block together with a
linear property head, for a fixed small budget (epochs), under the same seeded k-fold folds as the
probe. Each fold starts again from the pretrained weights, and only its training part is seen.

Each family's recipe is its `Family.finetune` (lambench_core/models/families/): how to reach its
network, which parameters form its last block, and its pooled per-structure features with gradients.
A family may instead bring its own training program (a `PropertyTrainer`, e.g. DeePMD-kit's
`dp --pt train --finetune`): it then trains on the same folds with the same budget in epochs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from lambench_core.errors import UnknownFamilyError
from lambench_core.models.family import FineTuneRecipe, PropertyTrainer
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.models.registry import family
from lambench_core.tasks.probing import FoldPrediction, kfold


def _recipe(model: LoadedModel) -> FineTuneRecipe | PropertyTrainer | None:
    try:
        return family(model.card.family).finetune
    except UnknownFamilyError:
        return None


def trainable_reason(model: LoadedModel) -> str | None:
    if _recipe(model) is not None:
        return None
    return f"family {model.card.family!r} has no fine-tuning adapter in lambench (the probe protocol still applies)"


@dataclass(frozen=True)
class Budget:
    epochs: int = 10
    batch_size: int = 8
    block_lr: float = 1e-4
    head_lr: float = 1e-3


def fine_tune_cross_validate(
    model: LoadedModel,
    structures: Sequence[Atoms],
    y: np.ndarray,
    folds: int,
    seed: int,
    budget: Budget,
    intensive: bool = True,
) -> list[FoldPrediction]:
    """Out-of-fold predictions of every structure, each by a model fine-tuned without it.
    `intensive`: the target does not grow with the structure's size (a family's own trainer may
    choose its readout by it; lambench's loop always pools by the mean)."""
    import torch

    trainable = _recipe(model)
    if trainable is None:
        raise ValueError(trainable_reason(model))
    if not isinstance(trainable, FineTuneRecipe):
        return _with_family_trainer(trainable, model, structures, y, folds, seed, budget, intensive)
    pretrained = trainable.network(model)
    inputs = [trainable.prepare(model, prepare_for_model(model.card, atoms, 15.0)) for atoms in structures]
    y = np.asarray(y, dtype=float)

    def fit_predict(fold: int, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        torch.manual_seed(seed + fold)
        rng = np.random.default_rng(seed + fold)
        network = copy.deepcopy(pretrained)
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        block = trainable.last_block(network)
        for parameter in block:
            parameter.requires_grad_(True)
        mean, scale = float(y[train].mean()), float(y[train].std()) or 1.0
        head = _probe_initialized_head(trainable, network, model, [inputs[i] for i in train], (y[train] - mean) / scale)
        optimizer = torch.optim.Adam(
            [{"params": block, "lr": budget.block_lr}, {"params": head.parameters(), "lr": budget.head_lr}]
        )
        targets = torch.tensor((y - mean) / scale, dtype=torch.float32)
        network.train()
        for _ in range(budget.epochs):
            order = rng.permutation(train)
            for start in range(0, len(order), budget.batch_size):
                batch = order[start : start + budget.batch_size]
                features = trainable.features(network, model, [inputs[i] for i in batch]).float()
                loss = torch.nn.functional.mse_loss(head(features).squeeze(-1), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        network.eval()
        with torch.no_grad():
            features = trainable.features(network, model, [inputs[i] for i in test]).float()
            return head(features).squeeze(-1).detach().numpy() * scale + mean

    name = f"finetune(last block + linear head, {budget.epochs} epochs)"
    return _out_of_fold(y, folds, seed, name, fit_predict)


def _out_of_fold(
    y: np.ndarray, folds: int, seed: int, name: str, fit_predict: Callable[[int, np.ndarray, np.ndarray], np.ndarray]
) -> list[FoldPrediction]:
    """Every structure's prediction by `fit_predict(fold, train, test)` of its own fold, in index order."""
    predictions: list[FoldPrediction] = []
    for fold, test in enumerate(kfold(len(y), folds, seed)):
        train = np.setdiff1d(np.arange(len(y)), test)
        predicted = fit_predict(fold, train, test)
        mean = float(y[train].mean())
        for index, value in zip(test, predicted, strict=True):
            predictions.append(FoldPrediction(int(index), fold, float(y[index]), float(value), mean, name))
    return sorted(predictions, key=lambda p: p.index)


def _with_family_trainer(
    trainer: PropertyTrainer,
    model: LoadedModel,
    structures: Sequence[Atoms],
    y: np.ndarray,
    folds: int,
    seed: int,
    budget: Budget,
    intensive: bool,
) -> list[FoldPrediction]:
    prepared = [prepare_for_model(model.card, atoms, 15.0) for atoms in structures]
    y = np.asarray(y, dtype=float)

    def fit_predict(fold: int, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return np.asarray(
            trainer(
                model,
                [prepared[i] for i in train],
                y[train],
                [prepared[i] for i in test],
                epochs=budget.epochs,
                seed=seed + fold,
                intensive=intensive,
            )
        )

    return _out_of_fold(y, folds, seed, f"{trainer.description}, {budget.epochs} epochs", fit_predict)


def _probe_initialized_head(
    trainable: FineTuneRecipe, network: Any, model: LoadedModel, inputs: Sequence[Any], targets: np.ndarray
) -> Any:
    """A linear head starting from the ridge solution on the frozen features (linear probing, then
    fine-tuning): training then refines a sensible predictor instead of a random one."""
    import torch

    features = np.vstack([trainable.features(network, model, [item]).detach().numpy() for item in inputs]).astype(float)
    centre = features.mean(axis=0)
    centred = features - centre
    gram = centred.T @ centred + 1.0 * len(targets) * np.eye(centred.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (targets - targets.mean()))
    head = torch.nn.Linear(features.shape[1], 1, dtype=torch.float32)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(weights[None, :], dtype=torch.float32))
        head.bias.copy_(torch.tensor([targets.mean() - centre @ weights], dtype=torch.float32))
    return head
