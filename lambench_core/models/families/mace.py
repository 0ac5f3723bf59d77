"""MACE from a downloaded checkpoint (the MACE-MP foundation models)."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module, require_weights
from lambench_core.models.registry import register


def build_mace(card: ModelCard, context: LoadContext) -> Calculator:
    calculators = require_module(card, "mace.calculators")
    return calculators.MACECalculator(
        model_paths=require_weights(card, context),
        device=context.device,
        default_dtype=card.dtype,
        **card.options,
    )


FAMILY = register(Family(name="mace", factory=build_mace, image="mace", packages={"mace-torch": "0.3.14"}))
