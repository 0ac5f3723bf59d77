"""DeePMD-kit (DPA) from a downloaded checkpoint; multi-head checkpoints pick their head from the card.

Its representation is the descriptor DeePMD-kit evaluates (`eval_descriptor`), where the calculator
exposes one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
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
    calculator = require_module(card, "deepmd.calculator")
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
        packages={"deepmd-kit": "3.1.0"},
        feature_extractor=atom_features,
    )
)
