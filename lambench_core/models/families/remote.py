"""Families whose weights are downloaded from their publishers (not shipped in a wheel).

Each factory builds the calculator from a verified local file; `resolve_weights` has already
stopped with a clear message naming the source URL when the file is not in the weights cache.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.families._imports import require_module
from lambench_core.models.registry import LoadContext, register_family


def _weights(card: ModelCard, context: LoadContext) -> str:
    if context.weights is None:
        raise ValueError(f"model {card.name}: family '{card.family}' needs weights")
    return str(context.weights)


@register_family("mace")
def build_mace(card: ModelCard, context: LoadContext) -> Calculator:
    calculators = require_module(card, "mace.calculators")
    return calculators.MACECalculator(
        model_paths=_weights(card, context),
        device=context.device,
        default_dtype=card.dtype,
        **card.options,
    )


@register_family("orb")
def build_orb(card: ModelCard, context: LoadContext) -> Calculator:
    pretrained = require_module(card, "orb_models.forcefield.pretrained")
    orb_calculator = require_module(card, "orb_models.forcefield.calculator")
    # orb-models names one loader function per released architecture; the card names it.
    options = dict(card.options)
    loader = getattr(pretrained, options.pop("loader"))
    model = loader(weights_path=_weights(card, context), device=context.device)
    return orb_calculator.ORBCalculator(model, device=context.device, **options)


@register_family("mattersim")
def build_mattersim(card: ModelCard, context: LoadContext) -> Calculator:
    forcefield = require_module(card, "mattersim.forcefield")
    return forcefield.MatterSimCalculator(
        load_path=_weights(card, context), device=context.device, **card.options
    )


@register_family("deepmd")
def build_deepmd(card: ModelCard, context: LoadContext) -> Calculator:
    calculator = require_module(card, "deepmd.calculator")
    head_option = {"head": context.head} if context.head else {}
    return calculator.DP(model=_weights(card, context), **head_option, **card.options)
