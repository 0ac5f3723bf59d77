"""The labelling DAG: generate → label (one keyed step per chunk of missing frames) → assemble."""

from __future__ import annotations

import sys
from pathlib import Path

from dflow import Step, Workflow
from dflow.python import OP, PythonOPTemplate
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.data.labelling.recipe import LabelCache, Recipe, frame_key, generate_frames, write_frames
from lambench_core.hashing import sha256_json
from lambench_core.models.catalog import ModelCatalog
from ops.labelling import AssembleDataset, GenerateFrames, LabelChunk

LABELLING_PLAN_FILE = "labelling_plan.json"
IMAGE = "ghcr.io/lambench/labelling:0.1.0"


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


def _template(op: type[OP]) -> PythonOPTemplate:
    return PythonOPTemplate(op, image=IMAGE, command=[sys.executable], upload_dflow=False)


def build_labelling_workflow(plan: LabellingPlan) -> Workflow:
    recipe = plan.recipe.model_dump(mode="json")
    plan_key = sha256_json(plan.model_dump(mode="json"))[:12]
    generate = Step(
        "generate",
        _template(GenerateFrames),
        parameters={
            "recipe": recipe,
            "level": plan.levels[0],
            "keys": plan.keys[plan.levels[0]],
            "frames_file": plan.frames_file,
        },
        key=f"generate-{plan_key}",
    )
    labels = [
        Step(
            f"label-{index}",
            _template(LabelChunk),
            parameters={
                "recipe": recipe,
                "level": chunk.level,
                "indices": chunk.indices,
                "frames_file": plan.frames_file,
                "cache": plan.cache,
                "scratch": plan.scratch,
            },
            key=f"label-{chunk.key}",
            continue_on_failed=True,
        )
        for index, chunk in enumerate(plan.chunks)
    ]
    assemble = Step(
        "assemble",
        _template(AssembleDataset),
        parameters={
            "recipe": recipe,
            "levels": plan.levels,
            "frames_file": plan.frames_file,
            "cache": plan.cache,
            "out_dir": plan.out_dir,
        },
        key=f"assemble-{plan_key}",
    )
    workflow = Workflow(name=f"lambench-label-{plan.recipe.name.replace('_', '-').lower()}")
    workflow.add(generate)
    if labels:
        workflow.add(labels)
    workflow.add(assemble)
    return workflow
