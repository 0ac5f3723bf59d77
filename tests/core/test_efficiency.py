"""The efficiency task: size sweep, OOM bisection, timing statistics and M_E, with an injected clock.

Timings never come from the machine here: a test-double calculator advances a fake clock by a
prescribed cost per call, so every number checked is exact (the machine's speed is never asserted).
"""

from __future__ import annotations

import math
import resource
import statistics

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from pydantic import ValidationError

from lambench_core.categories import Category
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_datasets
from lambench_core.errors import InputError
from lambench_core.models import ModelCatalog, load_model
from lambench_core.models.loading import LoadedModel
from lambench_core.results.provenance import cpu_name, thread_count
from lambench_core.tasks.base import task_class
from lambench_core.tasks.efficiency import (
    STOP_BUDGET,
    STOP_CAP,
    STOP_ERROR,
    STOP_OOM,
    EfficiencyParams,
    EfficiencySystem,
    EfficiencyTask,
    choose_repeats,
    eta_and_m_e,
    is_out_of_memory,
    load_systems,
    repeat_unit,
    scaling_exponent,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes

CU = [EfficiencySystem(dataset="cu_bulk_pbe")]  # 4-atom cubic cell: one "atom step" of the sweep is 4 atoms
RUN_ONLY = ("peak_rss_mib", "peak_device_mib")  # the run's own measurements, in no record


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestDoubleOOMCalculator(Calculator):
    """TEST DOUBLE (not a model): EMT that raises `error()` above `limit` atoms, records the positions
    of every call and advances a fake clock by `cost(n_atoms, call_number)` seconds per call."""

    __test__ = False  # not a pytest class
    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, clock: FakeClock, cost=lambda n, k: 1e-3, limit: int | None = None, error=MemoryError):
        super().__init__()
        self.clock, self.cost, self.limit, self.error = clock, cost, limit, error
        self.inner = EMT()
        self.calls: list[tuple[int, np.ndarray]] = []  # (n_atoms, positions) of every call that ran
        self.refused: list[int] = []  # sizes that "ran out of memory"

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        if self.limit is not None and n > self.limit:
            self.refused.append(n)
            raise self.error(f"out of memory: {n} atoms")
        self.clock.now += self.cost(n, len(self.calls))
        self.calls.append((n, self.atoms.positions.copy()))
        self.inner.calculate(self.atoms, ["energy", "forces", "stress"], system_changes)
        self.results = dict(self.inner.results)


def emt_card():
    return ModelCatalog.load().get("emt")


def run(params: EfficiencyParams, **double):
    clock = FakeClock()
    calc = TestDoubleOOMCalculator(clock, **double)
    model = LoadedModel(card=emt_card(), calculator=calc, weights_sha256=None, weights_pinned=True, head=None,
                        device="cpu")
    output = EfficiencyTask(clock=clock).run(model, params, task_context())
    return output, calc


def fast(**kw) -> EfficiencyParams:
    return EfficiencyParams(**{"systems": CU, "warmup": 0, "repeats": 3, "time_budget_s": 1e9, **kw})


def test_registered_in_the_efficiency_category():
    task = task_class("efficiency")
    assert task is EfficiencyTask and task.category is Category.EFFICIENCY and task.version == "2"
    assert task.scored_metrics == ()


def test_sweep_doubles_then_bisects_to_the_oom_boundary():
    output, calc = run(fast(max_atoms=2000), limit=170, cost=lambda n, k: 1e-5 * n)
    (record,) = output.records
    assert record["stop_reason"] == STOP_OOM and record["bisection_complete"] is True
    growth = [s["n_atoms"] for s in record["sizes"] if s["phase"] == "growth"]
    assert growth[0] == 48  # ~50 atoms: 2×2×3 cells of 4
    assert all(1.25 <= b / a <= 3.0 for a, b in zip(growth, growth[1:], strict=False))
    assert min(calc.refused) > 170 and max(n for n, _ in calc.calls) <= 170
    # Boundary to one unit cell (4 atoms): 42 cells ran, 43 did not.
    assert record["max_atoms"] == 4 * (170 // 4) == 168
    assert record["oom_atoms"] == 172
    assert any(s["phase"] == "bisection" for s in record["sizes"])
    assert [s["n_atoms"] for s in record["sizes"]] == sorted({s["n_atoms"] for s in record["sizes"]})
    assert output.metrics["max_atoms"].value == 168 and output.issues == []


def test_a_torch_out_of_memory_error_is_out_of_memory():
    torch = pytest.importorskip("torch")
    output, _ = run(fast(max_atoms=400), limit=120, error=torch.cuda.OutOfMemoryError)
    (record,) = output.records
    assert record["stop_reason"] == STOP_OOM and record["max_atoms"] == 120 and record["oom_atoms"] == 124


def test_a_message_saying_out_of_memory_is_a_failure_not_oom():
    output, _ = run(fast(max_atoms=2000), limit=170, error=lambda msg: RuntimeError("CUDA out of memory. " + msg))
    (issue,) = output.issues
    assert issue.kind == "failed" and "RuntimeError" in issue.reason
    (record,) = output.records
    assert record["status"] == "failed" and record["stop_reason"] == STOP_ERROR and record["oom_atoms"] is None
    assert [s["n_atoms"] for s in record["sizes"]] == [48, 108]  # kept for inspection...
    assert output.metrics["eta_us_per_atom"].value is None  # ...but a failed system is not scored
    assert_summarizes(EfficiencyTask, output, fast(max_atoms=2000), extras=RUN_ONLY)


def test_oom_is_recognised_by_type_only():
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("OOM"))
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_out_of_memory(outer)


