"""Extended tight binding (GFN1-xTB, GFN2-xTB) through tblite's ASE calculator: semi-empirical
quantum chemistry, the physics-based baseline every user knows. No weights: the parametrizations
ship compiled into tblite. Card options are keyword arguments of `tblite.ase.TBLite` (`method`,
`accuracy`, `electronic_temperature`, ...)."""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module
from lambench_core.models.registry import register


def build_xtb(card: ModelCard, context: LoadContext) -> Calculator:
    tblite_ase = require_module(card, "tblite.ase")
    return tblite_ase.TBLite(verbosity=0, **card.options)


FAMILY = register(
    Family(
        name="xtb",
        factory=build_xtb,
        image="xtb",
        packages={"tblite": "0.8.0"},
        extra="xtb",
        no_features_reason="a tight-binding Hamiltonian has no learned representation",
    )
)
