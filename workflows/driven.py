"""`lambench status | retry | resubmit` of campaigns driven from this host (`lambench run`, on the
local or the Slurm engine): read from the run's folder (plan, engine, dflow's step phases, progress
files), the result store, and for Slurm `squeue`/`scontrol` (which answer without accounting)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lambench_core.campaign import Job, Plan, plan_campaign
from lambench_core.results.store import ResultStore
from workflows.cluster_config import ClusterConfig
from workflows.dag import run_step_key
from workflows.local_dag import ENGINE_FILE, PLAN_FILE, STATUS_FILE
from workflows.slurm import job_name


@dataclass
class DrivenRun:
    """One `lambench run` campaign: its folder under WORKDIR/runs/<campaign id>."""

    run_dir: Path

    @classmethod
    def find(cls, workdir: Path, campaign: str) -> DrivenRun | None:
        run_dir = workdir / "runs" / campaign
        return cls(run_dir.resolve()) if (run_dir / PLAN_FILE).is_file() else None

    @property
    def plan(self) -> Plan:
        return Plan.model_validate_json((self.run_dir / PLAN_FILE).read_text())

    @property
    def engine(self) -> str:
        path = self.run_dir / ENGINE_FILE
        return json.loads(path.read_text())["engine"] if path.exists() else "local"

    @property
    def config(self) -> ClusterConfig | None:
        path = self.run_dir / ENGINE_FILE
        document = json.loads(path.read_text()).get("config") if path.exists() else None
        return ClusterConfig.model_validate(document) if document else None

    def step_phases(self) -> dict[str, str]:
        path = self.run_dir / STATUS_FILE
        steps = json.loads(path.read_text()).get("steps", []) if path.exists() else []
        return {step["key"]: step["phase"] for step in steps}

    def progress(self, job: Job) -> dict[str, object]:
        path = self.run_dir / "progress" / f"{job.key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}


def job_states(run: DrivenRun) -> list[tuple[Job, str, str]]:
    """(job, state, detail) for every job of the campaign, from the store first, then the run."""
    plan = run.plan
    store = ResultStore.open(plan.campaign.store)
    phases = run.step_phases()
    rows = []
    for job in plan.all_jobs:
        result, failure = store.get(job.key), store.get_failure(job.key)
        progress = run.progress(job)
        if result is not None:
            where = result.provenance.slurm_job_id if result.provenance else None
            rows.append((job, result.status.value, f"Slurm job {where}" if where else ""))
        elif failure is not None:
            rows.append((job, "failed", failure.error or ""))
        elif run_step_key(job.key) in phases:
            rows.append((job, phases[run_step_key(job.key)].lower(), "no result stored"))
        else:
            rows.append((job, str(progress.get("state", "pending")), ""))
    return rows


def _slurm_detail(job: Job) -> str:
    """The job's line in `squeue` (found by its job name), while Slurm holds it."""
    try:
        text = subprocess.run(
            ["squeue", "-h", "-n", job_name(job.key), "-o", "%i %T %R"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if text:
        job_id, state, *reason = text.splitlines()[-1].split()
        return f"Slurm job {job_id} {state} {' '.join(reason)}".strip()
    return ""


def print_status(run: DrivenRun, console: Console) -> int:
    plan = run.plan
    rows = job_states(run)
    counts: dict[str, int] = {}
    for _, state, _ in rows:
        counts[state] = counts.get(state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    console.print(
        f"{plan.campaign.campaign_id} ({run.engine} engine, store {plan.campaign.store}): {len(rows)} jobs — {summary}",
        highlight=False,
    )
    for job, state, detail in rows:
        if run.engine == "slurm" and state not in ("succeeded", "partial", "unsupported", "failed"):
            detail = _slurm_detail(job) or detail
        console.print(f"  {state:<11} {job.model} × {job.instance.name}  {detail}".rstrip(), highlight=False)
    site = run.run_dir / "site" / "index.html"
    if site.exists():
        console.print(f"Leaderboard site: {site}", highlight=False)
    return 0


def replan(run: DrivenRun) -> Plan:
    """The campaign planned anew against its store: only jobs without a result run again."""
    spec = run.plan.campaign
    return plan_campaign(spec.model_copy(update={"force": False}), ResultStore.open(spec.store))


def rerun(run: DrivenRun, plan: Plan, run_dir: Path, workers: int, timeout: float, console: Console) -> int:
    """Drive `plan` on the run's engine from `run_dir`, then report as `lambench run` does."""
    from workflows.local import run_locally
    from workflows.outcome import describe_plan, report_outcome
    from workflows.progress import ProgressDisplay, SlurmQueue

    store = ResultStore.open(plan.campaign.store)
    describe_plan(plan, store, console)
    queue = SlurmQueue() if run.engine == "slurm" else None
    display = ProgressDisplay(plan.to_run, run_dir / "progress", console, queue=queue)
    outcome = run_locally(plan, run_dir, workers, timeout, display, engine=run.engine, config=run.config)
    return report_outcome(plan, outcome, store, console)
