"""Run a planned campaign on this machine: the DAG in a child process, a live display here."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lambench_core.campaign import Plan
from workflows.cluster_config import ClusterConfig
from workflows.dag import run_step_keys
from workflows.engine_file import write_engine_file
from workflows.local_dag import DEATH_SIGNAL, ENGINE_FILE, LOG_FILE, PARENT_ENV, PLAN_FILE, STATUS_FILE
from workflows.progress import ProgressDisplay

KILL_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


@dataclass
class LocalOutcome:
    run_dir: Path
    timed_out: bool
    workflow_status: str | None
    step_phases: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    step_errors: dict[str, str] = field(default_factory=dict)  # failed step key → its one-line reason

    def failed_steps(self) -> list[str]:
        return [key for key, phase in self.step_phases.items() if phase != "Succeeded"]

    def failed_jobs(self, plan: Plan) -> list[str]:
        """The jobs whose run step did not succeed (a step of several jobs fails when one of them
        does: read each job's own result to tell them apart)."""
        failed = set(self.failed_steps())
        step_of = run_step_keys(plan.campaign, plan.to_run)
        return [job.key for job in plan.to_run if step_of[job.key] in failed]

    def stage_failed(self, stage: str) -> bool:
        phases = [p for k, p in self.step_phases.items() if k.startswith(f"{stage}-")]
        return not phases or any(p != "Succeeded" for p in phases)

    def stage_error(self, stage: str) -> str | None:
        """The reason the first failed step of `stage` gave, if it gave one."""
        return next((e for k, e in self.step_errors.items() if k.startswith(f"{stage}-") and e), None)

    def first_error(self, stages: tuple[str, ...] = ("plan", "aggregate", "publish")) -> tuple[str, str] | None:
        """(stage, reason) of the first of `stages` (in DAG order) that failed with a reason."""
        for stage in stages:
            error = self.stage_error(stage)
            if error:
                return stage, error
        return None


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM, then SIGKILL for whatever of the group is left after the grace period, even when the
    # group's leader exited at once: a step process that catches SIGTERM (a run step seen in
    # tests/reliability/test_faults.py did: its SigCgt has SIGTERM; the handler comes from a library it loads)
    # would otherwise outlive the campaign as an orphan, computing and writing to the store.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline and (process.poll() is None or _group_alive(process.pid)):
        time.sleep(0.1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive DEATH_SIGNAL when this process ends, set between
    fork and exec, so there is no moment in which the child could outlive it unnoticed (Linux).
    If this process is already gone by then, the child ends itself."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


class Display(Protocol):
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: Any) -> Any: ...
    def refresh(self, final: bool = False) -> None: ...


def run_locally(
    plan: Plan,
    run_dir: Path,
    workers: int,
    timeout: float,
    display: ProgressDisplay,
    engine: str = "local",
    config: ClusterConfig | None = None,
) -> LocalOutcome:
    """Drive the campaign's DAG from this host: steps as local processes, or run steps as Slurm jobs.
    With nothing to compute there is no DAG to start: aggregate and publish run in this process."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PLAN_FILE).write_text(plan.model_dump_json(indent=1))
    write_engine_file(run_dir / ENGINE_FILE, engine, config)
    if not plan.to_run:
        return finish_in_process(plan, run_dir)
    return run_child_dag(run_dir, "campaign", workers, timeout, display)


def finish_in_process(plan: Plan, run_dir: Path) -> LocalOutcome:
    """The plan, aggregate and publish steps' work, done here: a rerun with every result in the
    store takes seconds instead of three step processes' start-up (the DAG would run only these)."""
    from lambench_core.report.publish import SITE, aggregate_campaign, publish_campaign
    from lambench_core.results.store import ResultStore
    from ops.campaign import PLAN_FILE as STORED_PLAN
    from ops.campaign import one_line

    start = time.monotonic()
    spec = plan.campaign
    phases: dict[str, str] = {}
    errors: dict[str, str] = {}
    store = ResultStore.open(spec.store)
    plan_json = plan.model_dump_json(indent=1).encode()
    stages: list[tuple[str, Callable[[], object]]] = [
        ("plan", lambda: store.put_campaign_file(spec.campaign_id, STORED_PLAN, plan_json)),
        ("aggregate", lambda: aggregate_campaign(spec, plan.all_jobs, store)),
        ("publish", lambda: publish_campaign(spec, store, run_dir / SITE)),
    ]
    for stage, action in stages:
        key = f"{stage}-in-process"
        try:
            action()
        except Exception as exc:  # the user gets the one line, as from a DAG step
            phases[key], errors[key] = "Failed", one_line(exc)
            break
        phases[key] = "Succeeded"
    status = "Succeeded" if all(p == "Succeeded" for p in phases.values()) and len(phases) == 3 else "Failed"
    return LocalOutcome(
        run_dir=run_dir,
        timed_out=False,
        workflow_status=status,
        step_phases=phases,
        wall_seconds=time.monotonic() - start,
        step_errors=errors,
    )


def run_child_dag(run_dir: Path, kind: str, workers: int, timeout: float, display: Display) -> LocalOutcome:
    """Run the DAG whose plan is already in `run_dir` in a child process group, with a timeout."""
    (run_dir / STATUS_FILE).unlink(missing_ok=True)
    start = time.monotonic()
    with open(run_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workflows.local_dag", str(run_dir), str(workers), kind],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509 (no lock is taken in it; see there)
            env=os.environ | {PARENT_ENV: str(os.getpid())},
        )
        timed_out = False
        # The child has its own process group (so a timeout can stop all of dflow's workers); when
        # this process is interrupted or terminated, that group must be stopped with it.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with display:
                while process.poll() is None:
                    display.refresh()
                    if time.monotonic() - start > timeout:
                        timed_out = True
                        _stop(process)
                        break
                    # Returns as soon as the DAG ends, where a sleep lost a quarter second per run.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=0.5)
                display.refresh(final=True)
        except KeyboardInterrupt:
            _stop(process)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
    status_path = run_dir / STATUS_FILE
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    return LocalOutcome(
        run_dir=run_dir,
        timed_out=timed_out,
        workflow_status=status.get("workflow_status"),
        step_phases={step["key"]: step["phase"] for step in status.get("steps", [])},
        wall_seconds=time.monotonic() - start,
        step_errors={step["key"]: step["error"] for step in status.get("steps", []) if step.get("error")},
    )
