"""ASE's effective-medium theory: a classical potential, the cheap non-ML reference."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext
from lambench_core.models.registry import register


def build_emt(card: ModelCard, context: LoadContext) -> Calculator:
    # Imported here: ase.calculators.emt pulls in scipy.sparse (0.3 s), and every step that only
    # needs the families' names (plan, aggregate, publish) imports this module.
    from ase.calculators.emt import EMT

    return EMT(**card.options)


FAMILY = register(
    Family(
        name="emt",
        factory=build_emt,
        image="base",
        packages={"ase": "3.29.0"},
        no_features_reason="EMT is an analytic potential with no learned representation",
    )
)
