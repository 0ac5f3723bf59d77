"""The campaign DAG's OPs, the same on every engine: plan → run (one per job) → aggregate → publish
[→ compare].

Every parameter is a short string, so a DAG of thousands of run steps stays small: only the plan step
receives the campaign spec; it stores the plan beside the campaign's outputs, and every later step
receives the store, the campaign id (and a run step its job's key) and reads the plan from there.

One failure policy on every engine: a job that scored nothing is stored as a failure, then fails its
step with FatalError (never retried: the same model on the same data fails again) or, when the cause
was the infrastructure (device out of memory, storage unreachable, a batch job cancelled or its node
lost), with TransientError, which the engine retries up to its configured count. One reuse policy: a
job whose result is in the store is never computed again (unless the campaign forces it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from dflow.python import OP, OPIO, FatalError, OPIOSign, TransientError

from lambench_core.campaign import CampaignSpec, Job, Plan, execute_job_with_deadline, failure, plan_campaign
from lambench_core.errors import LambenchError
from lambench_core.report.compare import compare_runs, comparison_markdown, load_run
from lambench_core.report.publish import SITE, aggregate_campaign, publish_campaign
from lambench_core.results.record import Status
from lambench_core.results.store import ResultStore

PLAN_FILE = "plan.json"
LATEST = "latest.json"
# Exit code of a run step stopped by its batch system (the dflow step then fails; transient or not
# is in the stored failure).
EXIT_STOPPED = 4


def read_plan(store: ResultStore, campaign: str) -> Plan:
    data = store.get_campaign_file(campaign, PLAN_FILE)
    if data is None:
        raise LambenchError(f"{store.url}: campaign {campaign} has no {PLAN_FILE} (its plan step has not run)")
    return Plan.model_validate_json(data)


class CampaignOP(OP):
    """An OP whose signature is its `input_names` and `output_names`, every one a string.

    (Not `inputs`/`outputs`: dflow's step script hands `OP.outputs`, a dict it fills, to
    `handle_outputs` when `execute` raises; a class attribute of that name made a FatalError exit 1,
    the code of a TransientError, through a TypeError.)"""

    input_names: ClassVar[tuple[str, ...]] = ()
    output_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign(dict.fromkeys(cls.input_names, str))

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign(dict.fromkeys(cls.output_names, str))


class PlanCampaign(CampaignOP):
    """Validate names and checksums once more where the steps run, and store the plan.

    `campaign`, when set, replaces the spec's id: a nightly run publishes under `<id>/<workflow name>`.
    """

    input_names = ("spec", "campaign")
    output_names = ("summary",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        spec = CampaignSpec.model_validate_json(op_in["spec"])
        if op_in["campaign"]:
            spec = spec.model_copy(update={"campaign_id": op_in["campaign"]})
        store = ResultStore.open(spec.store)
        try:
            plan = plan_campaign(spec, store)
        except LambenchError as exc:
            raise FatalError(str(exc)) from exc
        store.put_campaign_file(spec.campaign_id, PLAN_FILE, plan.model_dump_json(indent=1).encode())
        return OPIO({"summary": json.dumps({"to_run": len(plan.to_run), "already_done": len(plan.already_done)})})


class RunJob(CampaignOP):
    """One job, found by its key in the stored plan; its result (or failure) goes to the store."""

    input_names = ("store", "campaign", "job_key")
    output_names = ("status",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        key = op_in["job_key"]
        try:
            store = ResultStore.open(op_in["store"])
            plan = read_plan(store, op_in["campaign"])
            done = store.has(key) and not plan.campaign.force
            previous = store.get_failure(key)
        except Exception as exc:  # the store is unreachable: the job itself is fine, try again later
            raise TransientError(f"reading the store for {key}: {exc}") from exc
        if done:
            return OPIO({"status": "reused"})
        spec = plan.campaign
        try:
            job = plan.job(key)
        except LambenchError as exc:
            raise FatalError(str(exc)) from exc
        if previous is not None and previous.attempt == plan.attempt and not previous.transient:
            # A batch system resubmits a job it saw killed; a failure for good stays one.
            raise FatalError(f"{job.model} on {job.instance.name}: {previous.error}")
        with _record_when_stopped(plan, job, store):
            result = execute_job_with_deadline(spec, job, store)
        result.attempt = plan.attempt
        try:
            store.put(result)
        except Exception as exc:  # the store was unreachable: another try may succeed
            raise TransientError(f"storing {job.key}: {exc}") from exc
        if result.status == Status.FAILED:
            reason = f"{job.model} on {job.instance.name}: {result.error}"
            raise TransientError(reason) if result.transient else FatalError(reason)
        return OPIO({"status": result.status.value})


# Slurm job states after which another try may succeed; TIMEOUT is not among them (the same job on
# the same limit times out again), nor is a job's own failure.
TRANSIENT_SLURM_STATES = {"CANCELLED", "PREEMPTED", "NODE_FAIL", "REQUEUED", "BOOT_FAIL"}


def slurm_job_state(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict ({} when scontrol cannot say)."""
    try:
        text = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def stopped_reason(job_id: str) -> tuple[str, bool]:
    """Why Slurm stopped this job, and whether another try may succeed. Asked while the job is
    still COMPLETING: its Reason says TimeLimit when the time limit ended it."""
    info = slurm_job_state(job_id)
    state, why = info.get("JobState", "UNKNOWN"), info.get("Reason", "None")
    where = f"Slurm job {job_id} on {info.get('NodeList') or os.environ.get('SLURMD_NODENAME', '?')}"
    if state == "TIMEOUT" or why == "TimeLimit":
        return f"{where} exceeded its Slurm time limit ({info.get('TimeLimit', '?')}): TIMEOUT", False
    if state in TRANSIENT_SLURM_STATES:
        return f"{where} was stopped by Slurm: {state} (reason {why})", True
    return f"{where} was stopped by Slurm (SIGTERM: CANCELLED by scancel, preempted or its node lost; {state})", True


