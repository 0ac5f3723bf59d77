"""The plan of a labelling run: which frames of a recipe still need which reference labels, in
keyed chunks (a chunk's key is the hash of its frames' label keys, so a rerun finds its steps)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.data.labelling.recipe import LabelCache, Recipe, frame_key, generate_frames, write_frames
from lambench_core.hashing import sha256_json
from lambench_core.models.catalog import ModelCatalog

LABELLING_PLAN_FILE = "labelling_plan.json"


class Chunk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str
    indices: list[int]
    key: str


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


def plan_labelling(
    recipe: Recipe, run_dir: Path, cache: Path, out_dir: Path, levels: list[str] | None, max_frames: int | None
) -> LabellingPlan:
    frames = generate_frames(recipe, ModelCatalog.load())[:max_frames]
    run_dir.mkdir(parents=True, exist_ok=True)
    frames_file = run_dir / "frames.traj"
    write_frames(frames_file, frames)
    label_cache = LabelCache(cache)
    chosen = levels or list(recipe.references)
    keys: dict[str, list[str]] = {}
    chunks: list[Chunk] = []
    done = 0
    for level in chosen:
        reference = recipe.references[level]
        keys[level] = [frame_key(reference, atoms) for atoms in frames]
        missing = [i for i, key in enumerate(keys[level]) if label_cache.get(key) is None]
        done += len(frames) - len(missing)
        for start in range(0, len(missing), recipe.chunk_size):
            indices = missing[start : start + recipe.chunk_size]
            chunk_key = sha256_json([keys[level][i] for i in indices])[:20]
            chunks.append(Chunk(level=level, indices=indices, key=chunk_key))
    return LabellingPlan(
        recipe=recipe,
        levels=chosen,
        keys=keys,
        chunks=chunks,
        already_labelled=done,
        frames_file=str(frames_file),
        cache=str(cache),
        scratch=str(run_dir / "scratch"),
        out_dir=str(out_dir),
        max_frames=max_frames,
    )


def read_labelling_plan(path: Path) -> LabellingPlan:
    return LabellingPlan.model_validate_json(path.read_text())
