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
from ase.stress import voigt_6_to_full_3x3_stress

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, FineTuneRecipe, LoadContext, Prediction, require_module
from lambench_core.models.registry import register

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel


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


def _stress(output: dict[str, Any], calculator: Any) -> np.ndarray | None:
    if "s" not in output:
        return None
    stress = np.asarray(output["s"], float) * calculator.stress_weight
    return voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress


def batch_predict(model: LoadedModel, structures: Sequence[Atoms], *, stress: bool) -> list[Prediction]:
    """One `predict_graph` call over all the structures' graphs, converted as CHGNetCalculator
    converts one (energy per atom × atoms when the model is intensive, stress × its stress weight)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    calculator = _calculator(model)
    network = calculator.model
    graphs = [
        network.graph_converter(AseAtomsAdaptor.get_structure(atoms)).to(calculator.device) for atoms in structures
    ]
    outputs = network.predict_graph(graphs, task="efs" if stress else "ef", batch_size=len(graphs))
    if isinstance(outputs, dict):  # one graph: chgnet returns its dict itself
        outputs = [outputs]
    predictions: list[Prediction] = []
    for atoms, output in zip(structures, outputs, strict=True):
        factor = len(atoms) if network.is_intensive else 1
        predictions.append((float(output["e"]) * factor, np.asarray(output["f"], float), _stress(output, calculator)))
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
    )
)
