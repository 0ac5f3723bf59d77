"""The campaign as an Argo Workflow (and a nightly CronWorkflow), built by dflow in its default mode.

plan → one run step per job (in its model family's image, with its task category's resources,
node selector, tolerations, timeout and retry policy) → aggregate → publish [→ compare, nightly].
Steps share one template per (image, category), and the campaign spec travels once, as a workflow
parameter, so thousands of jobs make a manifest of a few hundred kilobytes. No credential is
written: pods read the S3 keys from a Kubernetes Secret, and dflow's own defaults are blanked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lambench_core.campaign import CampaignContext, CampaignSpec, Job, campaign_jobs
from lambench_core.errors import LambenchError
from lambench_core.hashing import sha256_json
from workflows.cluster_config import ClusterConfig, Resources
from workflows.slurm import dispatcher_executor

API_VERSION = "argoproj.io/v1alpha1"
RUN_ID = "{{workflow.name}}"
TRANSIENT_EXIT = "asInt(lastRetry.exitCode) == 1"  # dflow exits 1 on TransientError, 2 on FatalError
OOM_EXIT = "asInt(lastRetry.exitCode) == 137"
INFRASTRUCTURE = 'lastRetry.status == "Error"'  # pod deleted, node lost, preempted: not the step's fault
BASE_FAMILIES = ("dummy", "emt")


@contextmanager
def _no_credentials() -> Iterator[None]:
    """dflow embeds its global config in every script; make sure no key or token is in it."""
    from dflow import config, s3_config

    saved = dict(config), dict(s3_config)
    config.update({"token": None, "mode": "default"})
    s3_config.update({"access_key": None, "secret_key": None})
    try:
        yield
    finally:
        config.clear()
        config.update(saved[0])
        s3_config.clear()
        s3_config.update(saved[1])


def image_for(family: str, card_image: str, config: ClusterConfig) -> str:
    return config.images.get(family, card_image)


def _service_image(config: ClusterConfig, context: CampaignContext) -> str:
    if config.service_image:
        return config.service_image
    base = next((card.image for card in context.catalog.cards() if card.family in BASE_FAMILIES), None)
    return config.images.get("base", base or "ghcr.io/lambench/base:0.1.0")


def _environment(config: ClusterConfig) -> dict[str, Any]:
    from dflow.op_template import Secret

    return {
        "LAMBENCH_S3_ENDPOINT": config.s3.endpoint,
        "LAMBENCH_S3_ACCESS_KEY": Secret(name=config.s3.secret_name, key=config.s3.access_key_field),
        "LAMBENCH_S3_SECRET_KEY": Secret(name=config.s3.secret_name, key=config.s3.secret_key_field),
    }


def _template(op: type, image: str, resources: Resources, config: ClusterConfig):  # noqa: ANN202 (dflow type)
    from dflow.python import PythonOPTemplate
    from kubernetes.client import V1Toleration

    requests = {"cpu": resources.cpu, "memory": resources.memory}
    limits = {"memory": resources.memory}
    if resources.gpus:
        requests[resources.gpu_resource] = str(resources.gpus)
        limits[resources.gpu_resource] = str(resources.gpus)
    return PythonOPTemplate(
        op,
        image=image,
        command=["python3"],
        upload_dflow=False,
        requests=requests,
        limits=limits,
        node_selector=dict(resources.node_selector) or None,
        tolerations=[V1Toleration(**t.model_dump(exclude_none=True)) for t in resources.tolerations] or None,
        timeout=resources.timeout_seconds,
        envs=_environment(config),
    )


def _key(prefix: str, text: str) -> str:
    return f"{prefix}-{text}"[:63].rstrip("-")


def build_workflow(
    spec: CampaignSpec,
    config: ClusterConfig,
    jobs: Sequence[Job] | None = None,
    nightly: bool = False,
    slurm: bool = False,
) -> dict[str, Any]:
    """The Workflow manifest (apiVersion, kind, metadata, spec) of the campaign. With `slurm`, run
    steps go to the batch system of `config.slurm` through dpdispatcher instead of GPU pods."""
    if slurm and config.slurm is None:
        raise LambenchError("--executor slurm: the cluster configuration has no 'slurm' section")
    from dflow import Step, Workflow

    from ops import cluster as ops

    context = CampaignContext(spec)
    jobs = list(jobs) if jobs is not None else campaign_jobs(spec, context)
    cards = {card.name: card for card in context.catalog.cards()}
    spec_json = spec.model_dump_json()
    campaign_key = sha256_json(spec.model_dump(mode="json"))[:12]
    run_id = RUN_ID if nightly else ""
    service = config.resources_for("service")
    service_image = _service_image(config, context)
    common = {"spec": "{{workflow.parameters.spec}}", "run_id": run_id}
    with _no_credentials():
        templates: dict[tuple[str, str], Any] = {}
        run_steps = []
        categories: dict[str, str] = {}
        for index, job in enumerate(jobs):
            card = cards[job.model]
            category = job.instance.category.value
            image = image_for(card.family, card.image, config)
            template_key = (image, category)
            if template_key not in templates:
                templates[template_key] = _template(ops.RunJobOnCluster, image, config.resources_for(category), config)
            run_steps.append(
                Step(
                    f"run-{index}",
                    templates[template_key],
                    parameters={**common, "job_key": job.key},
                    key=_key("run", job.key) if not nightly else None,
                    continue_on_failed=True,
                    continue_on_error=True,
                    executor=dispatcher_executor(config.slurm) if slurm and config.slurm else None,
                )
            )
        for template_key, template in templates.items():
            categories[template.name] = template_key[1]
        plan = Step(
            "plan",
            _template(ops.PlanOnCluster, service_image, service, config),
            parameters=common,
            key=None if nightly else _key("plan", campaign_key),
        )
        aggregate = Step(
            "aggregate", _template(ops.AggregateOnCluster, service_image, service, config), parameters=common
        )
        publish = Step(
            "publish",
            _template(ops.PublishOnCluster, service_image, service, config),
            parameters={**common, "aggregate": aggregate.outputs.parameters["summary"]},
        )
        workflow = Workflow(
            name="lambench-nightly" if nightly else "lambench-campaign",
            parallelism=config.argo.parallelism,
            parameters={"spec": spec_json},
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
                    _template(ops.CompareWithPrevious, service_image, service, config),
                    parameters={**common, "site": publish.outputs.parameters["site"]},
                )
            )
        manifest = workflow.to_dict()
    manifest.pop("status", None)
    manifest = {"apiVersion": API_VERSION, "kind": "Workflow", **manifest}
    manifest["spec"]["serviceAccountName"] = config.argo.service_account
    manifest["metadata"]["labels"] = {"app.kubernetes.io/name": "lambench", "lambench/campaign": _label(spec)}
    for template in manifest["spec"]["templates"]:
        category = categories.get(template["name"])
        resources = config.resources_for(category) if category else service
        _retry_policy(template, resources)
    _compact(manifest, common)
    return manifest


def _compact(manifest: dict[str, Any], common: dict[str, str]) -> None:
    """Parameters every step passes alike (the spec reference, the run id) become the templates'
    input defaults, and empty fields go: a step then carries only its name, template and keys."""
    for template in manifest["spec"]["templates"]:
        for parameter in (template.get("inputs") or {}).get("parameters", []):
            if parameter["name"] in common:
                parameter["default"] = common[parameter["name"]]
        for group in template.get("steps") or []:
            for step in group:
                arguments = step.get("arguments", {})
                arguments["parameters"] = [
                    {k: v for k, v in p.items() if k != "description"}
                    for p in arguments.get("parameters", [])
                    if not (p["name"] in common and p.get("value") == common[p["name"]])
                ]
                for key in ("artifacts",):
                    if not arguments.get(key):
                        arguments.pop(key, None)
                if not step.get("hooks"):
                    step.pop("hooks", None)


def _label(spec: CampaignSpec) -> str:
    text = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec.campaign_id)[:63]
    return text.strip("-_.") or "campaign"


def _retry_policy(template: dict[str, Any], resources: Resources) -> None:
    """Retry transient errors and infrastructure failures, and an OOM kill on more memory if asked;
    never a FatalError (bad input, a model that cannot run these structures)."""
    if "script" not in template:
        return
    conditions = [TRANSIENT_EXIT, INFRASTRUCTURE]
    limit = resources.transient_retries + resources.infrastructure_retries
    if resources.oom_retry_memory:
        conditions.append(OOM_EXIT)
        limit += 1
        template["podSpecPatch"] = _oom_patch(resources)
    if limit == 0:
        template.pop("retryStrategy", None)
        return
    template["retryStrategy"] = {"limit": str(limit), "retryPolicy": "Always", "expression": " || ".join(conditions)}


def _oom_patch(resources: Resources) -> str:
    """On a retry, the container asks for `oom_retry_memory` (and lands on the bigger node pool);
    the first try is left as it is. The whole patch is one Argo expression on `retries`."""
    memory = resources.oom_retry_memory or resources.memory
    patch: dict[str, Any] = {
        "containers": [{"name": "main", "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}}}]
    }
    if resources.oom_retry_node_selector:
        patch["nodeSelector"] = dict(resources.oom_retry_node_selector)
    text = json.dumps(patch, separators=(",", ":"))
    if "'" in text:
        raise LambenchError(f"oom retry settings must not contain single quotes: {text}")
    return f"{{{{=asInt(retries) > 0 ? '{text}' : '{{}}'}}}}"


def cron_workflow(
    spec: CampaignSpec, config: ClusterConfig, schedule: str, timezone: str = "UTC", history: int = 7
) -> dict[str, Any]:
    """A CronWorkflow running the campaign on `schedule`, one run at a time, ending in a comparison
    with the previous night."""
    if len(schedule.split()) != 5:
        raise LambenchError(f"--schedule {schedule!r}: expected a five-field cron expression, e.g. '0 2 * * *'")
    workflow = build_workflow(spec, config, nightly=True)
    return {
        "apiVersion": API_VERSION,
        "kind": "CronWorkflow",
        "metadata": {
            "name": f"lambench-nightly-{_label(spec)}"[:52].rstrip("-"),
            "labels": workflow["metadata"]["labels"],
        },
        "spec": {
            "schedules": [schedule],  # Argo ≥ 3.6; older servers take a single "schedule"
            "timezone": timezone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": history,
            "failedJobsHistoryLimit": history,
            "workflowMetadata": {"labels": workflow["metadata"]["labels"]},
            "workflowSpec": workflow["spec"],
        },
    }


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Strict validation against Argo's schema (hera's models, extra fields forbidden): a field Argo
    does not know, or a wrong type, is an error here instead of a silent drop in the cluster."""
    from workflows.argo_schema import strict_model

    kind = manifest.get("kind")
    model = strict_model(kind)
    body = copy.deepcopy(manifest)
    try:
        model.model_validate(body)
    except Exception as exc:
        first = str(exc).splitlines()
        raise LambenchError(f"{kind} manifest invalid: {' '.join(first[:3])}") from None
