"""Assemble the campaign DAG: plan → run (one keyed step per job, in parallel) → aggregate → publish."""

from __future__ import annotations

import sys
from pathlib import Path

from dflow import Step, Workflow
from dflow.python import OP, PythonOPTemplate

from lambench_core.campaign import Plan
from lambench_core.hashing import sha256_json
from ops.campaign import AggregateCampaign, PlanCampaign, PublishCampaign, RunJob

DEFAULT_IMAGE = "ghcr.io/lambench/base:0.1.0"


def run_step_key(job_key: str) -> str:
    """dflow keys must match ^[a-z0-9][-a-z0-9]*$; the job identity key is lowercase hex."""
    return f"run-{job_key}"


def _template(op: type[OP], image: str) -> PythonOPTemplate:
    # The image matters on a cluster only; locally, steps run with this interpreter.
    return PythonOPTemplate(op, image=image, command=[sys.executable], upload_dflow=False)


def build_campaign_workflow(plan: Plan, output_dir: Path | None, images: dict[str, str] | None = None) -> Workflow:
    spec = plan.campaign.model_dump(mode="json")
    campaign_key = sha256_json(spec)[:12]
    images = images or {}
    plan_step = Step(
        "plan", _template(PlanCampaign, DEFAULT_IMAGE), parameters={"spec": spec}, key=f"plan-{campaign_key}"
    )
    run_steps = [
        Step(
            f"run-{index}",
            _template(RunJob, images.get(job.model, DEFAULT_IMAGE)),
            parameters={"spec": spec, "job": job.model_dump(mode="json")},
            key=run_step_key(job.key),
            continue_on_failed=True,
        )
        for index, job in enumerate(plan.to_run)
    ]
    aggregate = Step(
        "aggregate",
        _template(AggregateCampaign, DEFAULT_IMAGE),
        parameters={"spec": spec, "jobs": [job.model_dump(mode="json") for job in plan.all_jobs]},
        key=f"aggregate-{campaign_key}",
    )
    publish = Step(
        "publish",
        _template(PublishCampaign, DEFAULT_IMAGE),
        parameters={
            "spec": spec,
            "output_dir": str(output_dir) if output_dir else "",
            "aggregate": aggregate.outputs.parameters["summary"],
        },
        key=f"publish-{campaign_key}",
    )
    workflow = Workflow(name="lambench-campaign")
    workflow.add(plan_step)
    if run_steps:
        workflow.add(run_steps)
    workflow.add(aggregate)
    workflow.add(publish)
    return workflow
