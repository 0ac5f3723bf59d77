"""The one builder of the campaign DAG, for every engine:
plan → run (one keyed step per job, or per `jobs_per_step` jobs of one model, in parallel) → aggregate
→ publish [→ compare, nightly]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambench_core.campaign import CampaignSpec, Job
from lambench_core.hashing import sha256_json
from lambench_core.models.card import ModelCard
from workflows.cluster_config import SERVICE

if TYPE_CHECKING:  # the engines import dflow; the CLI imports this module for the step keys alone
    from workflows.engines import Engine

NIGHTLY_RUN = "{{workflow.name}}"  # each scheduled run publishes under <campaign>/<workflow name>


def step_key(prefix: str, text: str) -> str:
    """dflow keys must match ^[a-z0-9][-a-z0-9]*$ and Argo labels hold 63 characters."""
    return f"{prefix}-{text}"[:63].rstrip("-")


def run_step_key(job_key: str) -> str:
    return step_key("run", job_key)


def run_groups(spec: CampaignSpec, jobs: Sequence[Job]) -> list[list[Job]]:
    """The jobs of each run step: consecutive chunks of `spec.jobs_per_step` jobs of one model and
    task category (a step has one image and one resource group), in the plan's order within a
    category; the categories whose jobs run longest first (`Category.start_order`)."""
    by_kind: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        by_kind.setdefault((job.model, job.instance.category.value), []).append(job)
    size = spec.jobs_per_step
    groups = [group[start : start + size] for group in by_kind.values() for start in range(0, len(group), size)]
    return sorted(groups, key=lambda group: group[0].instance.category.start_order)  # stable: plan order kept


def group_step_key(group: Sequence[Job]) -> str:
    """A one-job step keeps the key it always had; a group's is the hash of its jobs' keys."""
    if len(group) == 1:
        return run_step_key(group[0].key)
    return step_key("run", "g" + sha256_json([job.key for job in group])[:24])


def run_step_keys(spec: CampaignSpec, jobs: Sequence[Job]) -> dict[str, str]:
    """job key → the key of the run step that runs it."""
    return {job.key: group_step_key(group) for group in run_groups(spec, jobs) for job in group}


@dataclass
class CampaignDAG:
    workflow: Any  # dflow.Workflow
    template_groups: dict[str, str] = field(default_factory=dict)  # template name → resource group


def build_campaign_workflow(
    spec: CampaignSpec,
    jobs: Sequence[Job],
    engine: Engine,
    cards: dict[str, ModelCard] | None = None,
    output_dir: Path | None = None,
    nightly: bool = False,
) -> CampaignDAG:
    """The DAG of `spec` with one run step per job of `jobs` (the others are reused from the store)."""
    # Imported here: the OPs bring dflow (0.5 s), and the CLI imports this module for the step keys
    # alone while its DAG is built in a child process.
    from dflow import Step, Workflow

    from ops.campaign import AggregateCampaign, CompareWithPrevious, PlanCampaign, PublishCampaign, RunJob, RunJobs

    cards = cards or {}
    spec_json = spec.model_dump_json()
    campaign_key = sha256_json(spec.model_dump(mode="json"))[:12]
    campaign = f"{spec.campaign_id}/{NIGHTLY_RUN}" if nightly else spec.campaign_id
    # Every literal parameter goes through the engine (encoded where dflow pastes it into a script);
    # `publish.outputs...` references carry values the OPs encode themselves.
    value = engine.parameter
    common = {"store": value(spec.store), "campaign": value(campaign)}
    dag = CampaignDAG(workflow=None)
    templates: dict[tuple[type, str, str], Any] = {}

    def template(op: type, image: str, group: str) -> Any:
        if (op, image, group) not in templates:
            made = engine.template(op, image, group)
            templates[(op, image, group)] = made
            dag.template_groups[made.name] = group
        return templates[(op, image, group)]

    service = engine.image(None)
    plan = Step(
        "plan",
        template(PlanCampaign, service, SERVICE),
        parameters={"spec": engine.spec_argument(spec_json), "campaign": value(campaign)},
        key=None if nightly else step_key("plan", campaign_key),
    )
    run_steps = []
    for index, group in enumerate(run_groups(spec, jobs)):
        first = group[0]
        op, job_parameters = (
            (RunJob, {"job_key": value(first.key)})
            if len(group) == 1
            else (RunJobs, {"job_keys": value(",".join(job.key for job in group))})
        )
        run_steps.append(
            Step(
                f"run-{index}",
                template(op, engine.image(cards.get(first.model)), first.instance.category.value),
                parameters={**common, **job_parameters},
                key=None if nightly else group_step_key(group),
                continue_on_failed=True,
                continue_on_error=True,
                executor=engine.run_executor(first),
            )
        )
    aggregate = Step(
        "aggregate",
        template(AggregateCampaign, service, SERVICE),
        parameters=common,
        key=None if nightly else step_key("aggregate", campaign_key),
    )
    publish = Step(
        "publish",
        template(PublishCampaign, service, SERVICE),
        parameters={
            **common,
            "output_dir": value(str(output_dir) if output_dir else ""),
            "aggregate": aggregate.outputs.parameters["summary"],
        },
        key=None if nightly else step_key("publish", campaign_key),
    )
    workflow = Workflow(
        name="lambench-nightly" if nightly else "lambench-campaign",
        parallelism=engine.parallelism,
        parameters=engine.workflow_parameters(spec_json),
    )
    workflow.add(plan)
    if run_steps:
        workflow.add(run_steps)
    workflow.add(aggregate)
    workflow.add(publish)
    if nightly:
        workflow.add(
            Step(
                "compare",
                template(CompareWithPrevious, service, SERVICE),
                parameters={**common, "series": value(spec.campaign_id), "site": publish.outputs.parameters["site"]},
            )
        )
    dag.workflow = workflow
    return dag
