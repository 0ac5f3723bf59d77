"""TorchANI's ANI ensembles, built from the NeuroChem resource files inside the torchani wheel.

`torchani.models.ANI1x()` reads an `.info` file that the 2.2.4 wheel ships empty, and then tries to
download the resources; the files it would fetch are already in the wheel (`resources/ani-1x_8x`),
so the factory builds the ensemble from them itself: the AEV constants, the self-atomic energies and
the eight networks. The card's weights location is that directory (pinned as a whole).

Card options: `constants` and `self_energies` (file names inside the directory), `members` (ensemble
size), `prefix` (the networks' directory prefix).
"""

from __future__ import annotations

from pathlib import Path

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module, require_weights
from lambench_core.models.registry import register


def build_ani(card: ModelCard, context: LoadContext) -> Calculator:
    # torchani 2.2.4 imports pkg_resources (setuptools < 80) at import time: require_module names the pins.
    require_module(card, "torchani")
    neurochem = require_module(card, "torchani.neurochem")
    models = require_module(card, "torchani.models")
    nn = require_module(card, "torchani.nn")
    aev = require_module(card, "torchani.aev")
    resources = Path(require_weights(card, context))
    options = card.options
    constants = neurochem.Constants(str(resources / options["constants"]))
    energy_shifter, self_energies = neurochem.load_sae(str(resources / options["self_energies"]), return_dict=True)
    networks = neurochem.load_model_ensemble(
        constants.species, str(resources / options.get("prefix", "train")), int(options.get("members", 8))
    )
    ensemble = models.BuiltinEnsemble(
        nn.SpeciesConverter(constants.species),
        aev.AEVComputer(**constants),
        networks,
        energy_shifter,
        constants.species_to_tensor,
        constants,
        self_energies,
        True,  # periodic_table_index: species are given as atomic numbers, as ASE has them
    )
    return ensemble.to(context.device).ase()


FAMILY = register(
    Family(
        name="torchani",
        factory=build_ani,
        image="torchani",
        # setuptools: torchani 2.2.4 imports pkg_resources, which setuptools 80 removed.
        packages={"torchani": "2.2.4", "setuptools": "79.0.1"},
        extra="torchani",
        no_features_reason="lambench has no feature hook for ANI's atomic environment vectors yet",
    )
)
