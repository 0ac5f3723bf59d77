"""Reference (first-principles) calculators as plug-ins, registered by code name.

A plug-in turns one structure into reference labels with fully recorded settings. It never
guesses: every setting that changes a number (functional, basis or pseudopotentials and their
checksums, cutoffs, k-points, smearing, spin, convergence) is in its `Settings` model and in the
provenance it reports, and a missing program or library is one clear error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ase import Atoms
from pydantic import BaseModel, ConfigDict

from lambench_core.errors import LambenchError


class ReferenceCodeMissingError(LambenchError):
    """The program or library a reference calculator needs is not installed."""


class ReferenceLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    energy: float  # eV
    forces: list[list[float]]  # eV/Å, n_atoms × 3
    stress: list[float] | None = None  # eV/Å³, Voigt order xx yy zz yz xz xy (ASE convention)
    wall_seconds: float = 0.0


class ReferenceCalculator(ABC):
    code: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    @abstractmethod
    def check_available(self, settings: BaseModel) -> None:
        """Raise ReferenceCodeMissingError (one line: what is missing and how to install it)."""

    @abstractmethod
    def label(self, atoms: Atoms, settings: BaseModel, workdir: Path) -> ReferenceLabels:
        """Energy, forces and (periodic systems) stress of `atoms`; scratch files go in `workdir`."""

    @abstractmethod
    def provenance(self, settings: BaseModel) -> dict[str, Any]:
        """Code and version, level of theory and every numerical setting, with file checksums."""


_REFERENCES: dict[str, type[ReferenceCalculator]] = {}


def register_reference(code: str) -> Callable[[type[ReferenceCalculator]], type[ReferenceCalculator]]:
    def register(cls: type[ReferenceCalculator]) -> type[ReferenceCalculator]:
        cls.code = code
        _REFERENCES[code] = cls
        return cls

    return register


def reference_calculator(code: str) -> ReferenceCalculator:
    import lambench_core.data.labelling.codes  # noqa: F401  (registers the built-in plug-ins)

    try:
        return _REFERENCES[code]()
    except KeyError:
        raise LambenchError(f"unknown reference code {code!r} (known: {', '.join(sorted(_REFERENCES))})") from None
