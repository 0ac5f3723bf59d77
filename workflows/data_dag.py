"""The labelling DAG: generate → label (one keyed step per chunk of missing frames) → assemble;
for a certification (`lambench data certify`): label (the sampled frames at the check level) → certify.

Every step receives the plan file's path (and a label step its chunk's index), encoded like the
campaign's parameters, and reads the plan from there: no user path or recipe text is pasted into a
step's script, and the DAG stays small however many frames a recipe has."""

from __future__ import annotations

from pathlib import Path

from dflow import Step, Workflow

from lambench_core.data.labelling.plan import LabellingPlan
from lambench_core.hashing import sha256_json
from ops.campaign import encode_parameter
from ops.labelling import AssembleDataset, CertifySet, GenerateFrames, LabelChunk
from workflows.engines import LocalEngine

IMAGE = "ghcr.io/lambench/labelling:0.1.0"


def build_labelling_workflow(plan: LabellingPlan, plan_file: Path) -> Workflow:
    engine = LocalEngine()
    plan_key = sha256_json(plan.model_dump(mode="json"))[:12]
    where = {"plan_file": encode_parameter(str(plan_file))}
    generate = Step(
        "generate", engine.template(GenerateFrames, IMAGE, "service"), parameters=where, key=f"generate-{plan_key}"
    )
    labels = [
        Step(
            f"label-{index}",
            engine.template(LabelChunk, IMAGE, "labelling"),
            parameters={**where, "chunk": encode_parameter(str(index))},
            key=f"label-{chunk.key}",
            continue_on_failed=True,
        )
        for index, chunk in enumerate(plan.chunks)
    ]
    name = plan.recipe.name.replace("_", "-").lower()
    if plan.certify is not None:
        certify = Step(
            "certify", engine.template(CertifySet, IMAGE, "service"), parameters=where, key=f"certify-{plan_key}"
        )
        workflow = Workflow(name=f"lambench-certify-{name}")
        if labels:
            workflow.add(labels)
        workflow.add(certify)
        return workflow
    assemble = Step(
        "assemble", engine.template(AssembleDataset, IMAGE, "service"), parameters=where, key=f"assemble-{plan_key}"
    )
    workflow = Workflow(name=f"lambench-label-{name}")
    workflow.add(generate)
    if labels:
        workflow.add(labels)
    workflow.add(assemble)
    return workflow
