"""CHGNet from a checkpoint file (the pretrained ones ship inside the chgnet wheel).

Card options: `model` (keyword arguments of `CHGNet.from_file`, e.g. `mlp_out_bias: true`, which
the 0.2.0 checkpoint needs) and `calculator` (keyword arguments of `CHGNetCalculator`).
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator

from lambench_core.models.card import ModelCard
from lambench_core.models.families._imports import require_module
from lambench_core.models.registry import LoadContext, register_family


@register_family("chgnet")
def build_chgnet(card: ModelCard, context: LoadContext) -> Calculator:
    model_module = require_module(card, "chgnet.model")
    dynamics = require_module(card, "chgnet.model.dynamics")
    if context.weights is None:
        raise ValueError(f"model {card.name}: a chgnet card needs weights")
    model = model_module.CHGNet.from_file(str(context.weights), **card.options.get("model", {}))
    return dynamics.CHGNetCalculator(model, use_device=context.device, **card.options.get("calculator", {}))
