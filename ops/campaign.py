"""The campaign DAG's OPs, the same on every engine: plan → run (one per job) → aggregate → publish
[→ compare].

Every parameter is a short string, so a DAG of thousands of run steps stays small: only the plan step
receives the campaign spec; it stores the plan beside the campaign's outputs, and every later step
receives the store, the campaign id (and a run step its job's key) and reads the plan from there.

Every parameter a DAG builder writes is `encode_parameter`'d (see there): dflow (debug mode, and Argo
alike) pastes parameter values verbatim into each step's generated Python script, so a value must
never be able to close the string literal it lands in. The OPs decode their inputs and answer in
kind. A step that fails leaves its one-line reason in `STEP_ERROR_FILE` for the runner to show.

One failure policy on every engine: a job that scored nothing is stored as a failure, then fails its
step with FatalError (never retried: the same model on the same data fails again) or, when the cause
was the infrastructure (device out of memory, storage unreachable, a batch job cancelled or its node
lost), with TransientError, which the engine retries up to its configured count. One reuse policy: a
job whose result is in the store is never computed again (unless the campaign forces it).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from dflow.python import OP, OPIO, FatalError, OPIOSign, TransientError

from lambench_core.campaign import (
    CampaignSpec,
    Job,
    Plan,
    execute_job_with_deadline,
    failure,
    load_plan,
    plan_campaign,
)
from lambench_core.errors import LambenchError
from lambench_core.models.loading import ModelCache
from lambench_core.report.compare import compare_runs, comparison_markdown, load_run
from lambench_core.report.publish import SITE, aggregate_campaign, publish_campaign
from lambench_core.results.record import Status
from lambench_core.results.store import ResultStore

PLAN_FILE = "plan.json"
LATEST = "latest.json"
# Exit code of a run step stopped by its batch system (the dflow step then fails; transient or not
# is in the stored failure).
EXIT_STOPPED = 4
# What a failed step leaves beside its outputs (`<tmp_root>/lambench-error.json`): the one line a
# user needs, read back by the runner instead of "see dag.log".
STEP_ERROR_FILE = "lambench-error.json"
# An encoded parameter: this prefix, then the UTF-8 bytes in URL-safe base64. Its alphabet
# ([A-Za-z0-9_=-] and ':') holds no quote, backslash, brace, newline, '%' or '$', so whatever the
# user typed it cannot end the r'''...''' literal dflow pastes it into, nor start a `{{...}}`
# placeholder (dflow's debug mode and Argo substitute those in parameter values too).
ENCODED = "b64:"


def encode_parameter(text: str) -> str:
    """`text` as an inert step parameter (decoded by every CampaignOP)."""
    return ENCODED + base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def decode_parameter(value: str) -> str:
    """An input parameter as the builder meant it: encoded ones decoded, plain ones (a direct
    call, an older manifest) as they are."""
    if not value.startswith(ENCODED):
        return value
    try:
        return base64.urlsafe_b64decode(value[len(ENCODED) :].encode("ascii")).decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise FatalError(f"a step parameter is not valid {ENCODED} text: {exc}") from None


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message (with its type where the message alone is vague)."""
    message = " ".join(str(exc).split())
    if isinstance(exc, (LambenchError, FatalError, TransientError)):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def read_plan(store: ResultStore, campaign: str) -> Plan:
    data = store.get_campaign_file(campaign, PLAN_FILE)
    if data is None:
        raise LambenchError(f"{store.url}: campaign {campaign} has no {PLAN_FILE} (its plan step has not run)")
    return load_plan(data)


