"""DIEP (`diep`): a PyTorch Geometric potential trained on MatPES r2SCAN, saved as a model directory
(model.json, model.pt, state.pt) inside the diep wheel; the card pins the directory as a whole."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module, require_weights
from lambench_core.models.registry import register


def build_diep(card: ModelCard, context: LoadContext) -> Calculator:
    pretrained = require_module(card, "diep.pretrained")
    # Its calculator wraps positions into the cell before building the graph (cheaper neighbour search
    # over long MD runs) and returns stress in eV/Å³, as ASE expects.
    return pretrained.make_calculator(require_weights(card, context), device=context.device, **card.options)


FAMILY = register(
    Family(
        name="diep",
        factory=build_diep,
        image="diep",
        packages={"diep": "2.0.0"},
        extra="diep",
        no_features_reason="lambench has no feature hook for DIEP yet (its package exposes none)",
    )
)
