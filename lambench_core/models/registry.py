"""Family registry: one calculator factory per model family, looked up by the card's `family`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ase.calculators.calculator import Calculator

from lambench_core.errors import LambenchError
from lambench_core.models.card import ModelCard


@dataclass(frozen=True)
class LoadContext:
    """What a factory needs beyond the card: verified weights, the head to use, the device."""

    weights: Path | None
    head: str | None
    device: str


class CalculatorFactory(Protocol):
    def __call__(self, card: ModelCard, context: LoadContext) -> Calculator: ...


_FACTORIES: dict[str, CalculatorFactory] = {}


class UnknownFamilyError(LambenchError):
    pass


def register_family(family: str) -> Callable[[CalculatorFactory], CalculatorFactory]:
    def register(factory: CalculatorFactory) -> CalculatorFactory:
        if family in _FACTORIES:
            raise ValueError(f"model family {family!r} is registered twice")
        _FACTORIES[family] = factory
        return factory

    return register


def known_families() -> list[str]:
    _import_builtin_families()
    return sorted(_FACTORIES)


def factory_for(family: str) -> CalculatorFactory:
    _import_builtin_families()
    try:
        return _FACTORIES[family]
    except KeyError:
        raise UnknownFamilyError(
            f"unknown model family {family!r} (known: {', '.join(sorted(_FACTORIES))})"
        ) from None


def _import_builtin_families() -> None:
    # Importing the package registers every built-in factory; heavy model packages are imported
    # only inside the factories, so listing families stays cheap.
    import lambench_core.models.families  # noqa: F401