class CampaignOP(OP):
    """An OP whose signature is its `input_names` and `output_names`, every one a string; its work
    is `run` (decoded inputs → plain outputs).

    `execute` decodes the inputs, and encodes the outputs when the inputs came encoded (they reach
    the next step's script the same way); when `run` raises inside a dflow step it leaves the reason
    in `<tmp_root>/STEP_ERROR_FILE`.

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

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        encoded = any(str(op_in[name]).startswith(ENCODED) for name in self.input_names)
        try:
            outputs = self.run({name: decode_parameter(op_in[name]) for name in self.input_names})
        except Exception as exc:
            self._leave_error(exc)
            raise
        return OPIO({name: encode_parameter(value) if encoded else value for name, value in outputs.items()})

    def run(self, inputs: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def _leave_error(self, exc: BaseException) -> None:
        if self.workflow_name is None:  # called directly, not as a dflow step: nothing to leave
            return
        try:
            path = Path(self.tmp_root) / STEP_ERROR_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            record: dict[str, Any] = {"step": type(self).__name__, "error": one_line(exc)}
            path.write_text(json.dumps(record))
        except OSError:
            pass  # a full or read-only disk: the traceback in the step's log still says why


class PlanCampaign(CampaignOP):
    """Validate names and checksums once more where the steps run, and store the plan.

    `campaign`, when set, replaces the spec's id: a nightly run publishes under `<id>/<workflow name>`.
    """

    input_names = ("spec", "campaign")
    output_names = ("summary",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        spec = CampaignSpec.model_validate_json(op_in["spec"])
        if op_in["campaign"]:
            spec = spec.model_copy(update={"campaign_id": op_in["campaign"]})
        store = ResultStore.open(spec.store)
        try:
            plan = plan_campaign(spec, store)
        except LambenchError as exc:
            raise FatalError(str(exc)) from exc
        store.put_campaign_file(spec.campaign_id, PLAN_FILE, plan.model_dump_json(indent=1).encode())
        return {"summary": json.dumps({"to_run": len(plan.to_run), "already_done": len(plan.already_done)})}


def run_one_job(
    store: ResultStore,
    plan: Plan,
    key: str,
    models: ModelCache | None = None,
    after_expiry: Callable[[], None] | None = None,
) -> str:
    """One job of the stored plan: its result (or failure) goes to the store; its status is returned.
    A failed job raises FatalError, or TransientError when the infrastructure caused it."""
    try:
        done = store.has(key) and not plan.campaign.force
        previous = store.get_failure(key)
    except Exception as exc:  # the store is unreachable: the job itself is fine, try again later
        raise TransientError(f"reading the store for {key}: {exc}") from exc
    if done:
        return "reused"
    spec = plan.campaign
    try:
        job = plan.job(key)
    except LambenchError as exc:
        raise FatalError(str(exc)) from exc
    if previous is not None and previous.attempt == plan.attempt and not previous.transient:
        # A batch system resubmits a job it saw killed (and a step of several jobs restarts itself
        # after one timed out); a failure for good stays one.
        raise FatalError(f"{job.model} on {job.instance.name}: {previous.error}")
    with _record_when_stopped(plan, job, store):
        result = execute_job_with_deadline(spec, job, store, models, after_expiry, plan.attempt)
    result.attempt = plan.attempt
    try:
        store.put(result)
    except Exception as exc:  # the store was unreachable: another try may succeed
        raise TransientError(f"storing {job.key}: {exc}") from exc
    if result.status == Status.FAILED:
        reason = f"{job.model} on {job.instance.name}: {result.error}"
        raise TransientError(reason) if result.transient else FatalError(reason)
    return result.status.value


def _open(op_in: dict[str, str]) -> tuple[ResultStore, Plan]:
    try:
        store = ResultStore.open(op_in["store"])
        return store, read_plan(store, op_in["campaign"])
    except Exception as exc:  # the store is unreachable: the jobs themselves are fine, try again later
        raise TransientError(f"reading the store's plan: {exc}") from exc


class RunJob(CampaignOP):
    """One job, found by its key in the stored plan; its result (or failure) goes to the store."""

    input_names = ("store", "campaign", "job_key")
    output_names = ("status",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        store, plan = _open(op_in)
        return {"status": run_one_job(store, plan, op_in["job_key"])}


def _restart_step() -> None:
    """Start this step's script again (same process id, same inputs): its finished jobs are reused
    from the store and the one that timed out is a stored failure, so it goes on with the rest."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


class RunJobs(CampaignOP):
    """Several jobs of one model (and task category) in one step: the model's package is imported
    and its weights loaded once. Each job keeps its own key, stored result or failure and time limit;
    a failed job does not stop the others, and the step fails (transient first) only after all ran."""

    input_names = ("store", "campaign", "job_keys")
    output_names = ("statuses",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        store, plan = _open(op_in)
        models = ModelCache()
        after_expiry = _restart_step if self.workflow_name is not None else None
        statuses: dict[str, str] = {}
        fatal: list[str] = []
        transient: list[str] = []
        for key in op_in["job_keys"].split(","):
            try:
                statuses[key] = run_one_job(store, plan, key, models, after_expiry)
            except TransientError as exc:
                statuses[key], transient = "failed", [*transient, str(exc)]
            except FatalError as exc:
                statuses[key], fatal = "failed", [*fatal, str(exc)]
        if transient:  # another try reruns only what is not stored
            raise TransientError("; ".join(transient + fatal))
        if fatal:
            raise FatalError("; ".join(fatal))
        return {"statuses": json.dumps(statuses)}


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

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        store = ResultStore.open(op_in["store"])
        plan = read_plan(store, op_in["campaign"])
        for job in plan.to_run:
            if store.get(job.key) is None and store.get_failure(job.key) is None:
                reason = "its run step ended without storing a result (killed, node lost or storage unreachable)"
                store.put(failure(plan.campaign, job, reason, transient=True, attempt=plan.attempt))
        board = aggregate_campaign(plan.campaign, plan.all_jobs, store)
        models = [scores.model for scores in board.scoreboard.models]
        ranked = [scores.model for scores in board.scoreboard.models if scores.rank is not None]
        return {"summary": json.dumps({"models": models, "ranked": ranked})}


class PublishCampaign(CampaignOP):
    """The leaderboard site and exports into the store (and into `output_dir` when given)."""

    input_names = ("store", "campaign", "output_dir", "aggregate")
    output_names = ("site",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
        store = ResultStore.open(op_in["store"])
        plan = read_plan(store, op_in["campaign"])
        publish_campaign(plan.campaign, store, Path(op_in["output_dir"]) if op_in["output_dir"] else None)
        return {"site": f"{store.url}/campaigns/{plan.campaign.campaign_id}/{SITE}/index.html"}


class CompareWithPrevious(CampaignOP):
    """The last step of a nightly run: compare this run's site with the series' previous run, write
    the report beside this run's site, then point the series' `latest.json` at this run."""

    input_names = ("store", "campaign", "series", "site")
    output_names = ("regressions",)

    def run(self, op_in: dict[str, str]) -> dict[str, str]:
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
        return {"regressions": str(regressions)}