def test_the_cap_stops_the_sweep():
    output, calc = run(fast(max_atoms=300))
    (record,) = output.records
    assert record["stop_reason"] == STOP_CAP and record["oom_atoms"] is None and record["bisection_complete"] is None
    assert [s["n_atoms"] for s in record["sizes"]] == [48, 108, 256]
    assert max(n for n, _ in calc.calls) <= 300


def test_the_time_budget_stops_growth_beyond_the_eta_window():
    # 1 s per call, 3 calls per size, η̄ over 30–60 atoms: 48 atoms (3 s), 108 atoms (predicted 3·27/12
    # = 6.75 s; 9.75 ≤ 10, runs), 256 atoms predicted 3·64/27 ≈ 7.1 s on top of 6 s spent > 10 s: stop.
    output, calc = run(fast(max_atoms=2000, time_budget_s=10.0, eta_window=(30, 60)), cost=lambda n, k: 1.0)
    (record,) = output.records
    assert record["stop_reason"] == STOP_BUDGET and record["window_complete"]
    assert [s["n_atoms"] for s in record["sizes"]] == [48, 108]
    assert len(calc.calls) == 6


def test_the_time_budget_never_drops_a_size_inside_the_eta_window():
    """η̄ averages a declared size set: the same 100–300-atom sizes whatever the budget admits."""
    output, _ = run(fast(max_atoms=2000, time_budget_s=10.0, eta_window=(100, 300)), cost=lambda n, k: 1.0)
    (record,) = output.records
    assert [s["n_atoms"] for s in record["sizes"]] == [48, 108, 256]  # 500 is beyond the window and the budget
    assert record["stop_reason"] == STOP_BUDGET and record["n_sizes_in_window"] == 2 and record["window_complete"]


def test_each_call_gets_a_fresh_rattled_copy():
    params = fast(max_atoms=50, warmup=2, repeats=3, rattle_A=0.01)
    output, calc = run(params)
    (record,) = output.records
    (size,) = record["sizes"]
    assert len(calc.calls) == 5 and all(n == 48 for n, _ in calc.calls)
    document = load_datasets()
    frame = load_frames(document, document.get("cu_bulk_pbe"))[0][0].atoms
    plain = frame.repeat(size["repeat"]).positions
    positions = [p for _, p in calc.calls]
    for i in range(5):
        rms = np.sqrt(np.mean((positions[i] - plain) ** 2))
        assert 0.007 < rms < 0.013
        for j in range(i):
            assert not np.allclose(positions[i], positions[j])
    # Seeded: the same run moves the atoms the same way.
    _, again = run(params)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(calc.calls, again.calls, strict=True))


def test_median_and_spread_from_injected_timings():
    timed = [0.005, 0.001, 0.003, 0.002, 0.004]
    costs = [9.0] + timed  # one warm-up call (not timed) then five timed calls
    output, _ = run(fast(max_atoms=50, warmup=1, repeats=5), cost=lambda n, k: costs[k])
    (size,) = output.records[0]["sizes"]
    us = [t / 48 * 1e6 for t in timed]
    q1, _, q3 = statistics.quantiles(us, n=4, method="inclusive")
    assert size["call_seconds"] == pytest.approx(timed)
    assert size["us_per_atom"] == pytest.approx(statistics.median(us))
    assert size["us_per_atom_min"] == pytest.approx(min(us)) and size["us_per_atom_max"] == pytest.approx(max(us))
    assert size["us_per_atom_iqr"] == pytest.approx(q3 - q1)
    assert size["relative_std"] == pytest.approx(statistics.stdev(us) / statistics.mean(us))


def test_eta_is_the_mean_over_sizes_in_the_window_and_m_e_is_100_over_eta():
    output, _ = run(fast(max_atoms=600, eta_window=(100, 300)), cost=lambda n, k: 2e-3 + 40e-6 * n)
    sizes = [s["n_atoms"] for s in output.records[0]["sizes"]]
    assert sizes == [48, 108, 256, 500]
    expected = statistics.mean((2e-3 + 40e-6 * n) / n * 1e6 for n in (108, 256))
    assert output.metrics["eta_us_per_atom"].value == pytest.approx(expected)
    assert output.metrics["m_e"].value == pytest.approx(100.0 / expected)
    assert output.metrics["eta_us_per_atom"].unit == "µs/atom"
    assert_summarizes(EfficiencyTask, output, fast(max_atoms=600, eta_window=(100, 300)), extras=RUN_ONLY)
    assert eta_and_m_e([50.0, 150.0]) == (100.0, 1.0)
    assert eta_and_m_e([]) == (None, None)


