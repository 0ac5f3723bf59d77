"""dflow OPs of the labelling workflow: generate → label (one keyed step per chunk) → assemble."""

from __future__ import annotations

from pathlib import Path

from dflow.python import OP, OPIO, BigParameter, OPIOSign

from lambench_core.data.labelling.assemble import assemble
from lambench_core.data.labelling.recipe import (
    LabelCache,
    Recipe,
    frame_key,
    generate_frames,
    label_frames,
    read_frames,
)
from lambench_core.models.catalog import ModelCatalog


class GenerateFrames(OP):
    """Regenerate the recipe's frames inside the DAG and check they are the ones planned."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign(
            {"recipe": BigParameter(dict), "level": str, "keys": BigParameter(list), "frames_file": str}
        )

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"n_frames": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        recipe = Recipe.model_validate(op_in["recipe"])
        reference = recipe.references[op_in["level"]]
        planned = read_frames(Path(op_in["frames_file"]))
        regenerated = generate_frames(recipe, ModelCatalog.load())[: len(planned)]
        keys = [frame_key(reference, atoms) for atoms in regenerated]
        stored = [frame_key(reference, atoms) for atoms in planned]
        if keys != op_in["keys"] or stored != op_in["keys"]:
            raise RuntimeError("frames differ from the plan: generation is not reproducible here, or the file changed")
        return OPIO({"n_frames": len(keys)})


class LabelChunk(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign(
            {
                "recipe": BigParameter(dict),
                "level": str,
                "indices": list,
                "frames_file": str,
                "cache": str,
                "scratch": str,
            }
        )

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"computed": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        recipe = Recipe.model_validate(op_in["recipe"])
        frames = read_frames(Path(op_in["frames_file"]))
        chunk = [frames[i] for i in op_in["indices"]]
        computed = label_frames(
            recipe.references[op_in["level"]], chunk, LabelCache(Path(op_in["cache"])), Path(op_in["scratch"])
        )
        return OPIO({"computed": computed})


class AssembleDataset(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign(
            {
                "recipe": BigParameter(dict),
                "levels": list,
                "frames_file": str,
                "cache": str,
                "out_dir": str,
            }
        )

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"entries": list})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        recipe = Recipe.model_validate(op_in["recipe"])
        cache = LabelCache(Path(op_in["cache"]))
        entries = [
            assemble(recipe, level, read_frames(Path(op_in["frames_file"])), cache, Path(op_in["out_dir"]))
            .model_dump(mode="json")
            for level in op_in["levels"]
        ]
        return OPIO({"entries": entries})
