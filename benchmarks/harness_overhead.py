"""What lambench costs around the model calls: wall clock ÷ time inside model calls, at one worker.

For each --jobs-per-step value, runs `lambench run --workers 1` of one model on the force-field sets in
a fresh work directory (interleaved across values, --runs times), reads the stored results' time inside
model calls (`compute_seconds`) and model loading (`load_seconds`), then runs the same campaign again
(nothing to compute) and times that. Prints medians:

    python benchmarks/harness_overhead.py [--model sevennet-0] [--jobs-per-step 1,7] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORCE_FIELD_SETS = ",".join(
    f"force_field/{name}"
    for name in ("molecules_small", "si_bulk", "ge_bulk", "sic_bulk", "cu_bulk", "cu111_h", "cu111_o")
)


def lambench_run(workdir: Path, model: str, tasks: str, jobs_per_step: int) -> float:
    command = [sys.executable, "-m", "workflows.cli", "run", "--models", model, "--tasks", tasks, "--workers", "1",
               "--bootstrap", "0", "--jobs-per-step", str(jobs_per_step), "--workdir", str(workdir)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lambench run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def stored_seconds(workdir: Path) -> tuple[float, float]:
    """(time inside model calls, time loading models), summed over the stored results."""
    compute = load = 0.0
    for path in (workdir / "store" / "results").glob("*.json"):
        provenance = json.loads(path.read_text())["provenance"]
        compute += provenance["compute_seconds"]
        load += provenance["load_seconds"]
    return compute, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--tasks", default=FORCE_FIELD_SETS)
    parser.add_argument("--jobs-per-step", default="1,7")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    values = [int(v) for v in args.jobs_per_step.split(",")]
    figures: dict[int, list[tuple[float, float, float, float]]] = {v: [] for v in values}
    for _ in range(args.runs):
        for value in values:  # interleaved: a drift of the machine's speed hits every value alike
            with tempfile.TemporaryDirectory(prefix="lambench-overhead-") as folder:
                workdir = Path(folder)
                wall = lambench_run(workdir, args.model, args.tasks, value)
                compute, load = stored_seconds(workdir)
                rerun = lambench_run(workdir, args.model, args.tasks, value)
                figures[value].append((wall, compute, load, rerun))
    print(f"{args.model} on {len(args.tasks.split(','))} tasks, --workers 1, {args.runs} runs each (medians)")
    print("| jobs per step | wall s | in model calls s | loading models s | wall ÷ model calls | rerun s |")
    print("|---|---|---|---|---|---|")
    for value, runs in figures.items():
        wall, compute, load, rerun = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"| {value} | {wall:.1f} | {compute:.1f} | {load:.1f} | {wall / compute:.2f} | {rerun:.1f} |")


if __name__ == "__main__":
    main()
