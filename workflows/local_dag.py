"""Child process that runs the campaign DAG in dflow debug mode and records how every step ended.

Run by `workflows.local.run_locally` in its own process group: debug mode changes the working
directory while it runs, reports "Succeeded" even when steps failed, and can linger at exit, so
the parent reads `status.json` instead of trusting an exit code, and enforces the timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
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


def _campaign(run_dir: Path) -> Workflow:
    from lambench_core.campaign import Plan
    from lambench_core.report.publish import SITE
    from workflows.dag import build_campaign_workflow
    from workflows.engines import engine_from_file

    plan = Plan.model_validate_json((run_dir / PLAN_FILE).read_text())
    engine = engine_from_file(run_dir / ENGINE_FILE)
    return build_campaign_workflow(plan.campaign, plan.to_run, engine, output_dir=run_dir / SITE).workflow


def _labelling(run_dir: Path) -> Workflow:
    from workflows.data_dag import LABELLING_PLAN_FILE, LabellingPlan, build_labelling_workflow

    return build_labelling_workflow(LabellingPlan.model_validate_json((run_dir / LABELLING_PLAN_FILE).read_text()))


WORKFLOWS: dict[str, Callable[[Path], Workflow]] = {"campaign": _campaign, "labelling": _labelling}


def _stop_with_parent(parent: int, interval: float = 0.5) -> None:
    """Kill this process group once the parent is gone.

    This group is its own session (so the parent's timeout can stop dflow's workers), which also
    means a SIGKILL of the parent or of its process group does not reach it: without this watchdog
    an orphaned DAG would go on computing and writing to the store beside the next `lambench run`.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def main(run_dir: Path, workers: int, kind: str) -> None:
    from dflow import config

    config["mode"] = "debug"
    config["debug_workdir"] = str(run_dir / "dflow")
    config["debug_pool_workers"] = workers
    logging.getLogger().setLevel(logging.ERROR)
    workflow = WORKFLOWS[kind](run_dir)
    with open(run_dir / LOG_FILE, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        workflow.submit()
        steps = [
            {"key": step.key, "phase": step.phase}
            for step in workflow.query_step()
            if step.key
        ]
        status = {"workflow_id": workflow.id, "workflow_status": workflow.query_status(), "steps": steps}
    temporary = run_dir / f".{STATUS_FILE}.tmp"
    temporary.write_text(json.dumps(status, indent=1))
    temporary.replace(run_dir / STATUS_FILE)


if __name__ == "__main__":
    _stop_with_parent(os.getppid())
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    sys.stdout.flush()
    # Skip interpreter teardown: debug mode's worker pool can otherwise keep the process alive.
    os._exit(0)
