"""MatterSim from a downloaded checkpoint."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module, require_weights
from lambench_core.models.registry import register


def build_mattersim(card: ModelCard, context: LoadContext) -> Calculator:
    forcefield = require_module(card, "mattersim.forcefield")
    return forcefield.MatterSimCalculator(
        load_path=require_weights(card, context), device=context.device, **card.options
    )


FAMILY = register(
    Family(name="mattersim", factory=build_mattersim, image="mattersim", packages={"mattersim": "1.2.3"})
)
