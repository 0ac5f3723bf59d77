"""How much of a local campaign's wall time is spent inside model calls, and how much is harness.

Runs one complete `lambench run` in a fresh work directory and prints a table:
the campaign's wall clock beside, per job, the time inside model calls (energy/forces/stress),
model loading, and the rest of the job. Job times are summed over parallel workers, so their sum
can exceed the wall clock; the table says which is which.

    python benchmarks/harness_overhead.py [--models dummy,emt,chgnet-0.3.0,sevennet-0] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dummy,emt,chgnet-0.3.0,sevennet-0")
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "workflows.cli", "run", "--models", args.models, "--workers", args.workers,
             "--workdir", str(workdir)],
            cwd=REPO, capture_output=True, text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"campaign failed:\n{done.stdout}\n{done.stderr}")
        results = [json.loads(p.read_text()) for p in sorted((workdir / "store" / "results").glob("*.json"))]
        rerun_start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "workflows.cli", "run", "--models", args.models, "--workdir", str(workdir)],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
        rerun = time.perf_counter() - rerun_start

    print(f"{'job':44} {'structures':>10} {'model calls s':>14} {'loading s':>10} {'job wall s':>11} {'µs/atom':>9}")
    totals = {"compute": 0.0, "load": 0.0, "wall": 0.0}
    for result in results:
        p = result["provenance"]
        atoms = sum(r.get("n_atoms", 0) for r in result["records"])  # property records carry no atom count
        per_atom = p["compute_seconds"] / atoms * 1e6 if atoms else float("nan")
        name = f"{result['model']} × {result['task']}"
        print(f"{name:44} {result['n_scored']:>10} {p['compute_seconds']:>14.2f} {p['load_seconds']:>10.2f} "
              f"{p['wall_seconds']:>11.2f} {per_atom:>9.0f}")
        totals["compute"] += p["compute_seconds"]
        totals["load"] += p["load_seconds"]
        totals["wall"] += p["wall_seconds"]
    label = "sum over jobs (worker time)"
    print(f"{label:44} {'':>10} {totals['compute']:>14.2f} {totals['load']:>10.2f} {totals['wall']:>11.2f}")
    print()
    print(f"campaign wall clock (lambench run, {args.workers} workers): {wall:8.2f} s")
    print(f"time inside model calls, summed over jobs:        {totals['compute']:8.2f} s "
          f"({100 * totals['compute'] / wall:.0f}% of the wall clock)")
    print(f"second run (nothing to compute) wall clock:       {rerun:8.2f} s")
    print(f"hardware: {results[0]['provenance']['hardware']}")


if __name__ == "__main__":
    main()
