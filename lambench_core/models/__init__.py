"""Model cards, the family registry and calculator loading."""

from lambench_core.models.card import ModelCard, load_card
from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.family import Family, FineTuneRecipe, LoadContext
from lambench_core.models.loading import LoadedModel, load_model
from lambench_core.models.registry import known_families, register, register_family

__all__ = [
    "Family",
    "FineTuneRecipe",
    "LoadContext",
    "LoadedModel",
    "ModelCard",
    "ModelCatalog",
    "known_families",
    "load_card",
    "load_model",
    "register",
    "register_family",
]
