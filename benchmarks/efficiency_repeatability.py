"""Run-to-run repeatability of the efficiency task: η̄ (µs/atom) of K identical runs and its coefficient of variation.

Loads one model once, runs the `efficiency` task K times with the same params and prints, per run,
η̄, M_E, the largest size reached, the mean scaling exponent and the run's wall time, then the mean,
the sample standard deviation and the coefficient of variation (std / mean) of η̄.

After each run it times two fixed control workloads on one thread (matrix products: the cores'
speed; random gathers over 64 MB: the memory system's), medians of 5 timings. Their CVs are the
machine's own drift between runs, which no statistic inside the task can remove: on a shared host
whose memory bandwidth other tenants use, η̄ cannot repeat better than the gather control does.

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

CONTROL_SIZE = 384
CONTROL_PRODUCTS = 200
CONTROL_GATHER_FLOATS = 16_000_000  # 64 MB: far beyond the caches, like a large graph's gathers
CONTROL_GATHERS = 10


def control_seconds(timings: int = 5) -> tuple[float, float]:
    """Median seconds, on one thread, of two fixed workloads: CONTROL_PRODUCTS CONTROL_SIZE² float32
    matrix products (the cores' speed) and CONTROL_GATHERS random gathers over a 64 MB array (the
    memory system's, which an interatomic network's scatter and gather steps depend on)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    matrix = torch.rand(CONTROL_SIZE, CONTROL_SIZE, generator=generator)
    array = torch.rand(CONTROL_GATHER_FLOATS, generator=generator)
    indices = torch.randint(0, CONTROL_GATHER_FLOATS, (CONTROL_GATHER_FLOATS // 4,), generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    compute, memory = [], []
    try:
        for _ in range(timings):
            start = time.perf_counter()
            product = matrix
            for _ in range(CONTROL_PRODUCTS):
                product = torch.tanh(product @ matrix)
            compute.append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(CONTROL_GATHERS):
                array.index_select(0, indices)
            memory.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(compute), statistics.median(memory)


def cv_line(name: str, values: list[float], unit: str) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values)
    return f"{name} mean {mean:.4g} {unit}, std {std:.3g} {unit}, coefficient of variation {std / mean:.2%}"


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
    controls: list[tuple[float, float]] = []
    print(f"model {args.model}, device {model.device}, {args.runs} runs, window {params.eta_window} atoms")
    print(
        f"{'run':>4} {'eta (µs/atom)':>14} {'M_E':>8} {'max atoms':>10} {'exponent':>9} {'wall (s)':>9} "
        f"{'products (s)':>13} {'gathers (s)':>12}"
    )
    environment = None
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        output = task.run(model, params, context)
        wall = time.perf_counter() - start
        metrics = {name: metric.value for name, metric in output.metrics.items()}
        if output.records:
            environment = output.records[0]["environment"]
        eta = metrics["eta_us_per_atom"]
        control = control_seconds()
        if eta is not None:
            etas.append(eta)
            controls.append(control)
        print(
            f"{run:>4} {_fmt(eta, 14, 3)} {_fmt(metrics['m_e'], 8, 3)} {_fmt(metrics['max_atoms'], 10, 0)} "
            f"{_fmt(metrics['scaling_exponent'], 9, 3)} {wall:>9.1f} {control[0]:>13.4f} {control[1]:>12.4f}"
        )
        for issue in output.issues:
            print(f"     {issue.kind}: {issue.item}: {issue.reason}")
    if environment:
        print(f"device {environment['device_name']}, dtype {environment['dtype']}, threads {environment['threads']}")
    if len(etas) < 2:
        print("fewer than 2 runs gave an η̄: no coefficient of variation")
        return
    print(cv_line("eta", etas, "µs/atom"))
    print(cv_line("control, matrix products (the cores' drift)", [c[0] for c in controls], "s"))
    print(cv_line("control, gathers (the memory system's drift)", [c[1] for c in controls], "s"))


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


if __name__ == "__main__":
    main()
