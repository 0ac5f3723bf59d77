"""Run-to-run repeatability of the efficiency task: η̄ (µs/atom) of K identical runs and its coefficient of variation.

Loads one model once, runs the `efficiency` task K times with the same params and prints, per run,
η̄, M_E, the largest size reached, the mean scaling exponent and the run's wall time, then the mean,
the sample standard deviation and the coefficient of variation (std / mean) of η̄.

RUN IT ON AN IDLE MACHINE. Anything else using the CPU cores, the memory bandwidth or the GPU
(other benchmarks, builds, DFT jobs, a browser) changes the timings and inflates the coefficient of
variation; the number measures the machine's quietness as much as the task. Pin threads if you want
a figure to compare (e.g. OMP_NUM_THREADS=4, `--threads 4`), and quote the device and threads printed.

    python benchmarks/efficiency_repeatability.py [--model emt] [--runs 5] [--device auto]
        [--max-atoms 2000] [--time-budget 300] [--warmup 2] [--repeats 5] [--systems cu_bulk_pbe,...]
"""

from __future__ import annotations

import argparse
import statistics
import time

from lambench_core.data.manifest import BUILTIN_MANIFEST, load_datasets
from lambench_core.models import ModelCatalog, load_model
from lambench_core.tasks.base import TaskContext
from lambench_core.tasks.efficiency import EfficiencyParams, EfficiencySystem, EfficiencyTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="emt", help="model card name (e.g. emt, chgnet-0.3.0)")
    parser.add_argument("--runs", type=int, default=5, help="K: how many times to run the task")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before the runs")
    parser.add_argument("--max-atoms", type=int, default=None)
    parser.add_argument("--min-atoms", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None, help="per-system budget, s")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--window", default=None, help="η̄ window as LOW,HIGH atoms")
    parser.add_argument("--systems", default=None, help="comma-separated dataset names (frame 0 of each)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 to estimate a spread")

    overrides: dict = {
        "max_atoms": args.max_atoms,
        "min_atoms": args.min_atoms,
        "time_budget_s": args.time_budget,
        "warmup": args.warmup,
        "repeats": args.repeats,
    }
    params_raw = {key: value for key, value in overrides.items() if value is not None}
    if args.window:
        low, high = (int(x) for x in args.window.split(","))
        params_raw["eta_window"] = (low, high)
    if args.systems:
        params_raw["systems"] = [EfficiencySystem(dataset=name.strip()) for name in args.systems.split(",")]
    params = EfficiencyParams(**params_raw)

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(ModelCatalog.load().get(args.model), None, args.device)
    task = EfficiencyTask()
    context = TaskContext(
        manifest=load_datasets(BUILTIN_MANIFEST),
        catalog=ModelCatalog.load(),
        device=model.device,
        dtype=model.card.dtype,
    )

    etas: list[float] = []
    print(f"model {args.model}, device {model.device}, {args.runs} runs, window {params.eta_window} atoms")
    print(f"{'run':>4} {'eta (µs/atom)':>14} {'M_E':>8} {'max atoms':>10} {'exponent':>9} {'wall (s)':>9}")
    environment = None
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        output = task.run(model, params, context)
        wall = time.perf_counter() - start
        metrics = {name: metric.value for name, metric in output.metrics.items()}
        if output.records:
            environment = output.records[0]["environment"]
        eta = metrics["eta_us_per_atom"]
        if eta is not None:
            etas.append(eta)
        print(
            f"{run:>4} {_fmt(eta, 14, 3)} {_fmt(metrics['m_e'], 8, 3)} {_fmt(metrics['max_atoms'], 10, 0)} "
            f"{_fmt(metrics['scaling_exponent'], 9, 3)} {wall:>9.1f}"
        )
        for issue in output.issues:
            print(f"     {issue.kind}: {issue.item}: {issue.reason}")
    if environment:
        print(f"device {environment['device_name']}, dtype {environment['dtype']}, threads {environment['threads']}")
    if len(etas) < 2:
        print("fewer than 2 runs gave an η̄: no coefficient of variation")
        return
    mean = statistics.mean(etas)
    std = statistics.stdev(etas)
    print(f"eta mean {mean:.4g} µs/atom, std {std:.3g} µs/atom, coefficient of variation {std / mean:.2%}")


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


if __name__ == "__main__":
    main()
