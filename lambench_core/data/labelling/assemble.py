"""Assemble labelled frames into a shipped dataset: extxyz, provenance and its manifest entry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

import lambench_core
from lambench_core.categories import Category
from lambench_core.data.checksums import path_sha256
from lambench_core.data.frames import Frame
from lambench_core.data.labelling.recipe import (
    LabelCache,
    Recipe,
    frame_key,
    reference_provenance,
    write_json,
)
from lambench_core.data.manifest import DatasetEntry, DatasetFile, Label
from lambench_core.data.normalization import dummy_errors_of_frames


def _labelled(recipe: Recipe, level: str, structures: list[Atoms], cache: LabelCache) -> tuple[list[Frame], list[str]]:
    reference = recipe.references[level]
    frames, missing = [], []
    for atoms in structures:
        labels = cache.get(frame_key(reference, atoms))
        if labels is None:
            missing.append(str(atoms.info["frame_id"]))
            continue
        periodic = bool(atoms.pbc.all())
        virial = None
        if periodic and labels.stress is not None:
            stress = voigt_6_to_full_3x3_stress(np.asarray(labels.stress))
            stress -= reference.pulay_stress_GPa * units.GPa * np.eye(3)
            virial = -stress * atoms.get_volume()
        frames.append(
            Frame(str(atoms.info["frame_id"]), atoms, labels.energy, np.asarray(labels.forces), virial)
        )
    return frames, missing


def _write_extxyz(path: Path, frames: list[Frame]) -> None:
    images = []
    for frame in frames:
        atoms = frame.atoms.copy()
        results: dict[str, Any] = {"energy": frame.energy, "forces": frame.forces}
        if frame.virial is not None:
            # Stored as ASE's stress (−virial / V, Voigt), the form every extxyz reader understands.
            results["stress"] = full_3x3_to_voigt_6_stress(-frame.virial / atoms.get_volume())
        atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary, images, format="extxyz")
    temporary.replace(path)


def assemble(recipe: Recipe, level: str, structures: list[Atoms], cache: LabelCache, out_dir: Path) -> DatasetEntry:
    """Write `<out_dir>/<level>.extxyz`, its provenance and manifest entry; every frame must be labelled."""
    frames, missing = _labelled(recipe, level, structures, cache)
    if missing:
        listed = ", ".join(missing[:5])
        raise RuntimeError(f"{len(missing)} frame(s) of {recipe.name}/{level} are not labelled: {listed}")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / f"{level}.extxyz"
    _write_extxyz(data, frames)
    periodic = all(frame.periodic for frame in frames)
    with_virial = periodic and all(f.virial is not None for f in frames)
    labels: list[Label] = [*recipe.labels, *(["virial"] if with_virial else [])]  # type: ignore[list-item]
    provenance = reference_provenance(recipe.references[level])
    write_json(
        out_dir / f"provenance_{level}.json",
        {
            "recipe": recipe.model_dump(mode="json"),
            "level": level,
            "reference": provenance,
            "pulay_stress_GPa_subtracted": recipe.references[level].pulay_stress_GPa,
            "lambench_version": lambench_core.__version__,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_frames": len(frames),
            "sha256": path_sha256(data),
        },
    )
    entry = DatasetEntry(
        name=recipe.dataset_name(level),
        domain=recipe.domain,
        group=recipe.name,
        level=level,
        use=recipe.use,
        format="extxyz",
        files=[DatasetFile(path=data.name, sha256=path_sha256(data))],  # relative to the entry file
        labels=labels,
        n_frames=len(frames),
        level_of_theory={
            **{k: v for k, v in provenance.items() if isinstance(v, str | int | float | bool) or v is None},
            "pulay_stress_GPa_subtracted": recipe.references[level].pulay_stress_GPa,
        },
        source=f"lambench recipe lambench_core/data/recipes/{recipe.name}.yaml (provenance_{level}.json)",
        licence=recipe.licence,
        description=recipe.description,
        # Property sets are not scored frame by frame: no M_FF normalization.
        dummy_errors=dummy_errors_of_frames(frames) if recipe.use == Category.FORCE_FIELD else None,
    )
    entry_file = out_dir / f"{level}.entry.yaml"
    entry_file.write_text(
        yaml.safe_dump(entry.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    )
    # A certificate of exactly these labels (a rebuild that changed nothing) stays pinned; any
    # other is void until `lambench data certify` runs again.
    from lambench_core.data.labelling.certify import certificate_name, pin_certificate, read_certificate

    certificate = out_dir / certificate_name(level)
    if certificate.exists() and read_certificate(certificate).labels_sha256 == entry.files[0].sha256:
        pin_certificate(entry_file, certificate)
    return entry
