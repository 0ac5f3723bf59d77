"""SevenNet from a checkpoint file; multi-fidelity checkpoints pick their modal from the card's head.

Its representation is the node features entering the readout (the last interaction block's scalar
output), captured by one forward pre-hook (`readout_input`) that the feature extractor and the
fine-tune recipe share; fine-tuning trains the last interaction block.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import voigt_6_to_full_3x3_stress

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, FineTuneRecipe, LoadContext, Prediction, require_module
from lambench_core.models.registry import register

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel


def build_sevenn(card: ModelCard, context: LoadContext) -> Calculator:
    calculator_module = require_module(card, "sevenn.calculator")
    if context.weights is None:
        raise ValueError(f"model {card.name}: a sevenn card needs weights")
    return calculator_module.SevenNetCalculator(
        str(context.weights), device=context.device, modal=context.head, **card.options
    )


def _calculator(model: LoadedModel) -> Any:
    """The model's SevenNetCalculator: sevenn ships no type information, so its own attributes are untyped."""
    return model.calculator


def graph_of(model: LoadedModel, atoms: Atoms) -> Any:
    """The network's input graph of a structure, at the calculator's cutoff."""
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    return unlabeled_atoms_to_graph(atoms, _calculator(model).cutoff, with_shift=False)


def readout_input(network: Any, model: LoadedModel, graph: Any, keep: Callable[[Any], Any] = lambda x: x) -> Any:
    """(n_atoms, d) node features entering `network`'s readout when it runs on `graph` (in the
    calculator's modal and device); `keep` is applied to them as they are captured."""
    from sevenn.atom_graph_data import AtomGraphData

    calculator = _calculator(model)
    captured: list[Any] = []
    readout = network._modules["reduce_input_to_hidden"]
    handle = readout.register_forward_pre_hook(lambda module, args: captured.append(keep(args[0]["x"])))
    try:
        data = AtomGraphData.from_numpy_dict(graph)
        if calculator.modal:
            data["data_modality"] = calculator.modal
        data.to(calculator.device)
        network(data)
    finally:
        handle.remove()
    return captured[-1]


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    features = readout_input(
        _calculator(model).model, model, graph_of(model, atoms), keep=lambda x: x.detach().clone()
    )
    return features.cpu().numpy()


def _pooled_features(network: Any, model: LoadedModel, graphs: Sequence[Any]) -> Any:
    import torch

    return torch.stack([readout_input(network, model, graph).mean(dim=0) for graph in graphs])


def _network(model: LoadedModel) -> Any:
    """A copy without the force output: a property head needs no forces, and computing them by
    autograd in training mode (with a graph for second derivatives) would multiply the cost."""
    network = copy.deepcopy(_calculator(model).model)
    if "force_output" in network._modules:
        network.delete_module_by_key("force_output")
    return network


def _last_block(network: Any) -> list[Any]:
    blocks = sorted({name.split("_", 1)[0] for name, _ in network.named_parameters() if name[0].isdigit()}, key=int)
    last = f"{blocks[-1]}_"
    return [parameter for name, parameter in network.named_parameters() if name.startswith(last)]


def batch_predict(model: LoadedModel, structures: Sequence[Atoms], *, stress: bool) -> list[Prediction]:
    """One forward pass over a batch of graphs (the network's batch mode, as in training), split back
    per structure with the calculator's own conversions (stress sign and Voigt order). The network
    derives stress in the same pass whatever `stress` says; it is returned only where asked for."""
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from torch_geometric.data import Batch

    calculator = _calculator(model)
    graphs = []
    for atoms in structures:
        data = AtomGraphData.from_numpy_dict(graph_of(model, atoms))
        if calculator.modal:
            data[KEY.DATA_MODALITY] = calculator.modal
        graphs.append(data)
    batch = Batch.from_data_list(graphs).to(calculator.device)
    network = calculator.model
    network.set_is_batch_data(True)
    try:
        output = network(batch)
    finally:
        network.set_is_batch_data(False)
    energies = output[KEY.PRED_TOTAL_ENERGY].detach().cpu().numpy().reshape(-1)
    forces = output[KEY.PRED_FORCE].detach().cpu().numpy()
    stresses = (-output[KEY.PRED_STRESS]).detach().cpu().numpy().reshape(len(structures), 6)
    predictions: list[Prediction] = []
    start = 0
    for index, atoms in enumerate(structures):
        voigt = stresses[index][[0, 1, 2, 4, 5, 3]]  # sevenn: xx yy zz xy yz zx → ASE's xx yy zz yz xz xy
        full = voigt_6_to_full_3x3_stress(voigt) if stress else None
        predictions.append((float(energies[index]), forces[start : start + len(atoms)], full))
        start += len(atoms)
    return predictions


FAMILY = register(
    Family(
        name="sevenn",
        factory=build_sevenn,
        image="sevenn",
        packages={"sevenn": "0.13.0"},
        extra="sevenn",
        feature_extractor=atom_features,
        finetune=FineTuneRecipe(
            network=_network, prepare=graph_of, features=_pooled_features, last_block=_last_block
        ),
        batch_predict=batch_predict,
    )
)
