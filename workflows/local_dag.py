"""Child process that runs the campaign DAG in dflow debug mode and records how every step ended.

Run by `workflows.local.run_locally` in its own process group: debug mode changes the working
directory while it runs, reports "Succeeded" even when steps failed, and can linger at exit, so
the parent reads `status.json` instead of trusting an exit code, and enforces the timeout.
`status.json` also carries each failed step's one-line reason (the `STEP_ERROR_FILE` its OP left,
else the last exception line of its log), which the parent prints instead of "see dag.log".

It dies with its parent from its first instruction: the parent starts it with PR_SET_PDEATHSIG
(`DEATH_SIGNAL`, see workflows.local); until the handler below is installed that signal's default
action ends this process (which has started nothing yet), and from then on the handler kills this
whole process group (dflow's workers and the step processes). A thread watching the parent's pid
(passed in PARENT_ENV, so a parent that died before this process ran is noticed too) is the
fallback where PR_SET_PDEATHSIG does not exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dflow import Workflow

STATUS_FILE = "status.json"
LOG_FILE = "dag.log"
PLAN_FILE = "plan.json"
ENGINE_FILE = "engine.json"
PARENT_ENV = "LAMBENCH_DAG_PARENT_PID"
DEATH_SIGNAL = signal.SIGUSR2  # its default action terminates; nothing else in the DAG process uses it
STEP_ERROR_FILE = "lambench-error.json"  # ops.campaign.STEP_ERROR_FILE (not imported: this module starts bare)


def _campaign(run_dir: Path) -> Workflow:
    from lambench_core.campaign import Plan
    from lambench_core.report.publish import SITE
    from workflows.dag import build_campaign_workflow
    from workflows.engines import engine_from_file

    plan = Plan.model_validate_json((run_dir / PLAN_FILE).read_text())
    engine = engine_from_file(run_dir / ENGINE_FILE)
    return build_campaign_workflow(plan.campaign, plan.to_run, engine, output_dir=run_dir / SITE).workflow


def _labelling(run_dir: Path) -> Workflow:
    from lambench_core.data.labelling.plan import LABELLING_PLAN_FILE, read_labelling_plan
    from workflows.data_dag import build_labelling_workflow

    plan_file = run_dir / LABELLING_PLAN_FILE
    return build_labelling_workflow(read_labelling_plan(plan_file), plan_file)


WORKFLOWS: dict[str, Callable[[Path], Workflow]] = {"campaign": _campaign, "labelling": _labelling}


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _stop_with_parent(parent: int, interval: float = 0.5) -> None:
    """Kill this process group once the parent is gone.

    This group is its own session (so the parent's timeout can stop dflow's workers), which also
    means a SIGKILL of the parent or of its process group does not reach it: without this an
    orphaned DAG would go on computing and writing to the store beside the next `lambench run`.
    The death signal (set by the parent before this process ran) is the immediate path; the thread
    the fallback. `parent` is the pid the parent gave, not getppid(): a parent already gone when
    this runs has left this process to another one.
    """
    signal.signal(DEATH_SIGNAL, _kill_group)
    if os.getppid() != parent:
        _kill_group()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        _kill_group()

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def _last_log_line(step_dir: Path) -> str | None:
    """The last exception line of the step's log (a traceback's end), else its last line."""
    try:
        lines = [line.strip() for line in (step_dir / "log.txt").read_text(errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    found = next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), lines[-1] if lines else None)
    return found[:500] if found else None


def step_error(step_dir: Path) -> str | None:
    """Why a step failed, in one line: what its OP left, else the end of its log's traceback."""
    try:
        return str(json.loads((step_dir / "workdir" / "tmp" / STEP_ERROR_FILE).read_text())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return _last_log_line(step_dir)


def main(run_dir: Path, workers: int, kind: str) -> None:
    from dflow import config

    config["mode"] = "debug"
    config["debug_workdir"] = str(run_dir / "dflow")
    config["debug_pool_workers"] = workers
    logging.getLogger().setLevel(logging.ERROR)
    workflow = WORKFLOWS[kind](run_dir)
    with open(run_dir / LOG_FILE, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        workflow.submit()
        workflow_dir = run_dir / "dflow" / str(workflow.id)
        steps = []
        for step in workflow.query_step():
            if not step.key:
                continue
            record = {"key": step.key, "phase": step.phase}
            if step.phase != "Succeeded":
                record["error"] = step_error(workflow_dir / step.key)
            steps.append(record)
        status = {"workflow_id": workflow.id, "workflow_status": workflow.query_status(), "steps": steps}
    temporary = run_dir / f".{STATUS_FILE}.tmp"
    temporary.write_text(json.dumps(status, indent=1))
    temporary.replace(run_dir / STATUS_FILE)


if __name__ == "__main__":
    _stop_with_parent(int(os.environ.get(PARENT_ENV) or os.getppid()))
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    sys.stdout.flush()
    # Skip interpreter teardown: debug mode's worker pool can otherwise keep the process alive.
    os._exit(0)
