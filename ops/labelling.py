"""dflow OPs of the labelling workflow: generate → label (one keyed step per chunk) → assemble.

They take the plan file's path (and a chunk's index) as encoded string parameters, like the
campaign's OPs, and read everything else from the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from lambench_core.data.labelling.assemble import assemble
from lambench_core.data.labelling.certify import write_certificate
from lambench_core.data.labelling.plan import read_labelling_plan
from lambench_core.data.labelling.recipe import LabelCache, frame_key, generate_frames, label_frames, read_frames
from lambench_core.errors import LambenchError
from lambench_core.models.catalog import ModelCatalog
from ops.campaign import CampaignOP


class GenerateFrames(CampaignOP):
    """Regenerate the recipe's frames inside the DAG and check they are the ones planned."""

    input_names: ClassVar[tuple[str, ...]] = ("plan_file",)
    output_names: ClassVar[tuple[str, ...]] = ("n_frames",)

    def run(self, inputs: dict[str, str]) -> dict[str, str]:
        plan = read_labelling_plan(Path(inputs["plan_file"]))
        reference = plan.recipe.references[plan.levels[0]]
        planned = read_frames(Path(plan.frames_file))
        regenerated = generate_frames(plan.recipe, ModelCatalog.load())[: len(planned)]
        expected = plan.keys[plan.levels[0]]
        keys = [frame_key(reference, atoms) for atoms in regenerated]
        stored = [frame_key(reference, atoms) for atoms in planned]
        if keys != expected or stored != expected:
            raise LambenchError(
                f"{plan.frames_file}: frames differ from the plan "
                "(generation is not reproducible here, or the file changed)"
            )
        return {"n_frames": str(len(keys))}


class LabelChunk(CampaignOP):
    input_names: ClassVar[tuple[str, ...]] = ("plan_file", "chunk")
    output_names: ClassVar[tuple[str, ...]] = ("computed",)

    def run(self, inputs: dict[str, str]) -> dict[str, str]:
        plan = read_labelling_plan(Path(inputs["plan_file"]))
        chunk = plan.chunks[int(inputs["chunk"])]
        frames = read_frames(Path(plan.frames_file))
        computed = label_frames(
            plan.recipe.references[chunk.level],
            [frames[i] for i in chunk.indices],
            LabelCache(Path(plan.cache)),
            Path(plan.scratch),
        )
        return {"computed": str(computed)}


class AssembleDataset(CampaignOP):
    input_names: ClassVar[tuple[str, ...]] = ("plan_file",)
    output_names: ClassVar[tuple[str, ...]] = ("entries",)

    def run(self, inputs: dict[str, str]) -> dict[str, str]:
        plan = read_labelling_plan(Path(inputs["plan_file"]))
        cache = LabelCache(Path(plan.cache))
        frames = read_frames(Path(plan.frames_file))
        entries = [
            assemble(plan.recipe, level, frames, cache, Path(plan.out_dir)).model_dump(mode="json")
            for level in plan.levels
        ]
        return {"entries": json.dumps(entries)}


class CertifySet(CampaignOP):
    """Compare the check level's labels of the sampled frames with the shipped ones; write the
    certificate beside the set and pin it in the set's entry."""

    input_names: ClassVar[tuple[str, ...]] = ("plan_file",)
    output_names: ClassVar[tuple[str, ...]] = ("certificate",)

    def run(self, inputs: dict[str, str]) -> dict[str, str]:
        plan = read_labelling_plan(Path(inputs["plan_file"]))
        path = write_certificate(plan)
        return {"certificate": str(path)}