@contextmanager
def _record_when_stopped(plan: Plan, job: Job, store: ResultStore) -> Iterator[None]:
    """Inside a Slurm job, a SIGTERM (scancel, the time limit, preemption) stores the job's failure
    with Slurm's reason before the step ends: the campaign aggregates it, the next one retries it."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum: int, frame: object) -> None:
        reason, transient = stopped_reason(job_id)
        try:
            store.put(failure(plan.campaign, job, reason, transient=transient, attempt=plan.attempt))
        finally:
            os._exit(EXIT_STOPPED)

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class AggregateCampaign(CampaignOP):
    """Every planned job's result → the leaderboard tables. A planned job with neither a result nor a
    failure (its step was killed before it could store one) is recorded as failed first, so the
    leaderboard shows it and the next campaign retries it."""

    input_names = ("store", "campaign")
    output_names = ("summary",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        store = ResultStore.open(op_in["store"])
        plan = read_plan(store, op_in["campaign"])
        for job in plan.to_run:
            if store.get(job.key) is None and store.get_failure(job.key) is None:
                reason = "its run step ended without storing a result (killed, node lost or storage unreachable)"
                store.put(failure(plan.campaign, job, reason, transient=True, attempt=plan.attempt))
        board = aggregate_campaign(plan.campaign, plan.all_jobs, store)
        models = [scores.model for scores in board.scoreboard.models]
        ranked = [scores.model for scores in board.scoreboard.models if scores.rank is not None]
        return OPIO({"summary": json.dumps({"models": models, "ranked": ranked})})


class PublishCampaign(CampaignOP):
    """The leaderboard site and exports into the store (and into `output_dir` when given)."""

    input_names = ("store", "campaign", "output_dir", "aggregate")
    output_names = ("site",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        store = ResultStore.open(op_in["store"])
        plan = read_plan(store, op_in["campaign"])
        publish_campaign(plan.campaign, store, Path(op_in["output_dir"]) if op_in["output_dir"] else None)
        return OPIO({"site": f"{store.url}/campaigns/{plan.campaign.campaign_id}/{SITE}/index.html"})


class CompareWithPrevious(CampaignOP):
    """The last step of a nightly run: compare this run's site with the series' previous run, write
    the report beside this run's site, then point the series' `latest.json` at this run."""

    input_names = ("store", "campaign", "series", "site")
    output_names = ("regressions",)

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        store = ResultStore.open(op_in["store"])
        campaign, series = op_in["campaign"], op_in["series"]
        current = op_in["site"].removesuffix("/index.html")
        pointer = store.get_campaign_file(series, LATEST)
        regressions = 0
        if pointer is not None:
            comparison = compare_runs(load_run(json.loads(pointer)["site"]), load_run(current))
            regressions = len(comparison.regressions)
            store.put_campaign_file(campaign, "comparison.md", comparison_markdown(comparison).encode())
            store.put_campaign_file(campaign, "comparison.json", comparison.model_dump_json(indent=1).encode())
        run = campaign.removeprefix(f"{series}/")
        store.put_campaign_file(series, LATEST, json.dumps({"site": current, "run": run}).encode())
        return OPIO({"regressions": str(regressions)})
