"""The normalization baseline: energy from composition alone, zero forces and zero stress.

Its errors define "1" on every force-field scale, so a model scoring 1 has learned nothing beyond
counting atoms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext
from lambench_core.models.registry import register


class CompositionEnergyCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, element_energies: Mapping[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.element_energies = dict(element_energies)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        # Elements absent from the fit get 0 eV: the per-element energy shift fitted before
        # scoring absorbs any constant per element, so this choice never changes a score.
        energy = sum(self.element_energies.get(symbol, 0.0) for symbol in self.atoms.symbols)
        self.results = {
            "energy": float(energy),
            "free_energy": float(energy),
            "forces": np.zeros((len(self.atoms), 3)),
            "stress": np.zeros(6),
        }


def build_dummy(card: ModelCard, context: LoadContext) -> Calculator:
    element_energies: dict[str, float] = {}
    if context.weights is not None:
        element_energies = json.loads(context.weights.read_text())["element_energies_eV"]
    return CompositionEnergyCalculator(element_energies)


FAMILY = register(
    Family(
        name="dummy",
        factory=build_dummy,
        image="base",
        packages={},  # nothing beyond lambench itself
        no_features_reason="the dummy model has no learned representation "
        "(its energy is a sum of element constants)",
        normalizer=True,
    )
)
