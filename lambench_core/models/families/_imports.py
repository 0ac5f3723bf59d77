"""Import a model package inside a factory, turning its absence into one clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from lambench_core.errors import ModelPackageMissingError
from lambench_core.models.card import ModelCard


def require_module(card: ModelCard, module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelPackageMissingError(
            f"model {card.name}: family '{card.family}' needs the Python module '{module}', which "
            f"cannot be imported ({exc.msg}); install the family's packages: "
            + ", ".join(f"{name}=={version}" for name, version in card.packages.items())
        ) from None
