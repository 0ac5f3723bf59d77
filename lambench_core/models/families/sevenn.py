"""SevenNet from a checkpoint file; multi-fidelity checkpoints pick their modal from the card's head."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.families._imports import require_module
from lambench_core.models.registry import LoadContext, register_family


@register_family("sevenn")
def build_sevenn(card: ModelCard, context: LoadContext) -> Calculator:
    calculator_module = require_module(card, "sevenn.calculator")
    if context.weights is None:
        raise ValueError(f"model {card.name}: a sevenn card needs weights")
    return calculator_module.SevenNetCalculator(
        str(context.weights), device=context.device, modal=context.head, **card.options
    )