def test_scaling_exponent_of_time_proportional_to_n_squared_is_2():
    output, _ = run(fast(max_atoms=600), cost=lambda n, k: 1e-7 * n**2)
    assert output.records[0]["scaling_exponent"] == pytest.approx(2.0)
    assert output.metrics["scaling_exponent"].value == pytest.approx(2.0)
    assert scaling_exponent([10, 20, 40], [3.0, 3.0 * 2**1.5, 3.0 * 4**1.5]) == pytest.approx(1.5)
    assert scaling_exponent([10], [1.0]) is None


def test_hardware_dtype_threads_and_memory_are_recorded():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output, _ = run(fast(max_atoms=50))
    env = output.records[0]["environment"]
    assert env["device"] == "cpu" and env["device_name"] == cpu_name()
    assert env["dtype"] == "float64" == emt_card().dtype
    assert env["threads"] == thread_count()
    torch = pytest.importorskip("torch")
    assert env["threads"] == torch.get_num_threads()
    assert output.metrics["peak_rss_mib"].value >= before > 0
    assert output.metrics["peak_device_mib"].value is None
    assert output.records[0]["sizes"][0]["rss_mib"] > 0


def test_default_systems_real_emt_skip_and_geometries():
    """The shipped systems with EMT (real clock: only structure and bookkeeping are checked)."""
    model = load_model(emt_card(), None, "cpu")
    output = EfficiencyTask().run(model, EfficiencyParams(max_atoms=60, warmup=0, repeats=3), task_context())
    assert output.n_items == 4
    assert [(i.item, i.kind) for i in output.issues] == [("si_bulk_pbe[0]", "skipped")]
    by_item = {r["item"]: r for r in output.records}
    assert by_item["cu111_h_pbe[0]"]["geometry"] == "slab"
    assert all(s["repeat"][2] == 1 for s in by_item["cu111_h_pbe[0]"]["sizes"])
    molecule = by_item["molecules_small_pbe[0]"]
    assert molecule["geometry"] == "molecule" and molecule["formula"] == "H2O"
    assert all(s["n_atoms"] % 3 == 0 and s["n_atoms"] <= 60 for s in molecule["sizes"])
    assert by_item["cu_bulk_pbe[0]"]["geometry"] == "bulk"
    assert output.compute_seconds > 0 and output.metrics["max_atoms"].value <= 60
    assert_summarizes(EfficiencyTask, output, EfficiencyParams(max_atoms=60, warmup=0, repeats=3), extras=RUN_ONLY)


def test_molecule_boxes_and_slab_axes():
    systems = dict(load_systems(EfficiencyParams(), task_context().manifest))
    box = systems["molecules_small_pbe[0]"].unit.atoms
    assert np.allclose(box.cell, np.eye(3) * 10.0) and box.pbc.all()
    supercell = systems["molecules_small_pbe[0]"].unit.supercell((2, 2, 2))
    centres = [supercell.positions[i : i + 3].mean(axis=0) for i in range(0, len(supercell), 3)]
    gaps = [np.linalg.norm(a - b) for k, a in enumerate(centres) for b in centres[:k]]
    assert min(gaps) >= 10.0 - 1e-9
    assert systems["cu111_h_pbe[0]"].unit.axes == (0, 1)
    slab = systems["cu111_h_pbe[0]"].unit
    assert np.allclose(slab.supercell((3, 4, 1)).cell[2], slab.atoms.cell[2])


def test_repeats_are_near_cubic_and_exact_for_awkward_counts():
    unit = repeat_unit(load_systems(EfficiencyParams(systems=CU), task_context().manifest)[0][1].structure, "auto", 10.0)
    assert choose_repeats(unit, 1, 1000, 27) == (3, 3, 3)
    assert choose_repeats(unit, 1, 1000, 64) == (4, 4, 4)
    assert math.prod(choose_repeats(unit, 37, 37, 37)) == 37  # a prime: still exactly 37 copies
    with pytest.raises(ValueError):
        choose_repeats(unit, 5, 4, 4)


def test_bad_params_and_names():
    with pytest.raises(ValidationError):
        EfficiencyParams(repeats=2)
    with pytest.raises(ValidationError):
        EfficiencyParams(min_atoms=100, max_atoms=50)
    with pytest.raises(ValidationError):
        EfficiencyParams(eta_window=(500, 100))
    with pytest.raises(InputError, match=r"systems\[0\]\.dataset"):
        load_systems(EfficiencyParams(systems=[EfficiencySystem(dataset="no_such_set")]), task_context().manifest)
    with pytest.raises(InputError, match=r"systems\[0\]\.frame"):
        load_systems(EfficiencyParams(systems=[EfficiencySystem(dataset="cu_bulk_pbe", frame=999)]), task_context().manifest)
    with pytest.raises(InputError, match=r"systems\[0\]\.geometry"):
        load_systems(EfficiencyParams(systems=[EfficiencySystem(dataset="cu_bulk_pbe", geometry="slab")]), task_context().manifest)
