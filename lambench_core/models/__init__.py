"""Model cards, the family registry and calculator loading."""

from lambench_core.models.card import ModelCard, load_card
from lambench_core.models.catalog import ModelCatalog, UnknownNameError
from lambench_core.models.loading import LoadedModel, load_model
from lambench_core.models.registry import LoadContext, known_families, register_family

__all__ = [
    "LoadContext",
    "LoadedModel",
    "ModelCard",
    "ModelCatalog",
    "UnknownNameError",
    "known_families",
    "load_card",
    "load_model",
    "register_family",
]
