"""What running a campaign's jobs as Slurm batch jobs costs, beside the same campaign on local processes.

Runs one small campaign (default: dummy and EMT on three shipped tasks) twice in fresh work
directories, once with `--engine local` and once with `--engine slurm` on the cluster that
`scripts/slurm-local.sh` starts (started here if it is not running; needs root and slurm-wlm), and
prints the campaign wall clock of each, and for Slurm, per job: the wait in the queue (Slurm's
SubmitTime → StartTime), the batch job's run time (StartTime → EndTime) and the job's own wall time
inside it (its result's provenance); the difference between the last two is the batch job's start-up
(shell, interpreter, imports, reading the plan). The per-job scheduling overhead is the campaign's
extra wall time on Slurm divided by its jobs (the jobs run at most `--workers` at a time in both).

    python benchmarks/engine_overhead.py [--models dummy,emt] [--tasks ...] [--workers 2] [--check-interval 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

from ops.campaign import slurm_job_state

REPO = Path(__file__).resolve().parents[1]


def campaign(workdir: Path, models: str, tasks: str, workers: str, *extra: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "run", "--models", models, "--tasks", tasks, "--workers", workers,
         "--bootstrap", "100", "--workdir", str(workdir), *extra],
        cwd=REPO, capture_output=True, text=True,
    )
    if done.returncode != 0:
        sys.exit(f"campaign failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def job_times(job_id: str) -> dict[str, datetime]:
    fields = slurm_job_state(job_id)
    return {name: datetime.fromisoformat(fields[name]) for name in ("SubmitTime", "StartTime", "EndTime")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dummy,emt")
    parser.add_argument("--tasks", default="force_field/molecules_small,s22,dbh24")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--check-interval", type=int, default=1, help="seconds between dpdispatcher's queue polls")
    args = parser.parse_args()
    started = subprocess.run(["bash", str(REPO / "scripts/slurm-local.sh"), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"no Slurm: {started.stdout}{started.stderr}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = root / "slurm.yaml"
        config.write_text(yaml.safe_dump({"slurm": {
            "check_interval": args.check_interval,
            "defaults": {"partition": "debug", "cpus": 1, "memory": "2G", "time_limit": "00:30:00", "retries": 0},
        }}))
        local = campaign(root / "local", args.models, args.tasks, args.workers)
        slurm = campaign(root / "slurm", args.models, args.tasks, args.workers, "--engine", "slurm",
                         "--config", str(config))
        results = [json.loads(p.read_text()) for p in sorted((root / "slurm/store/results").glob("*.json"))]

    print(f"{'job':40} {'slurm id':>8} {'queued s':>9} {'batch job s':>12} {'job wall s':>11} {'start-up s':>11}")
    queued_total = startup_total = 0.0
    for result in results:
        provenance = result["provenance"]
        times = job_times(provenance["slurm_job_id"])
        queued = (times["StartTime"] - times["SubmitTime"]).total_seconds()
        batch = (times["EndTime"] - times["StartTime"]).total_seconds()
        startup = batch - provenance["wall_seconds"]
        queued_total += queued
        startup_total += startup
        name = f"{result['model']} × {result['task']}"
        print(f"{name:40} {provenance['slurm_job_id']:>8} {queued:>9.0f} {batch:>12.0f} "
              f"{provenance['wall_seconds']:>11.1f} {startup:>11.1f}")
    jobs = len(results)
    print()
    print(f"campaign wall clock, local engine: {local:8.1f} s ({jobs} jobs, {args.workers} at a time)")
    print(f"campaign wall clock, slurm engine: {slurm:8.1f} s (queue polled every {args.check_interval} s)")
    print(f"scheduling overhead per job:       {(slurm - local) / jobs:8.1f} s of campaign wall clock")
    print(f"mean wait in the queue:            {queued_total / jobs:8.1f} s (Slurm times have 1 s resolution)")
    print(f"mean batch-job start-up:           {startup_total / jobs:8.1f} s (batch job run time − job wall)")
    print("(one-node Slurm on this machine; all figures are wall clock, jobs overlap up to --workers)")


if __name__ == "__main__":
    main()
