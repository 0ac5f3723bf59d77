"""Batched force-field evaluation: the same records as one model call per frame, family by family,
and a batch the model cannot run falls back to one frame at a time."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest

from lambench_core.data.frames import Frame
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_datasets
from lambench_core.models.registry import family
from lambench_core.tasks.batching import batches, evaluate_frames_in_batches
from lambench_core.tasks.force_field import ForceFieldParams, ForceFieldTask
from tests.core.test_task_context import task_context
from tests.support.helpers import model, quiet

# Families whose batch path is checked here against their calculator (every family that has one and a
# card whose weights ship offline); test_every_batching_family_is_checked keeps this list whole.
BATCHING_CARDS = {"chgnet": "chgnet-0.3.0", "deepmd": "dpa4", "sevenn": "sevennet-0"}
# Float tolerance of batched against per-frame output (float32 networks; summation order differs):
# energy in eV, the squared-error sums of forces and virials relative.
TOLERANCE = {"e_pred": 1e-5, "forces": 1e-4, "virial": 1e-3}


@cache
def frames_of(dataset: str, count: int) -> list[Frame]:
    document = load_datasets()
    frames, _ = load_frames(document, document.get(dataset))
    return frames[:count]


def test_batches_fill_up_to_the_atom_limit_in_order():
    assert batches([3, 3, 3, 5, 10, 1], 6) == [[0, 1], [2], [3], [4], [5]]
    assert batches([], 6) == [] and batches([7], 6) == [[0]]


def test_every_batching_family_is_checked():
    from lambench_core.models.catalog import ModelCatalog

    catalog = ModelCatalog.load()
    batching = {catalog.get(name).family for name in catalog.names() if family(catalog.get(name).family).batch_predict}
    assert batching == set(BATCHING_CARDS)


def record_arrays(records: list[dict]) -> dict[str, dict]:
    return {r["item"]: r for r in records}


@pytest.mark.parametrize("card", sorted(BATCHING_CARDS.values()))
@pytest.mark.parametrize(("dataset", "count"), [("molecules_small_pbe", 24), ("si_bulk_pbe", 8)])
def test_batched_records_and_scores_equal_the_per_frame_ones(card, dataset, count, monkeypatch):
    # Periodic frames too go in batches here (as on a GPU), so the batch path is what is compared.
    monkeypatch.setattr("lambench_core.tasks.batching.batches_periodic", lambda model: True)
    loaded = model(card)
    frames = frames_of(dataset, count)
    task = ForceFieldTask()
    batched = task.run(loaded, frames, ForceFieldParams(), task_context())
    one_by_one = task.run(loaded, frames, ForceFieldParams(batched=False), task_context())
    assert len(batched.records) == len(one_by_one.records) == count and not batched.issues
    by_item = record_arrays(one_by_one.records)
    for record in batched.records:
        reference = by_item[record["item"]]
        assert record.keys() == reference.keys()
        assert abs(record["e_pred"] - reference["e_pred"]) < TOLERANCE["e_pred"]
        for field, limit in (("force_sse", TOLERANCE["forces"]), ("virial_sse", TOLERANCE["virial"])):
            if field in record:
                assert record[field] == pytest.approx(reference[field], rel=limit, abs=1e-8), field
    for name, metric in one_by_one.metrics.items():
        assert batched.metrics[name].value == pytest.approx(metric.value, abs=1e-5), name
    assert batched.compute_seconds > 0


def test_a_batch_the_model_cannot_run_is_computed_frame_by_frame_and_a_bad_frame_fails_alone():
    loaded = model("sevennet-0")
    frames = frames_of("molecules_small_pbe", 6)
    broken = frames[2].atoms.copy()
    broken.positions[1] = broken.positions[0]  # overlapping atoms: refused before the model runs
    frames = [*frames[:2], replace(frames[2], atoms=broken), *frames[3:]]

    def failing(model, structures, *, stress):
        raise RuntimeError("device out of memory")

    results, seconds = evaluate_frames_in_batches(loaded, frames, 15.0, failing, quiet)
    assert [r["item"] for r in results.records] == [f.frame_id for i, f in enumerate(frames) if i != 2]
    (issue,) = results.issues
    assert issue.item == frames[2].frame_id and "overlap" in issue.reason and seconds > 0
    good, _ = evaluate_frames_in_batches(loaded, frames, 15.0, family("sevenn").batch_predict, quiet)
    assert [r["item"] for r in good.records] == [r["item"] for r in results.records]


# (card, the batches a CPU gets for 3 si_bulk cells then 4 molecules: each batch's pbc per structure,
# and whether it asked for stress). SevenNet-0 gains nothing from batching small periodic cells on a
# CPU, so they go one by one; CHGNet-0.3.0 gains 2×, so they share one batch with the molecules (in
# vacuum boxes for CHGNet), and that batch needs stress for the cells' virials.
CPU_BATCHES = [
    ("sevennet-0", [([False] * 4, False)]),
    ("chgnet-0.3.0", [([True] * 7, True)]),
]


@pytest.mark.parametrize(("card", "expected"), CPU_BATCHES)
def test_on_a_cpu_molecules_go_in_batches_and_periodic_frames_where_their_family_gains(card, expected):
    """Molecules batch even where the family gets them in vacuum boxes (CHGNet); a batch of molecules
    alone has no virial scored, so it is asked for no stress."""
    loaded = model(card)
    batch_predict = family(loaded.card.family).batch_predict
    seen: list[tuple[list[bool], bool]] = []

    def spy(model, structures, *, stress):
        seen.append(([bool(atoms.pbc.any()) for atoms in structures], stress))
        return batch_predict(model, structures, stress=stress)

    frames = frames_of("si_bulk_pbe", 3) + frames_of("molecules_small_pbe", 4)
    results, seconds = evaluate_frames_in_batches(loaded, frames, 15.0, spy, quiet)
    assert loaded.device == "cpu" and seen == expected
    assert [r["item"] for r in results.records] == [f.frame_id for f in frames] and seconds > 0
    assert all("virial_sse" in r for r in results.records[:3]) and not any("virial_sse" in r for r in results.records[3:])
