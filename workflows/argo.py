"""The campaign as an Argo Workflow (and a nightly CronWorkflow), built by dflow in its default mode.

The DAG comes from the one builder (`workflows.dag`) with the Argo engine: every step a pod in its
model family's image, with its task category's resources, node selector, tolerations and timeout;
this module adds the retry policy and writes the manifest. Steps share one template per (image,
category), the campaign spec travels once (a workflow parameter, read by the plan step) and a run
step carries only its job's key, so thousands of jobs make a manifest of a few hundred kilobytes. No credential is
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
from ops.campaign import encode_parameter
from workflows.cluster_config import SERVICE, ClusterConfig, Resources
from workflows.dag import NIGHTLY_RUN, build_campaign_workflow
from workflows.engines import ArgoEngine, service_image

API_VERSION = "argoproj.io/v1alpha1"
TRANSIENT_EXIT = "asInt(lastRetry.exitCode) == 1"  # dflow exits 1 on TransientError, 2 on FatalError
OOM_EXIT = "asInt(lastRetry.exitCode) == 137"
INFRASTRUCTURE = 'lastRetry.status == "Error"'  # pod deleted, node lost, preempted: not the step's fault


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


def build_workflow(
    spec: CampaignSpec,
    config: ClusterConfig,
    jobs: Sequence[Job] | None = None,
    nightly: bool = False,
    slurm: bool = False,
) -> dict[str, Any]:
    """The Workflow manifest (apiVersion, kind, metadata, spec) of the campaign, from the one DAG
    builder. With `slurm`, run steps go to the batch system of `config.slurm` from their pods."""
    context = CampaignContext(spec)
    jobs = list(jobs) if jobs is not None else campaign_jobs(spec, context)
    cards = {card.name: card for card in context.catalog.cards()}
    engine = ArgoEngine(config, service_image(config, list(cards.values())), run_steps_on_slurm=slurm)
    with _no_credentials():
        dag = build_campaign_workflow(spec, jobs, engine, cards=cards, nightly=nightly)
        manifest = dag.workflow.to_dict()
    manifest.pop("status", None)
    manifest = {"apiVersion": API_VERSION, "kind": "Workflow", **manifest}
    manifest["spec"]["serviceAccountName"] = config.argo.service_account
    manifest["metadata"]["labels"] = {"app.kubernetes.io/name": "lambench", "lambench/campaign": _label(spec)}
    for template in manifest["spec"]["templates"]:
        _retry_policy(template, config.resources_for(dag.template_groups.get(template["name"], SERVICE)))
    campaign = f"{spec.campaign_id}/{NIGHTLY_RUN}" if nightly else spec.campaign_id
    _compact(manifest, {"store": encode_parameter(spec.store), "campaign": encode_parameter(campaign)})
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
