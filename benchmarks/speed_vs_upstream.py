"""Force-field evaluation speed, four ways, on the same frames with the same loaded model.

(a) floor: a bare loop of model calls (energy, forces, stress where periodic) on prepared copies;
(b) upstream: LAMBench's per-frame loop as its paper and repository describe it (attach the
    calculator to each frame, read energy, forces and, for periodic frames, stress; errors after all
    frames) — written here from that description, not copied;
(c) lambench, one model call per frame (`ForceFieldParams(batched=False)`);
(d) lambench, batched where the family can (`Family.batch_predict`).
The four run interleaved, --runs times each, in one process (the model loaded once); prints
frames per second (median) and each way's time relative to the floor, and checks that (c) and (d)
give the same scores.

    python benchmarks/speed_vs_upstream.py [--model sevennet-0] [--set molecules_small_pbe] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from lambench_core.campaign import set_threads
from lambench_core.data.frames import Frame
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_datasets
from lambench_core.models import ModelCatalog, load_model
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.tasks.base import TaskContext
from lambench_core.tasks.force_field import ForceFieldParams, ForceFieldTask


def floor(model: LoadedModel, frames: list[Frame]) -> None:
    prepared = [prepare_for_model(model.card, frame.atoms, 15.0) for frame in frames]
    for atoms in prepared:
        atoms.calc = model.calculator
        atoms.get_potential_energy()
        atoms.get_forces()
        if atoms.pbc.all():
            atoms.get_stress()


def upstream(model: LoadedModel, frames: list[Frame]) -> None:
    energies, forces, stresses = [], [], []
    for frame in frames:
        atoms = prepare_for_model(model.card, frame.atoms, 15.0)
        atoms.calc = model.calculator
        energies.append(atoms.get_potential_energy() / len(atoms))
        forces.append(atoms.get_forces())
        stresses.append(atoms.get_stress() if atoms.pbc.all() else None)
    reference = np.array([f.energy / f.n_atoms for f in frames if f.energy is not None])
    if len(reference) == len(energies):
        float(np.sqrt(np.mean((np.array(energies) - reference) ** 2)))


def lambench(batched: bool, task_context: TaskContext) -> Callable[[LoadedModel, list[Frame]], None]:
    """The force-field task as a run step calls it; the context (manifest and catalog, read once per
    step) is built outside the timed calls, as the other ways have no such cost either."""

    def run(model: LoadedModel, frames: list[Frame]) -> None:
        ForceFieldTask().run(model, frames, ForceFieldParams(batched=batched), task_context)

    return run


def context() -> TaskContext:
    document = load_datasets()
    return TaskContext(manifest=document, catalog=ModelCatalog.load(), device="cpu", dtype="float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--set", default="molecules_small_pbe")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch, BLAS and OpenMP threads (lambench's default: 1)")
    args = parser.parse_args()
    set_threads(args.threads)
    document = load_datasets()
    frames, _ = load_frames(document, document.get(args.set))
    model = load_model(ModelCatalog.load().get(args.model), None, args.device)
    shared_context = context()
    ways: dict[str, Callable[[LoadedModel, list[Frame]], None]] = {
        "(a) bare loop of model calls": floor,
        "(b) upstream per-frame loop": upstream,
        "(c) lambench, per frame": lambench(False, shared_context),
        "(d) lambench, batched": lambench(True, shared_context),
    }
    for way in ways.values():  # warm-up: first calls build caches and JIT paths
        way(model, frames[:4])
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            start = time.perf_counter()
            way(model, frames)
            seconds[name].append(time.perf_counter() - start)
    per_frame = ForceFieldTask().run(model, frames, ForceFieldParams(batched=False), context()).metrics
    batched = ForceFieldTask().run(model, frames, ForceFieldParams(batched=True), context()).metrics
    same = all(
        abs((batched[k].value or 0.0) - (m.value or 0.0)) <= 1e-5 * max(1.0, abs(m.value or 0.0))
        for k, m in per_frame.items()
    )
    base = statistics.median(seconds["(a) bare loop of model calls"])
    print(
        f"{args.model} on {args.set}: {len(frames)} frames, {args.runs} interleaved runs, medians, "
        f"{args.device}, {args.threads} thread(s)"
    )
    print("| way | s per run | frames/s | ÷ floor |")
    print("|---|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {len(frames) / median:.1f} | {median / base:.2f} |")
    print(f"scores of (c) and (d) equal within 1e-5: {same}")


if __name__ == "__main__":
    main()
