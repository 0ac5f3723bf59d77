"""`lambench status | retry | resubmit` of campaigns driven from this host (`lambench run`, on the
local or the Slurm engine): read from the run's folder (plan, engine, dflow's step phases, progress
files), the result store, and for Slurm `squeue`/`scontrol` (which answer without accounting)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lambench_core.campaign import Job, Plan, load_plan, plan_campaign
from lambench_core.results.store import ResultStore
from workflows.cluster_config import ClusterConfig
from workflows.dag import run_step_keys
from workflows.engine_file import read_engine_file
from workflows.local_dag import ENGINE_FILE, PLAN_FILE, STATUS_FILE
from workflows.progress import DONE_STATES, SlurmQueue


@dataclass(frozen=True)
class DrivenRun:
    """One `lambench run` campaign: its folder under WORKDIR/runs/<campaign id>, and its engine."""

    run_dir: Path
    engine: str
    config: ClusterConfig | None

    @classmethod
    def find(cls, workdir: Path, campaign: str) -> DrivenRun | None:
        run_dir = (workdir / "runs" / campaign).resolve()
        if not (run_dir / PLAN_FILE).is_file():
            return None
        engine, config = read_engine_file(run_dir / ENGINE_FILE)
        return cls(run_dir, engine, config)

    @property
    def plan(self) -> Plan:
        return load_plan((self.run_dir / PLAN_FILE).read_text())

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
    step_of = run_step_keys(plan.campaign, plan.to_run)
    rows = []
    for job in plan.all_jobs:
        result = store.get(job.key)
        failure = store.get_failure(job.key) if result is None else None
        if result is not None:
            where = result.provenance.slurm_job_id if result.provenance else None
            rows.append((job, result.status.value, f"Slurm job {where}" if where else ""))
        elif failure is not None:
            rows.append((job, "failed", failure.error or ""))
        elif step_of.get(job.key) in phases:
            rows.append((job, phases[step_of[job.key]].lower(), "no result stored"))
        else:
            rows.append((job, str(run.progress(job).get("state", "pending")), ""))
    return rows


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
    queue = SlurmQueue(interval=math.inf) if run.engine == "slurm" else None  # one squeue call
    for job, state, detail in rows:
        queued = queue.lookup(job.key) if queue and state not in DONE_STATES else None
        if queued is not None:
            detail = f"Slurm job {queued.job_id} {queued.state} {queued.reason}".strip()
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
    from workflows.progress import ProgressDisplay

    store = ResultStore.open(plan.campaign.store)
    describe_plan(plan, store, console)
    queue = SlurmQueue() if run.engine == "slurm" else None
    display = ProgressDisplay(plan.to_run, run_dir / "progress", console, queue=queue)
    outcome = run_locally(plan, run_dir, workers, timeout, display, engine=run.engine, config=run.config)
    return report_outcome(plan, outcome, store, console)
