"""Family registry: one `Family` per model family, looked up by the card's `family`.

Built-in families are the modules of `lambench_core.models.families` (every module there is imported
on the first lookup, so adding one is adding its module); a campaign's own families are the `*.py`
files beside its cards (`--cards DIR`), imported when the catalog loads that directory.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path

from lambench_core.errors import InputError, UnknownFamilyError
from lambench_core.models.family import CalculatorFactory, Family, LoadContext

__all__ = [
    "CalculatorFactory",
    "LoadContext",
    "UnknownFamilyError",
    "families",
    "families_in_image",
    "family",
    "factory_for",
    "known_families",
    "load_family_module",
    "normalizer_families",
    "register",
    "register_family",
]

_FAMILIES: dict[str, Family] = {}
# Family modules imported from card directories: resolved file -> module name (each is imported once).
_LOADED_MODULES: dict[Path, str] = {}
_builtins_imported = False


class _Factories(MutableMapping[str, CalculatorFactory]):
    """The registered families' factories by name: a view of the registry, which the loader reads.

    Setting an entry replaces that family's factory and keeps the rest of its record (tests stand in
    for a family's calculator this way); a name not registered becomes a family with only a factory.
    """

    def __getitem__(self, name: str) -> CalculatorFactory:
        return _FAMILIES[name].factory

    def __setitem__(self, name: str, factory: CalculatorFactory) -> None:
        current = _FAMILIES.get(name)
        _FAMILIES[name] = replace(current, factory=factory) if current else Family(name=name, factory=factory)

    def __delitem__(self, name: str) -> None:
        del _FAMILIES[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(_FAMILIES))

    def __len__(self) -> int:
        return len(_FAMILIES)


_FACTORIES: MutableMapping[str, CalculatorFactory] = _Factories()


def register(family: Family) -> Family:
    """Register one family (a family module's one call); a name registered twice is an error."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    _FAMILIES[family.name] = family
    return family


def register_family(name: str) -> Callable[[CalculatorFactory], CalculatorFactory]:
    """Decorator: register a family that is only a factory (no features, fine-tuning, image or pins)."""

    def decorate(factory: CalculatorFactory) -> CalculatorFactory:
        register(Family(name=name, factory=factory))
        return factory

    return decorate


def family(name: str) -> Family:
    _import_builtin_families()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(
            f"unknown model family {name!r} (known: {', '.join(sorted(_FAMILIES))})"
        ) from None


def families() -> list[Family]:
    _import_builtin_families()
    return [_FAMILIES[name] for name in sorted(_FAMILIES)]


def known_families() -> list[str]:
    _import_builtin_families()
    return sorted(_FAMILIES)


def factory_for(name: str) -> CalculatorFactory:
    return family(name).factory


def families_in_image(image: str) -> frozenset[str]:
    """The families whose models run in `image` (a directory name under images/, e.g. 'base')."""
    return frozenset(entry.name for entry in families() if entry.image == image)


def normalizer_families() -> frozenset[str]:
    """The families whose results are the normalization baseline (the dummy model's)."""
    return frozenset(entry.name for entry in families() if entry.normalizer)


def load_family_module(path: Path) -> None:
    """Import a family module found beside the cards of a card directory, once per file.

    Any failure is one InputError naming the file: an import error, a family registered twice (a
    built-in name included), or a module that registers no family at all.
    """
    _import_builtin_families()  # first, so that a clash with a built-in name is this file's error
    path = path.resolve()
    if path in _LOADED_MODULES:
        return
    stem = re.sub(r"\W", "_", path.stem)
    name = f"lambench_family_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(path, None, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = set(_FAMILIES)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        if set(_FAMILIES) == before:
            raise ValueError("it registers no model family (call registry.register(Family(...)))")
    except Exception as exc:
        sys.modules.pop(name, None)
        for added in set(_FAMILIES) - before:
            del _FAMILIES[added]
        raise InputError(path, None, f"model family module: {type(exc).__name__}: {exc}") from None
    _LOADED_MODULES[path] = name


def _import_builtin_families() -> None:
    # Every module of the package registers one built-in family; heavy model packages are imported
    # only inside the factories, so listing families stays cheap.
    global _builtins_imported
    if _builtins_imported:
        return
    import lambench_core.models.families as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    _builtins_imported = True
