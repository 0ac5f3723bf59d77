"""The fine-tune protocol of adaptability: update the model's last interaction block together with a
linear property head, for a fixed small budget (epochs), under the same seeded k-fold folds as the
probe. Each fold starts again from the pretrained weights, and only its training part is seen.

One trainable adapter per model family (registered by family name): how to reach its network,
which parameters form its last block, and its pooled per-structure features with gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from lambench_core.models.loading import LoadedModel
from lambench_core.tasks.probing import FoldPrediction, kfold
from lambench_core.tasks.structures import prepare_for_model


@dataclass(frozen=True)
class Trainable:
    """A family's trainable path: `prepare` turns a structure into the network's input once;
    `features` maps prepared inputs to (n, d) pooled features with gradients; `last_block` names
    the parameters the budget updates."""

    network: Callable[[LoadedModel], Any]
    prepare: Callable[[LoadedModel, Atoms], Any]
    features: Callable[[Any, LoadedModel, Sequence[Any]], Any]
    last_block: Callable[[Any], list[Any]]


_TRAINABLE: dict[str, Trainable] = {}


def register_trainable(family: str, trainable: Trainable) -> None:
    if family in _TRAINABLE:
        raise ValueError(f"trainable family {family!r} registered twice")
    _TRAINABLE[family] = trainable


def trainable_reason(model: LoadedModel) -> str | None:
    if model.card.family in _TRAINABLE:
        return None
    return f"family {model.card.family!r} has no fine-tuning adapter in lambench (the probe protocol still applies)"


@dataclass(frozen=True)
class Budget:
    epochs: int = 10
    batch_size: int = 8
    block_lr: float = 1e-4
    head_lr: float = 1e-3


def fine_tune_cross_validate(
    model: LoadedModel, structures: Sequence[Atoms], y: np.ndarray, folds: int, seed: int, budget: Budget
) -> list[FoldPrediction]:
    import torch

    trainable = _TRAINABLE[model.card.family]
    pretrained = trainable.network(model)
    inputs = [trainable.prepare(model, prepare_for_model(model.card, atoms, 15.0)) for atoms in structures]
    y = np.asarray(y, dtype=float)
    predictions: list[FoldPrediction] = []
    for fold, test in enumerate(kfold(len(y), folds, seed)):
        train = np.setdiff1d(np.arange(len(y)), test)
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
            predicted = head(features).squeeze(-1).detach().numpy() * scale + mean
        name = f"finetune(last block + linear head, {budget.epochs} epochs)"
        for index, value in zip(test, predicted, strict=True):
            predictions.append(FoldPrediction(int(index), fold, float(y[index]), float(value), mean, name))
    return sorted(predictions, key=lambda p: p.index)


def _probe_initialized_head(
    trainable: Trainable, network: Any, model: LoadedModel, inputs: Sequence[Any], targets: np.ndarray
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


def _chgnet_prepare(model: LoadedModel, atoms: Atoms) -> Any:
    from pymatgen.io.ase import AseAtomsAdaptor

    return model.calculator.model.graph_converter(AseAtomsAdaptor.get_structure(atoms))


def _chgnet_features(network: Any, model: LoadedModel, graphs: Sequence[Any]) -> Any:
    return network.forward(list(graphs), task="e", return_crystal_feas=True)["crystal_fea"]


register_trainable(
    "chgnet",
    Trainable(
        network=lambda model: model.calculator.model,
        prepare=_chgnet_prepare,
        features=_chgnet_features,
        last_block=lambda network: list(network.atom_conv_layers[-1].parameters()),
    ),
)


def _sevenn_prepare(model: LoadedModel, atoms: Atoms) -> Any:
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    return unlabeled_atoms_to_graph(atoms, model.calculator.cutoff, with_shift=False)


def _sevenn_features(network: Any, model: LoadedModel, graphs: Sequence[Any]) -> Any:
    import torch
    from sevenn.atom_graph_data import AtomGraphData

    pooled = []
    readout = network._modules["reduce_input_to_hidden"]
    for graph in graphs:
        captured: list[Any] = []
        handle = readout.register_forward_pre_hook(lambda module, args, into=captured: into.append(args[0]["x"]))
        try:
            data = AtomGraphData.from_numpy_dict(graph)
            if model.calculator.modal:
                data["data_modality"] = model.calculator.modal
            data.to(model.calculator.device)
            network(data)
        finally:
            handle.remove()
        pooled.append(captured[-1].mean(dim=0))
    return torch.stack(pooled)


def _sevenn_network(model: LoadedModel) -> Any:
    """A copy without the force output: a property head needs no forces, and computing them by
    autograd in training mode (with a graph for second derivatives) would multiply the cost."""
    network = copy.deepcopy(model.calculator.model)
    if "force_output" in network._modules:
        network.delete_module_by_key("force_output")
    return network


def _sevenn_last_block(network: Any) -> list[Any]:
    blocks = sorted({name.split("_", 1)[0] for name, _ in network.named_parameters() if name[0].isdigit()}, key=int)
    last = f"{blocks[-1]}_"
    return [parameter for name, parameter in network.named_parameters() if name.startswith(last)]


register_trainable(
    "sevenn",
    Trainable(
        network=_sevenn_network,
        prepare=_sevenn_prepare,
        features=_sevenn_features,
        last_block=_sevenn_last_block,
    ),
)
