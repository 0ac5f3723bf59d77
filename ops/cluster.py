"""The campaign DAG's OPs for a cluster: the same plan → run → aggregate → publish as ops.campaign,
with small string parameters so that a manifest of thousands of steps stays small.

Every step receives the campaign spec as JSON (one workflow parameter, referenced by every step) and
a run id (the workflow's name for scheduled runs: each night publishes under its own folder); a run
step receives only its job's identity key and finds the job by re-planning the spec, which is
deterministic in the spec, the cards and the datasets baked into the image.
"""

from __future__ import annotations

import json
from typing import ClassVar

from dflow.python import OP, OPIO, FatalError, OPIOSign, TransientError

from lambench_core.campaign import CampaignSpec, campaign_jobs, execute_job_with_deadline, find_job, plan_campaign
from lambench_core.report.compare import compare_runs, comparison_markdown, load_run
from lambench_core.report.publish import SITE, aggregate_campaign, publish_campaign
from lambench_core.results.store import ResultStore

# A failure with one of these in its reason may pass on another node or a later try.
TRANSIENT_MARKERS = ("out of memory", "CUDA error", "ConnectionError", "Timeout", "timed out")
LATEST = "latest.json"


def effective_spec(spec_json: str, run_id: str) -> CampaignSpec:
    spec = CampaignSpec.model_validate_json(spec_json)
    if run_id:
        spec = spec.model_copy(update={"campaign_id": f"{spec.campaign_id}/{run_id}"})
    return spec


class _ClusterOP(OP):
    """A cluster OP's signature from its `inputs` and `outputs`: every parameter is a string."""

    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign(dict.fromkeys(cls.inputs, str))

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign(dict.fromkeys(cls.outputs, str))


class PlanOnCluster(_ClusterOP):
    inputs = ("spec", "run_id")
    outputs = ("summary",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = effective_spec(op_in["spec"], op_in["run_id"])
        store = ResultStore.open(spec.store)
        plan = plan_campaign(spec, store)
        store.put_campaign_file(spec.campaign_id, "plan.json", plan.model_dump_json(indent=1).encode())
        return OPIO({"summary": json.dumps({"to_run": len(plan.to_run), "already_done": len(plan.already_done)})})


class RunJobOnCluster(_ClusterOP):
    """One job by its key. A result already in the store is reused (a resubmitted or nightly run
    recomputes nothing); a job that scored nothing fails the step: with TransientError (retried by
    the retry policy) when its reason looks like the node's fault, else FatalError (never retried)."""

    inputs = ("spec", "run_id", "job_key")
    outputs = ("status",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = effective_spec(op_in["spec"], op_in["run_id"])
        store = ResultStore.open(spec.store)
        try:
            done = store.has(op_in["job_key"]) and not spec.force
        except Exception as exc:  # the store is unreachable: the job itself is fine, try again later
            raise TransientError(f"reading the store for {op_in['job_key']}: {exc}") from exc
        if done:
            return OPIO({"status": "reused"})
        try:
            job = find_job(spec, op_in["job_key"])
        except Exception as exc:
            raise FatalError(str(exc)) from exc
        result = execute_job_with_deadline(spec, job, store)
        try:
            store.put(result)
        except Exception as exc:  # the store was unreachable: another try may succeed
            raise TransientError(f"storing {job.key}: {exc}") from exc
        if result.status == "failed":
            reason = f"{job.model} on {job.instance.name}: {result.error}"
            if any(marker in (result.error or "") for marker in TRANSIENT_MARKERS):
                raise TransientError(reason)
            raise FatalError(reason)
        return OPIO({"status": result.status.value})


class AggregateOnCluster(_ClusterOP):
    inputs = ("spec", "run_id")
    outputs = ("summary",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = effective_spec(op_in["spec"], op_in["run_id"])
        board = aggregate_campaign(spec, campaign_jobs(spec), ResultStore.open(spec.store))
        ranked = [scores.model for scores in board.scoreboard.models if scores.rank is not None]
        return OPIO({"summary": json.dumps({"ranked": ranked})})


class PublishOnCluster(_ClusterOP):
    inputs = ("spec", "run_id", "aggregate")
    outputs = ("site",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = effective_spec(op_in["spec"], op_in["run_id"])
        store = ResultStore.open(spec.store)
        publish_campaign(spec, store, None)
        return OPIO({"site": f"{store.url}/campaigns/{spec.campaign_id}/{SITE}/index.html"})


class CompareWithPrevious(_ClusterOP):
    """The nightly run's last step: compare this run's published site with the previous run's,
    write the report beside this run's site, then point `latest` at this run."""

    inputs = ("spec", "run_id", "site")
    outputs = ("regressions",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        base = CampaignSpec.model_validate_json(op_in["spec"])
        spec = effective_spec(op_in["spec"], op_in["run_id"])
        store = ResultStore.open(spec.store)
        current = f"{store.url}/campaigns/{spec.campaign_id}/{SITE}"
        pointer = store.get_campaign_file(base.campaign_id, LATEST)
        regressions = 0
        if pointer is not None:
            previous = json.loads(pointer)["site"]
            comparison = compare_runs(load_run(previous), load_run(current))
            regressions = len(comparison.regressions)
            store.put_campaign_file(spec.campaign_id, "comparison.md", comparison_markdown(comparison).encode())
            store.put_campaign_file(spec.campaign_id, "comparison.json", comparison.model_dump_json(indent=1).encode())
        store.put_campaign_file(
            base.campaign_id, LATEST, json.dumps({"site": current, "run": op_in["run_id"]}).encode()
        )
        return OPIO({"regressions": str(regressions)})
