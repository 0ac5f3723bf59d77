"""CHGNet from a checkpoint file (the pretrained ones ship inside the chgnet wheel).

Card options: `model` (keyword arguments of `CHGNet.from_file`, e.g. `mlp_out_bias: true`, which
the 0.2.0 checkpoint needs) and `calculator` (keyword arguments of `CHGNetCalculator`).

Its representation is the per-atom features CHGNet's `predict_structure` returns (`atom_fea`); the
fine-tune protocol trains its last atom-convolution layer on the pooled crystal features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, FineTuneRecipe, LoadContext, Prediction, require_module
from lambench_core.models.registry import register

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel

# CHGNet's conversion of dE/dε ÷ V (eV/Å³) to GPa.
GPA_PER_EV_PER_A3 = 160.21766208


def build_chgnet(card: ModelCard, context: LoadContext) -> Calculator:
    model_module = require_module(card, "chgnet.model")
    dynamics = require_module(card, "chgnet.model.dynamics")
    if context.weights is None:
        raise ValueError(f"model {card.name}: a chgnet card needs weights")
    model = model_module.CHGNet.from_file(str(context.weights), **card.options.get("model", {}))
    return dynamics.CHGNetCalculator(model, use_device=context.device, **card.options.get("calculator", {}))


def _calculator(model: LoadedModel) -> Any:
    """The model's CHGNetCalculator: chgnet ships no type information, so its own attributes are untyped."""
    return model.calculator


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    from pymatgen.io.ase import AseAtomsAdaptor

    network = _calculator(model).model  # CHGNetCalculator keeps its CHGNet
    structure = AseAtomsAdaptor.get_structure(atoms)
    output = network.predict_structure(structure, task="e", return_atom_feas=True)
    return np.asarray(output["atom_fea"])


def _prepare(model: LoadedModel, atoms: Atoms) -> Any:
    from pymatgen.io.ase import AseAtomsAdaptor

    return _calculator(model).model.graph_converter(AseAtomsAdaptor.get_structure(atoms))


def _crystal_features(network: Any, model: LoadedModel, graphs: Sequence[Any]) -> Any:
    return network.forward(list(graphs), task="e", return_crystal_feas=True)["crystal_fea"]


def batch_predict(model: LoadedModel, structures: Sequence[Atoms], *, stress: bool) -> list[Prediction]:
    """One forward pass over all the structures' graphs and ONE backward pass for forces and strain
    derivatives together, converted as CHGNetCalculator converts one structure (energy per atom ×
    atoms when the model is intensive, stress in GPa × its stress weight).

    Not `predict_graph`: built for training, it runs a separate backward pass for forces and for
    stress, each keeping a graph for second derivatives (`create_graph=True`); on a CPU that made a
    batch of si_bulk cells slower than one call per frame. The same network functions are called
    here (`BatchedGraph.from_graphs`, `_compute`; chgnet is pinned), only the derivatives differ.
    """
    import torch
    from chgnet.model.model import BatchedGraph
    from pymatgen.io.ase import AseAtomsAdaptor

    calculator = _calculator(model)
    network = calculator.model
    network.eval()
    graphs = [
        network.graph_converter(AseAtomsAdaptor.get_structure(atoms)).to(calculator.device) for atoms in structures
    ]
    batched = BatchedGraph.from_graphs(
        graphs,
        bond_basis_expansion=network.bond_basis_expansion,
        angle_basis_expansion=network.angle_basis_expansion,
        compute_stress=stress,
    )
    output = network._compute(batched)
    atoms_per_graph = output["atoms_per_graph"]
    # `_compute` returns energy per atom for an intensive model: the derivatives are of the total.
    total = output["e"] * atoms_per_graph if network.is_intensive else output["e"]
    wrt = [*batched.atom_positions, *(batched.strains if stress else [])]
    derivatives = torch.autograd.grad(total.sum(), wrt)
    composition = 0 if network.composition_model is None else network.composition_model(graphs)
    energies = (output["e"] + composition).detach().cpu().numpy().reshape(-1)
    predictions: list[Prediction] = []
    for index, atoms in enumerate(structures):
        factor = len(atoms) if network.is_intensive else 1
        forces = -derivatives[index].detach().cpu().numpy().astype(float)
        full = None
        if stress:
            # dE/dε ÷ V in GPa (CHGNet's own unit for "s"), then the calculator's stress weight.
            strain_derivative = derivatives[len(structures) + index] / batched.volumes[index] * GPA_PER_EV_PER_A3
            full = strain_derivative.detach().cpu().numpy().astype(float) * calculator.stress_weight
        predictions.append((float(energies[index]) * factor, forces, full))
    return predictions


FAMILY = register(
    Family(
        name="chgnet",
        factory=build_chgnet,
        image="chgnet",
        packages={"chgnet": "0.4.2"},
        extra="chgnet",
        feature_extractor=atom_features,
        finetune=FineTuneRecipe(
            network=lambda model: _calculator(model).model,
            prepare=_prepare,
            features=_crystal_features,
            last_block=lambda network: list(network.atom_conv_layers[-1].parameters()),
        ),
        batch_predict=batch_predict,
        batches_periodic_on_cpu=True,
    )
)
