"""Model cards: the YAML that describes a model, validated before anything loads it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lambench_core.domains import Domain
from lambench_core.errors import InputError, first_validation_problem, read_yaml

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_LEVEL = "pbe"


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    energy: bool = True
    forces: bool = True
    stress: bool = False
    charge_spin: bool = False
    # Some graph models (CHGNet) build neighbour lists from the lattice and fail on a bare molecule.
    requires_pbc: bool = False


class Weights(BaseModel):
    """Where a model's parameters live and the checksum they must have.

    `location` schemes: `package://<distribution-module>/<path inside it>` (weights shipped in a
    wheel), `file:///abs/path`, or `https://...` (downloaded by the user into the weights cache).
    The location may be a directory (a model saved as several files): `sha256` then pins all of its
    files together (`lambench_core.hashing.sha256_tree`).
    """

    model_config = ConfigDict(extra="forbid")

    location: str
    sha256: str | None = Field(
        default=None,
        description="Pinned checksum; null only where the publisher gives none (then it is "
        "computed at load and recorded, and the result is flagged as unpinned).",
    )
    size_bytes: int | None = None
    filename: str | None = Field(
        default=None, description="Name of the file in the weights cache when the URL has none."
    )

    @field_validator("location")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("package://", "file://", "https://", "http://")):
            raise ValueError("must start with package://, file://, https:// or http://")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hexadecimal characters")
        return value


class RunLimits(BaseModel):
    """Structures the card's author chose not to run, and why: they are skipped (not failed), and the
    reason is shown beside each skipped item. For models whose cost grows steeply with cell size on a
    CPU (periodic GFN2-xTB: ~14 s per 64-atom call)."""

    model_config = ConfigDict(extra="forbid")

    max_periodic_atoms: int | None = Field(
        default=None, ge=0, description="Skip periodic structures (any periodic axis) with more atoms; 0: all of them"
    )
    max_atoms: int | None = Field(default=None, ge=1, description="Skip any structure with more atoms")
    reason: str = Field(min_length=1, description="Why: shown with every item the limits skip")

    def excludes(self, atoms: Atoms) -> str | None:
        """Why these limits skip `atoms`, or None."""
        if self.max_atoms is not None and len(atoms) > self.max_atoms:
            return f"{len(atoms)} atoms > the card's limit of {self.max_atoms} ({self.reason})"
        if self.max_periodic_atoms is not None and atoms.pbc.any() and len(atoms) > self.max_periodic_atoms:
            if self.max_periodic_atoms == 0:
                return f"the card runs no periodic structure ({self.reason})"
            return f"periodic, {len(atoms)} atoms > the card's limit of {self.max_periodic_atoms} ({self.reason})"
        return None


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    family: str
    version: str
    description: str
    licence: str
    citation: str | None = None
    level_of_theory: str = Field(
        min_length=1,
        description="What the model reproduces, as the leaderboard shows it beside its scores: the "
        "training data's level of theory (e.g. 'PBE/PBE+U (MPtrj)', 'r2SCAN (MatPES)', "
        "'ωB97x/6-31G(d) (ANI-1x)', 'GFN2-xTB'); `levels` gives the label-set key of each domain.",
    )
    baseline: bool = Field(
        default=False,
        description="A reference, not a contender (the normalizing dummy, a classical potential): the "
        "leaderboard shows it as a reference row, never ranked and never on the Pareto front",
    )
    weights: Weights | None = None
    heads: dict[Domain, str] = Field(
        default_factory=dict, description="Head (or fidelity/modal) to use per domain."
    )
    levels: dict[Domain, str] = Field(
        default_factory=dict,
        description="Reference level (e.g. 'wb97') each domain's head was trained at; 'pbe' if absent. "
        "Sets with several label sets are scored on the matching one.",
    )
    capabilities: Capabilities = Field(default_factory=Capabilities)
    limits: RunLimits | None = None
    elements: list[str] = Field(
        description="Element symbols, or inclusive ranges such as 'H-Bi'; ['all'] for any."
    )
    dtype: Literal["float32", "float64"] = "float32"
    image: str
    packages: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(
        default_factory=dict, description="Family-specific keyword arguments of the factory."
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-', starting alphanumeric")
        return value

    @field_validator("elements")
    @classmethod
    def _valid_elements(cls, value: list[str]) -> list[str]:
        expand_elements(value)
        return value

    def supported_elements(self) -> frozenset[str] | None:
        """The supported element symbols, or None when the model takes any element."""
        return expand_elements(self.elements)

    def head_for(self, domain: Domain) -> str | None:
        return self.heads.get(domain)

    def level_for(self, domain: Domain) -> str:
        return self.levels.get(domain, DEFAULT_LEVEL)


def expand_elements(entries: list[str]) -> frozenset[str] | None:
    if entries == ["all"]:
        return None
    symbols: set[str] = set()
    for entry in entries:
        first, _, last = entry.partition("-")
        for symbol in (first, last) if last else (first,):
            if symbol not in atomic_numbers or symbol == "X":
                raise ValueError(f"unknown element {symbol!r} in {entry!r}")
        low = atomic_numbers[first]
        high = atomic_numbers[last] if last else low
        if high < low:
            raise ValueError(f"range {entry!r} runs backwards")
        symbols.update(chemical_symbols[low : high + 1])
    return frozenset(symbols)


def load_card(path: Path) -> ModelCard:
    """Read and validate one card; any problem is one InputError naming the file and field."""
    raw = read_yaml(path, "model card")
    if not isinstance(raw, dict):
        raise InputError(path, None, "a model card must be a YAML mapping")
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise InputError(path, *first_validation_problem(exc)) from None
