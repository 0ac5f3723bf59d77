"""ASE's effective-medium theory: a classical potential, the cheap non-ML reference."""

from __future__ import annotations

from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT

from lambench_core.models.card import ModelCard
from lambench_core.models.registry import LoadContext, register_family


@register_family("emt")
def build_emt(card: ModelCard, context: LoadContext) -> Calculator:
    return EMT(**card.options)
