"""Recipes: how a shipped dataset is made — structures, generators, reference calculators.

`lambench data build RECIPE` runs a recipe as a dflow DAG (workflows/data_dag.py) through the
functions here: generate frames → label each chunk (cached by a per-frame key, so a rerun labels
only what is missing) → assemble the dataset files, provenance and manifest entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from ase import Atoms
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lambench_core.categories import Category
from lambench_core.data.labelling.generators import GeneratorSpec, StructureSpec, build_structure, generate
from lambench_core.data.labelling.reference import ReferenceLabels, reference_calculator
from lambench_core.data.manifest import dataset_use
from lambench_core.domains import Domain
from lambench_core.errors import InputError, first_validation_problem
from lambench_core.hashing import sha256_json
from lambench_core.models.catalog import ModelCatalog

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
SETS_DIR = Path(__file__).resolve().parents[1] / "sets"


class ReferenceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    settings: dict[str, Any] = Field(default_factory=dict)
    pulay_stress_GPa: float = Field(
        default=0.0,
        description="Isotropic stress that the finite plane-wave basis adds (σ at this cutoff minus σ at "
        "twice the cutoff, on the ideal base structure); subtracted from every stress at assembly. "
        "Not part of a label's identity: labels are stored uncorrected.",
    )
    convergence: str | None = Field(
        default=None,
        description="The convergence protocol that certifies these labels (convergence.py; None: the "
        "code's default, qe-tight or pyscf-tight)",
    )


class SystemSpec(BaseModel):
    """One base structure and the generators applied to it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    structure: StructureSpec
    generators: list[GeneratorSpec] = Field(min_length=1)
    charge: int = 0
    spin: int = Field(default=1, ge=1, description="Spin multiplicity 2S+1")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The benchmark set (the group of its label sets)")
    domain: Domain
    use: Annotated[Category, BeforeValidator(dataset_use)] = Field(
        default=Category.FORCE_FIELD,
        description="force_field: a benchmark set of M_FF; property: reference data of a property task",
    )
    description: str
    licence: str = "CC-BY-4.0"
    seed: int
    systems: list[SystemSpec] = Field(min_length=1)
    references: dict[str, ReferenceSpec] = Field(min_length=1, description="level → reference calculator")
    labels: list[str] = Field(default=["energy", "forces"], description="virial added for periodic sets")
    chunk_size: int = Field(default=1, gt=0, le=1000, description="Frames per labelling step")

    def dataset_name(self, level: str) -> str:
        return f"{self.name}_{level}"


def load_recipe(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
        raise InputError(path, None, f"recipe not found (shipped recipes: {known})") from None
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise InputError(path, *first_validation_problem(exc)) from None


def generate_frames(recipe: Recipe, catalog: ModelCatalog | None = None) -> list[Atoms]:
    """Every unlabelled frame of a recipe, deterministically; `info` carries id, system, charge and spin.
    A recipe with a model-driven generator (`md`) needs the `catalog` its driver is looked up in."""
    frames: list[Atoms] = []
    for system_index, system in enumerate(recipe.systems):
        base = build_structure(system.structure)
        # Frame ids number each generator kind through the system, so two generators of one kind
        # (Si and C vacancies) never give two frames one id: scores are resampled by frame id.
        numbered: dict[str, int] = {}
        for generator_index, spec in enumerate(system.generators):
            rng = np.random.default_rng([recipe.seed, system_index, generator_index])
            start = numbered.get(spec.generator, 0)
            generated = generate(spec, base, rng, catalog)
            numbered[spec.generator] = start + len(generated)
            for index, atoms in enumerate(generated, start=start):
                # A generator may describe its frames with scalars (a strain, a dihedral angle)
                # that property tasks read back; builders' own info (ASE's adsorbate_info) is dropped.
                atoms.info = {
                    **{k: v for k, v in atoms.info.items() if isinstance(v, int | float | str | bool)},
                    "frame_id": f"{system.name}-{spec.generator}-{index:03d}",
                    "system": system.name,
                    "charge": system.charge,
                    "spin": system.spin,
                }
                atoms.calc = None
                frames.append(atoms)
    return frames


def write_frames(path: Path, frames: list[Atoms]) -> None:
    """Unlabelled frames as an ASE trajectory: exact float64, so frame keys survive the round trip
    (extxyz rounds positions to 8 decimals)."""
    from ase.io import write

    write(path, frames, format="traj")


def read_frames(path: Path) -> list[Atoms]:
    from ase.io import read

    frames: list[Atoms] = list(read(path, index=":", format="traj"))
    for atoms in frames:
        atoms.calc = None
    return frames


def frame_key(reference: ReferenceSpec, atoms: Atoms) -> str:
    """Identity of one label: the reference's code and settings and the exact structure."""
    return sha256_json(
        {
            "code": reference.code,
            "settings": reference.settings,
            "numbers": atoms.numbers.tolist(),
            "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(),
            "pbc": atoms.pbc.tolist(),
            "charge": atoms.info.get("charge", 0),
            "spin": atoms.info.get("spin", 1),
        }
    )[:24]


class LabelCache:
    """Labels on disk, one JSON per frame key, written atomically; a rerun skips what is there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> ReferenceLabels | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return ReferenceLabels.model_validate_json(path.read_text())
        except ValidationError:
            return None

    def put(self, key: str, labels: ReferenceLabels) -> None:
        temporary = self.root / f".{key}.tmp"
        temporary.write_text(labels.model_dump_json())
        temporary.replace(self._path(key))


def label_frames(reference: ReferenceSpec, frames: list[Atoms], cache: LabelCache, scratch: Path) -> int:
    """Label the frames not yet in the cache; returns how many were computed."""
    calculator = reference_calculator(reference.code)
    settings = calculator.Settings.model_validate(reference.settings)
    calculator.check_available(settings)
    computed = 0
    for atoms in frames:
        key = frame_key(reference, atoms)
        if cache.get(key) is not None:
            continue
        workdir = scratch / key
        workdir.mkdir(parents=True, exist_ok=True)
        cache.put(key, calculator.label(atoms, settings, workdir))
        computed += 1
    return computed


def reference_provenance(reference: ReferenceSpec) -> dict[str, Any]:
    calculator = reference_calculator(reference.code)
    return calculator.provenance(calculator.Settings.model_validate(reference.settings))


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True, default=str) + "\n")
