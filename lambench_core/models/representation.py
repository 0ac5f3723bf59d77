"""A model's learned representation: per-atom features from its last hidden layer.

One extractor per model family, registered by family name (like the calculator factories). A family
without one raises RepresentationUnavailable with the reason, and adaptability tasks skip it.
Extractors read the calculator the family factory built, so the features come from the very weights
that were scored elsewhere in the campaign.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from lambench_core.models.loading import LoadedModel
from lambench_core.tasks.structures import prepare_for_model

FeatureExtractor = Callable[[LoadedModel, Atoms], np.ndarray]
_EXTRACTORS: dict[str, FeatureExtractor] = {}
NO_REPRESENTATION = {
    "dummy": "the dummy model has no learned representation (its energy is a sum of element constants)",
    "emt": "EMT is an analytic potential with no learned representation",
}


class RepresentationUnavailable(Exception):
    """The model exposes no features; the message says why."""


def register_features(family: str) -> Callable[[FeatureExtractor], FeatureExtractor]:
    def register(extractor: FeatureExtractor) -> FeatureExtractor:
        if family in _EXTRACTORS:
            raise ValueError(f"features of family {family!r} registered twice")
        _EXTRACTORS[family] = extractor
        return extractor

    return register


def has_features(model: LoadedModel) -> str | None:
    """None if the model's family exposes features, else the reason it does not."""
    family = model.card.family
    if family in _EXTRACTORS:
        return None
    return NO_REPRESENTATION.get(family, f"family {family!r} exposes no representation hook in lambench yet")


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    """(n_atoms, d) features of the structure, after the harness's usual preparation (vacuum box for
    periodic-only models)."""
    reason = has_features(model)
    if reason is not None:
        raise RepresentationUnavailable(reason)
    prepared = prepare_for_model(model.card, atoms, 15.0)
    features = np.asarray(_EXTRACTORS[model.card.family](model, prepared), dtype=float)
    if features.ndim != 2 or features.shape[0] != len(prepared) or not np.all(np.isfinite(features)):
        raise ValueError(f"{model.card.name}: features of shape {features.shape} (non-finite or not per atom)")
    return features


def pooled_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    """One vector per structure: the mean and the sum over atoms (intensive and extensive targets)."""
    features = atom_features(model, atoms)
    return np.concatenate([features.mean(axis=0), features.sum(axis=0)])


@register_features("chgnet")
def _chgnet(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    from pymatgen.io.ase import AseAtomsAdaptor

    network = model.calculator.model  # CHGNetCalculator keeps its CHGNet
    structure = AseAtomsAdaptor.get_structure(atoms)
    output = network.predict_structure(structure, task="e", return_atom_feas=True)
    return np.asarray(output["atom_fea"])


@register_features("sevenn")
def _sevenn(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    import torch
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    calculator = model.calculator
    network = calculator.model
    captured: list[torch.Tensor] = []
    # The node features entering the readout: the last interaction block's scalar output.
    readout = network._modules["reduce_input_to_hidden"]
    handle = readout.register_forward_pre_hook(lambda module, args: captured.append(args[0]["x"].detach().clone()))
    try:
        data = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, calculator.cutoff, with_shift=False))
        if calculator.modal:
            data["data_modality"] = calculator.modal
        data.to(calculator.device)
        network(data)
    finally:
        handle.remove()
    return captured[-1].cpu().numpy()


@register_features("deepmd")
def _deepmd(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    potential = getattr(model.calculator, "dp", None)
    if potential is None or not hasattr(potential, "eval_descriptor"):
        raise RepresentationUnavailable("this DeePMD calculator exposes no descriptor evaluation")
    type_map = list(potential.get_type_map())
    types = np.array([type_map.index(symbol) for symbol in atoms.get_chemical_symbols()])
    cell = atoms.cell.array.reshape(1, 9) if atoms.pbc.any() else None
    descriptor = potential.eval_descriptor(atoms.positions.reshape(1, -1), cell, types)
    return np.asarray(descriptor).reshape(len(atoms), -1)
