"""All model cards known to a campaign: the built-in ones plus any directories the user adds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lambench_core.errors import InputError, UnknownNameError
from lambench_core.models.card import ModelCard, load_card
from lambench_core.models.registry import known_families, load_family_module

BUILTIN_CARDS = Path(__file__).parent / "cards"

__all__ = ["BUILTIN_CARDS", "ModelCatalog"]


class ModelCatalog:
    def __init__(self, cards: dict[str, ModelCard], sources: dict[str, Path]) -> None:
        self._cards = cards
        self._sources = sources

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = ()) -> ModelCatalog:
        """The built-in cards and those of `extra_dirs`. A card directory may also hold the modules of
        its own model families (`*.py`, those starting with '_' excepted): they are imported first."""
        extra_dirs = [Path(directory) for directory in extra_dirs]
        for directory in extra_dirs:
            for module in sorted(directory.glob("*.py")):
                if not module.name.startswith("_"):
                    load_family_module(module)
        cards: dict[str, ModelCard] = {}
        sources: dict[str, Path] = {}
        for directory in (BUILTIN_CARDS, *extra_dirs):
            for path in sorted(Path(directory).glob("*.yaml")):
                card = load_card(path)
                if card.name in cards:
                    raise InputError(
                        path, "name", f"model {card.name!r} is already defined in {sources[card.name]}"
                    )
                cards[card.name] = card
                sources[card.name] = path
        return cls(cards, sources)

    def names(self) -> list[str]:
        return sorted(self._cards)

    def get(self, name: str) -> ModelCard:
        try:
            return self._cards[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown model {name!r} (known: {', '.join(self.names())})"
            ) from None

    def source(self, name: str) -> Path:
        return self._sources[name]

    def cards(self) -> list[ModelCard]:
        return [self._cards[name] for name in self.names()]

    def select(self, names: Iterable[str]) -> list[ModelCard]:
        cards = [self.get(name) for name in names]
        # An unknown family would plan fine and fail in every job: stop before the campaign starts.
        families = known_families()
        for card in cards:
            if card.family not in families:
                raise InputError(
                    self._sources[card.name],
                    "family",
                    f"unknown model family {card.family!r} (known: {', '.join(families)})",
                )
        return cards
