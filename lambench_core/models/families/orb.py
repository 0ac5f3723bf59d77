"""ORB from a downloaded checkpoint; the card's `loader` option names the orb-models loader function
of its architecture."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module, require_weights
from lambench_core.models.registry import register


def build_orb(card: ModelCard, context: LoadContext) -> Calculator:
    pretrained = require_module(card, "orb_models.forcefield.pretrained")
    orb_calculator = require_module(card, "orb_models.forcefield.calculator")
    # orb-models names one loader function per released architecture; the card names it.
    options = dict(card.options)
    loader = getattr(pretrained, options.pop("loader"))
    model = loader(weights_path=require_weights(card, context), device=context.device)
    return orb_calculator.ORBCalculator(model, device=context.device, **options)


FAMILY = register(Family(name="orb", factory=build_orb, image="orb", packages={"orb-models": "0.5.4"}))
