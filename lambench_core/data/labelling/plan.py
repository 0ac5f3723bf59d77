"""The plan of a labelling run: which frames of a recipe still need which reference labels, in
keyed chunks (a chunk's key is the hash of its frames' label keys, so a rerun finds its steps)."""

from __future__ import annotations

from pathlib import Path

from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.data.labelling.convergence import MIN_SAMPLE, sample_frames, tightened
from lambench_core.data.labelling.recipe import (
    LabelCache,
    Recipe,
    ReferenceSpec,
    frame_key,
    generate_frames,
    read_frames,
    write_frames,
)
from lambench_core.errors import InputError, LambenchError
from lambench_core.hashing import sha256_json
from lambench_core.models.catalog import ModelCatalog

LABELLING_PLAN_FILE = "labelling_plan.json"


class Chunk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str
    indices: list[int]
    key: str


class CertifyTarget(BaseModel):
    """What a certification run checks: the shipped set, its labels and the sampled frames."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    level: str
    entry_file: str
    labels_file: str
    labels_sha256: str
    shipped_reference: ReferenceSpec
    sample: list[tuple[str, str]] = Field(description="(frame id, why it was chosen)")
    note: str = Field(default="", description="Why the set ships as it is if it fails (kept from the last certificate)")


class LabellingPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: Recipe
    frames_file: str = Field(description="The generated frames, so steps need not regenerate them")
    levels: list[str]
    keys: dict[str, list[str]]
    chunks: list[Chunk]
    already_labelled: int
    cache: str
    scratch: str
    out_dir: str
    max_frames: int | None
    certify: CertifyTarget | None = Field(default=None, description="Set for a certification run")


def _chunks(
    recipe: Recipe, levels: list[str], frames: list[Atoms], label_cache: LabelCache
) -> tuple[dict[str, list[str]], list[Chunk], int]:
    """Label keys per level, the keyed chunks of the frames not yet in the cache, how many are."""
    keys: dict[str, list[str]] = {}
    chunks: list[Chunk] = []
    done = 0
    for level in levels:
        reference = recipe.references[level]
        keys[level] = [frame_key(reference, atoms) for atoms in frames]
        missing = [i for i, key in enumerate(keys[level]) if label_cache.get(key) is None]
        done += len(frames) - len(missing)
        for start in range(0, len(missing), recipe.chunk_size):
            indices = missing[start : start + recipe.chunk_size]
            chunk_key = sha256_json([keys[level][i] for i in indices])[:20]
            chunks.append(Chunk(level=level, indices=indices, key=chunk_key))
    return keys, chunks, done


def plan_labelling(
    recipe: Recipe, run_dir: Path, cache: Path, out_dir: Path, levels: list[str] | None, max_frames: int | None
) -> LabellingPlan:
    frames = generate_frames(recipe, ModelCatalog.load())[:max_frames]
    return _plan(recipe, levels or list(recipe.references), frames, run_dir, cache, out_dir, max_frames)


def _plan(
    recipe: Recipe,
    levels: list[str],
    frames: list[Atoms],
    run_dir: Path,
    cache: Path,
    out_dir: Path,
    max_frames: int | None,
    certify: CertifyTarget | None = None,
) -> LabellingPlan:
    """Write the frames for the steps and plan their keyed chunks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    frames_file = run_dir / "frames.traj"
    write_frames(frames_file, frames)
    # Keys from the frames as the label steps will read them (extxyz gives numpy scalars in `info`).
    keys, chunks, done = _chunks(recipe, levels, read_frames(frames_file), LabelCache(cache))
    return LabellingPlan(
        recipe=recipe,
        levels=levels,
        keys=keys,
        chunks=chunks,
        already_labelled=done,
        frames_file=str(frames_file),
        cache=str(cache),
        scratch=str(run_dir / "scratch"),
        out_dir=str(out_dir),
        max_frames=max_frames,
        certify=certify,
    )


def plan_certification(
    recipe: Recipe,
    level: str,
    set_dir: Path,
    run_dir: Path,
    cache: Path,
    n_sample: int = MIN_SAMPLE,
    note: str = "",
) -> LabellingPlan:
    """Label a sample of the shipped frames of `recipe`'s `level` at its protocol's check level (one
    keyed step per frame), then certify: the plan of `lambench data certify`."""
    from ase.io import read

    from lambench_core.data.checksums import path_sha256
    from lambench_core.data.manifest import read_entry_file

    if level not in recipe.references:
        raise LambenchError(f"recipe {recipe.name} has no level {level!r} (levels: {', '.join(recipe.references)})")
    entry_file = set_dir / f"{level}.entry.yaml"
    entry = read_entry_file(entry_file)
    labels_file = set_dir / entry.files[0].path
    if not labels_file.exists():
        raise InputError(entry_file, "files.0.path", f"{labels_file} does not exist (build the set first)")
    shipped: list[Atoms] = list(read(labels_file, index=":"))
    sample = sample_frames(shipped, n_sample)
    frames = []
    for index, _ in sample:
        atoms = shipped[index].copy()
        atoms.calc = None
        frames.append(atoms)
    shipped_reference = recipe.references[level]
    check, _ = tightened(shipped_reference)
    check_recipe = recipe.model_copy(update={"references": {level: check}, "chunk_size": 1})
    return _plan(
        check_recipe,
        [level],
        frames,
        run_dir,
        cache,
        set_dir,
        None,
        certify=CertifyTarget(
            dataset=entry.name,
            level=level,
            entry_file=str(entry_file),
            labels_file=str(labels_file),
            labels_sha256=path_sha256(labels_file),
            shipped_reference=shipped_reference,
            sample=[(str(shipped[index].info.get("frame_id", index)), why) for index, why in sample],
            note=note,
        ),
    )


def read_labelling_plan(path: Path) -> LabellingPlan:
    return LabellingPlan.model_validate_json(path.read_text())
