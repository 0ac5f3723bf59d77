"""Convergence scans on a recipe's ideal structures: how labels move with a reference's settings.

A label set's settings are chosen from such a scan before it is labelled, and its certificate then
checks a sample of the labelled frames. `lambench data scan RECIPE --grid GRID.yaml` labels each base
structure of the recipe (undistorted, so the symmetry keeps even fine k-grids cheap) once per
variant of the settings, through the label cache, and tables every variant against the last one
(the tightest, by convention). Where the grid also holds the same settings at twice the cutoffs, the
variant's Pulay stress (σ at this cutoff minus σ at twice it, as `pulay_stress_GPa` in a recipe) is
derived and the corrected pressure is shown beside the raw one.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import GPa
from pydantic import ValidationError

from lambench_core.data.labelling.generators import build_structure
from lambench_core.data.labelling.recipe import LabelCache, Recipe, ReferenceSpec, frame_key, label_frames
from lambench_core.data.labelling.reference import ReferenceLabels, reference_calculator
from lambench_core.errors import InputError, LambenchError, first_validation_problem, read_yaml

CUTOFFS = ("ecutwfc", "ecutrho")


def load_grid(path: Path) -> dict[str, dict[str, Any]]:
    """Variant name → settings that replace the recipe reference's own (the rest are kept)."""
    raw = read_yaml(path, "scan grid")
    if not isinstance(raw, dict) or not raw:
        raise InputError(path, None, "a scan grid maps variant names to settings, e.g. {loose: {ecutwfc: 35}}")
    for name, settings in raw.items():
        if not isinstance(settings, dict):
            raise InputError(path, str(name), "each variant is a mapping of settings")
    return {str(name): dict(settings) for name, settings in raw.items()}


def variants(reference: ReferenceSpec, grid: Mapping[str, Mapping[str, Any]]) -> dict[str, ReferenceSpec]:
    return {
        name: reference.model_copy(update={"settings": {**reference.settings, **settings}, "pulay_stress_GPa": 0.0})
        for name, settings in grid.items()
    }


def _label_one(job: tuple[ReferenceSpec, Atoms, str, str]) -> str | None:
    """None, or why the label failed (one failed variant leaves the others' labels in the cache)."""
    reference, atoms, cache_root, scratch = job
    try:
        label_frames(reference, [atoms], LabelCache(Path(cache_root)), Path(scratch))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True)
class ScanRow:
    system: str
    variant: str
    energy_meV_per_atom: float | None  # relative to the last variant
    pressure_GPa: float | None  # −tr σ / 3, raw
    pulay_GPa: float | None  # σ_xx(cutoff) − σ_xx(2 × cutoff), where the grid has the doubled variant
    corrected_pressure_GPa: float | None
    pressure_vs_last_GPa: float | None  # corrected where possible, against the last variant (raw)
    wall_seconds: float
    failure: str | None = None


def _doubled(settings: dict[str, Any], others: dict[str, ReferenceSpec]) -> str | None:
    wanted = {**settings, **{key: settings[key] * 2 for key in CUTOFFS if key in settings}}
    return next((name for name, spec in others.items() if spec.settings == wanted and wanted != settings), None)


def _pressure(labels: ReferenceLabels) -> float | None:
    return None if labels.stress is None else float(-np.mean(labels.stress[:3]) / GPa)


def scan(
    recipe: Recipe, level: str, grid: Mapping[str, Mapping[str, Any]], cache: Path, scratch: Path, workers: int = 1
) -> list[ScanRow]:
    """Label every (base structure, variant) not yet in the cache, `workers` at a time, and table them."""
    specs = variants(reference_of(recipe, level), grid)
    structures = {system.name: build_structure(system.structure) for system in recipe.systems}
    jobs = [(spec, atoms, str(cache), str(scratch)) for atoms in structures.values() for spec in specs.values()]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(pool.map(_label_one, jobs))
    names = [(system, name) for system in structures for name in specs]
    failed = {pair: problem for pair, problem in zip(names, problems, strict=True) if problem is not None}
    last_name = list(specs)[-1]
    for (where, name), problem in failed.items():
        if name == last_name:
            raise LambenchError(f"scan {recipe.name}: the reference variant {name!r} failed on {where}: {problem}")

    store = LabelCache(cache)
    rows: list[ScanRow] = []
    for system, atoms in structures.items():
        labels = {name: store.get(frame_key(spec, atoms)) for name, spec in specs.items()}
        found = {name: value for name, value in labels.items() if value is not None}
        last = found[last_name]
        last_pressure = _pressure(last)
        for name, spec in specs.items():
            if name not in found:
                rows.append(ScanRow(system, name, None, None, None, None, None, 0.0, failed[(system, name)]))
                continue
            value = found[name]
            pressure = _pressure(value)
            doubled = _doubled(spec.settings, specs)
            partner = None if doubled is None or doubled not in found else found[doubled].stress
            pulay = None
            if value.stress is not None and partner is not None:
                pulay = float((value.stress[0] - partner[0]) / GPa)
            corrected = None if pressure is None or pulay is None else pressure + pulay
            best = corrected if corrected is not None else pressure
            rows.append(
                ScanRow(
                    system=system,
                    variant=name,
                    energy_meV_per_atom=(value.energy - last.energy) / len(atoms) * 1000,
                    pressure_GPa=pressure,
                    pulay_GPa=pulay,
                    corrected_pressure_GPa=corrected,
                    pressure_vs_last_GPa=None if best is None or last_pressure is None else best - last_pressure,
                    wall_seconds=value.wall_seconds,
                )
            )
    return rows


def markdown(rows: list[ScanRow], grid: Mapping[str, Mapping[str, Any]]) -> str:
    def number(value: float | None, digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        "| system | variant | settings | ΔE vs last (meV/atom) | p (GPa) | Pulay σ (GPa) | p corrected (GPa) "
        "| Δp vs last (GPa) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        settings = ", ".join(f"{key} {value}" for key, value in grid[row.variant].items())
        if row.failure is not None:
            lines.append(f"| {row.system} | {row.variant} | {settings} | failed: {row.failure} | | | | | |")
            continue
        lines.append(
            f"| {row.system} | {row.variant} | {settings} | {number(row.energy_meV_per_atom, 1)} "
            f"| {number(row.pressure_GPa)} | {number(row.pulay_GPa)} | {number(row.corrected_pressure_GPa)} "
            f"| {number(row.pressure_vs_last_GPa)} | {row.wall_seconds:.0f} |"
        )
    return "\n".join(lines)


def reference_of(recipe: Recipe, level: str) -> ReferenceSpec:
    try:
        return recipe.references[level]
    except KeyError:
        known = ", ".join(recipe.references)
        raise InputError(f"recipe {recipe.name}", "references", f"no level {level!r} (levels: {known})") from None


def validate_grid(recipe: Recipe, level: str, grid: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Every variant's settings must be valid for the code, before anything runs."""
    reference = reference_of(recipe, level)
    calculator = reference_calculator(reference.code)
    for name, spec in variants(reference, grid).items():
        try:
            calculator.Settings.model_validate(spec.settings)
        except ValidationError as exc:
            field, message = first_validation_problem(exc)
            raise InputError(path, f"{name}.{field}", message) from None
