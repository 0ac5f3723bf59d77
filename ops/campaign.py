"""The four OPs of the campaign DAG: plan → run (one per job) → aggregate → publish."""

from __future__ import annotations

from pathlib import Path

from dflow.python import OP, OPIO, BigParameter, FatalError, OPIOSign

from lambench_core.campaign import CampaignSpec, Job, execute_job_with_deadline, plan_campaign
from lambench_core.report.publish import aggregate_campaign, publish_campaign
from lambench_core.results.store import ResultStore


class PlanCampaign(OP):
    """Validate names and checksums once more inside the DAG and record the plan in the store."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"spec": BigParameter(dict)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"summary": dict})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = CampaignSpec.model_validate(op_in["spec"])
        store = ResultStore.open(spec.store)
        plan = plan_campaign(spec, store)
        store.put_campaign_file(spec.campaign_id, "plan.json", plan.model_dump_json(indent=1).encode())
        return OPIO({"summary": {"to_run": len(plan.to_run), "already_done": len(plan.already_done)}})


class RunJob(OP):
    """Run one (model, task) job and store its result.

    A job that scored nothing is stored as a failure and then fails the step (FatalError: retrying
    the same model on the same data cannot help), so `reuse_step` never reuses it.
    """

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"spec": BigParameter(dict), "job": BigParameter(dict)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"status": dict})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = CampaignSpec.model_validate(op_in["spec"])
        job = Job.model_validate(op_in["job"])
        store = ResultStore.open(spec.store)
        result = execute_job_with_deadline(spec, job, store)
        store.put(result)
        if result.status == "failed":
            raise FatalError(f"{job.model} on {job.instance.name}: {result.error}")
        return OPIO({"status": {"key": job.key, "status": result.status.value}})


class AggregateCampaign(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"spec": BigParameter(dict), "jobs": BigParameter(list)})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"summary": dict})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = CampaignSpec.model_validate(op_in["spec"])
        jobs = [Job.model_validate(job) for job in op_in["jobs"]]
        board = aggregate_campaign(spec, jobs, ResultStore.open(spec.store))
        ranked = [scores.model for scores in board.scoreboard.models]
        scored = sum(scores.rank is not None for scores in board.scoreboard.models)
        return OPIO({"summary": {"models": ranked, "scored": scored}})


class PublishCampaign(OP):
    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"spec": BigParameter(dict), "output_dir": str, "aggregate": dict})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"files": list})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = CampaignSpec.model_validate(op_in["spec"])
        output_dir = Path(op_in["output_dir"]) if op_in["output_dir"] else None
        written = publish_campaign(spec, ResultStore.open(spec.store), output_dir)
        return OPIO({"files": written})
