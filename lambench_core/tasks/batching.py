"""Force-field frames evaluated in batches, for families that can (`Family.batch_predict`).

Frames go to the model in batches of at most `max_batch_atoms` atoms (in set order, so a batch holds
frames of similar size where the set is ordered so); each frame's record is exactly what the
per-frame path writes, from the same prepared structure and the same checks. A batch the model
cannot run (one corrupt structure, a device out of memory) falls back to one call per frame, so a
bad frame fails alone. The time inside a batch is shared among its frames by atom count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ase import Atoms

from lambench_core.data.frame_scoring import (
    checked_prediction,
    frame_record,
    predict_frame,
    prepared_atoms,
    wants_virial,
)
from lambench_core.data.frames import Frame
from lambench_core.models.family import BatchPredictor
from lambench_core.models.loading import LoadedModel
from lambench_core.models.registry import family
from lambench_core.results.record import ItemIssue
from lambench_core.tasks.base import ItemResults, ProgressCallback
from lambench_core.tasks.evaluation import issue_for, skip_reason

# Atoms per batch: on a CPU a batch much larger than this gains nothing (the work is already
# vectorized) and only delays progress; on a GPU batches fill the device far better.
CPU_BATCH_ATOMS = 512
GPU_BATCH_ATOMS = 8192


def max_batch_atoms(device: str) -> int:
    return CPU_BATCH_ATOMS if device == "cpu" else GPU_BATCH_ATOMS


def batches_periodic(model: LoadedModel) -> bool:
    """Whether periodic frames go in batches: on a GPU always, on a CPU where the family says it gains
    (`Family.batches_periodic_on_cpu`). Measured here, one thread, si_bulk's 8-atom cells: CHGNet-0.3.0
    0.31 s batched against 0.67 s per frame; SevenNet-0 1.79 against 1.54 s and DPA4 2.00 against 2.03 s
    (both spend most of a call in arithmetic already, which a batch cannot shrink)."""
    return model.device != "cpu" or family(model.card.family).batches_periodic_on_cpu


def batches(sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Consecutive index groups whose sizes sum to at most `limit` (a larger item stands alone)."""
    groups: list[list[int]] = []
    total = 0
    for index, size in enumerate(sizes):
        if groups and total + size <= limit:
            groups[-1].append(index)
            total += size
        else:
            groups.append([index])
            total = size
    return groups


def evaluate_frames_in_batches(
    model: LoadedModel,
    frames: Sequence[Frame],
    padding: float,
    batch_predict: BatchPredictor,
    progress: ProgressCallback,
    limit: int | None = None,
) -> tuple[ItemResults, float]:
    """The per-frame records and issues of `frames` (as `evaluate_items` would give them) and the
    seconds spent inside model calls. Periodic frames are batched only where that is faster
    (`batches_periodic`)."""
    results = ItemResults(n_items=len(frames))
    ready: list[tuple[Frame, Atoms]] = []
    for frame in frames:
        try:
            reason = skip_reason(model, [frame.atoms])
            if reason:
                results.issues.append(ItemIssue(item=frame.frame_id, kind="skipped", reason=reason))
                continue
            ready.append((frame, prepared_atoms(frame, padding, model.card)))
        except Exception as exc:  # one frame never sinks the task
            results.issues.append(issue_for(frame.frame_id, exc))
    records: dict[str, dict[str, Any]] = {}
    compute_seconds = 0.0
    done = len(frames) - len(ready)
    if not batches_periodic(model):
        # The frame's own periodicity, not the prepared copy's: a family that needs a cell (CHGNet)
        # gets each molecule in a vacuum box, and those boxes batch as well as bare molecules.
        alone = [member for member in ready if member[0].periodic]
        ready = [member for member in ready if not member[0].periodic]
        if alone:
            compute_seconds += _one_by_one(model, alone, padding, records, results)
            done += len(alone)
            progress(done, len(frames))
    for group in batches([len(atoms) for _, atoms in ready], limit or max_batch_atoms(model.device)):
        members = [ready[i] for i in group]
        start = time.perf_counter()
        try:
            with_stress = any(wants_virial(frame, model.card) for frame, _ in members)
            outputs = batch_predict(model, [atoms for _, atoms in members], stress=with_stress)
        except Exception:  # the batch as a whole cannot run: each frame on its own, failing alone
            outputs = None
        seconds = time.perf_counter() - start
        compute_seconds += seconds
        if outputs is None:
            compute_seconds += _one_by_one(model, members, padding, records, results)
        else:
            total_atoms = sum(len(atoms) for _, atoms in members)
            for (frame, atoms), (energy, forces, stress) in zip(members, outputs, strict=True):
                share = seconds * len(atoms) / total_atoms
                try:
                    prediction = checked_prediction(frame, model.card, atoms, energy, forces, stress)
                    records[frame.frame_id] = frame_record(frame, prediction, share)
                except Exception as exc:
                    results.issues.append(issue_for(frame.frame_id, exc))
        done += len(members)
        progress(done, len(frames))
    # Records in set order, as the per-frame path writes them.
    results.records = [{"item": f.frame_id, **records[f.frame_id]} for f in frames if f.frame_id in records]
    return results, compute_seconds


def _one_by_one(
    model: LoadedModel,
    members: list[tuple[Frame, Atoms]],
    padding: float,
    records: dict[str, dict[str, Any]],
    results: ItemResults,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    seconds = 0.0
    for frame, _ in members:
        start = clock()
        try:
            prediction = predict_frame(model.calculator, frame, padding, model.card)
            elapsed = clock() - start
            records[frame.frame_id] = frame_record(frame, prediction, elapsed)
        except Exception as exc:
            elapsed = clock() - start
            results.issues.append(issue_for(frame.frame_id, exc))
        seconds += elapsed
    return seconds
