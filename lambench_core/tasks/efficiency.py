"""Inference efficiency: time per atom of energy + forces (+ stress) over a supercell size sweep, and M_E.

What is timed. For each structure listed in the `systems` param (a frame of a shipped set, by manifest
name; the harness passes no frames to this task) the task builds supercells of growing size and times
single-point calls of the model's calculator (`model.calculator`, built once by the harness and
reused for every call): `get_potential_energy`, `get_forces` and, when the model card says the model
predicts stress (`capabilities.stress`), `get_stress`. Defaults: bulk Cu (fcc, 4-atom cubic cell),
bulk Si (diamond, 8 atoms), a small molecule (frame 0 of molecules_small: H2O) and the H on Cu(111)
slab. A system whose elements the model lacks is skipped (ItemIssue kind "skipped").

Supercells. The repeated unit depends on the structure's geometry (`geometry`, "auto" detects it):
- bulk (periodic along all three axes, no vacuum gap ≥ 5 Å): repeated along all three axes;
- slab (an axis with pbc False, or a vacuum gap ≥ 5 Å across it): repeated in-plane only;
- molecule (no periodic axis): put at the centre of a cubic box of edge
  max(`molecule_spacing_A`, largest extent + 5 Å), which is then repeated on a cubic grid:
  "molecules in a box", centre-to-centre spacing ≥ 10 Å.
For a number of copies the repeat vector is chosen to keep the supercell near-cubic (near-square
in-plane for slabs): among integer repeats with the allowed number of copies, the one minimising
log(widest / narrowest perpendicular width) + 2 |log(copies / target copies)|. With the defaults bulk Cu
runs 48, 108, 256, 500, 1008, 1792 atoms; Si 64 … 1728; H2O 54 … 1944; the Cu(111) slab 48 … 2000.

Sweep. Sizes start near `min_atoms` (50) and the atom count doubles (target 2 × the last size; the
next size is at least 1.25 × the last) until one of: the next size would pass `max_atoms` (stop
reason "max_atoms cap"), the system's time so far plus the predicted time of the next size (the last
size's time per call × size ratio × calls per size) would pass `time_budget_s` ("time budget"; never
for a size inside `eta_window`, so η̄ always averages the same declared sizes), or the
model runs out of memory ("out of memory"). After an out-of-memory size the task bisects (in whole
unit cells) between the largest size that ran and the smallest that did not, until they differ by one
unit cell (`bisection_complete`; the time budget can stop it earlier); sizes timed while bisecting
are kept. Out of memory is recognised by exception TYPE only: `MemoryError`,
`torch.cuda.OutOfMemoryError` and `torch.OutOfMemoryError` where the installed torch has them (torch
is imported lazily and may be absent), also when one of them is the `__cause__`/`__context__` of the
raised exception. Any other exception (a `RuntimeError("... out of memory")` included) or a
non-finite energy, force or stress is a failure: the system becomes an ItemIssue of kind "failed"
(stop reason "error"); its record with the sizes timed so far is kept, but it does not enter the
metrics.

Timing of one size. `warmup` calls (default 2) are not timed, then `repeats` calls (default 5,
at least 3) are. Every call, warm-up included, gets a fresh copy of the supercell rattled by
`rattle_A` (0.01 Å, normal, seeded by (seed, copies, call index)), so no calculator cache can be
reused. The clock is `time.perf_counter` (injectable for tests), read around the energy, forces and
stress calls; on a CUDA device `torch.cuda.synchronize()` runs before each clock reading. Per size
the record has the median µs/atom (median call time / n_atoms × 10⁶) and its spread: min, max,
inter-quartile range (numpy's linear percentiles) and relative standard deviation (sample std with
ddof=1 over the mean), plus the process RSS after the size and, on CUDA, the size's peak
`torch.cuda.max_memory_allocated`.

Metrics (units in brackets).
- `eta_us_per_atom` (µs/atom): η̄, the mean of the per-size median µs/atom over every timed size
  whose atom count lies inside `eta_window` (inclusive; default 100–1000 atoms), pooled across the
  completed systems. None when no timed size falls in the window.
- `m_e` (1): M_E = η0 / η̄ with η0 = 100 µs/atom; larger is faster (M_E = 1 at 100 µs/atom).
- `max_atoms` (atoms): the largest size timed, over systems.
- `scaling_exponent` (1): per system the least-squares slope of log(median call time) against
  log(n_atoms) over all its timed sizes (≥ 2 sizes), averaged over systems; 1 is linear scaling.
  Small sizes are dominated by fixed per-call overhead, which lowers the exponent.
- `peak_rss_mib` (MiB): the larger of the process's lifetime peak RSS (`resource.getrusage`
  ru_maxrss, which includes model loading and anything the process did before the task) and the
  largest psutil RSS sampled after each size.
- `peak_device_mib` (MiB): the largest per-size `torch.cuda.max_memory_allocated`; None on CPU.
Each system's record also carries the environment: device, device name (GPU, else CPU model),
dtype (the card's), torch threads (else OMP_NUM_THREADS / cpu count) and the torch version.
There are no scored_metrics: M_E is not part of M_PC; the leaderboard reads `m_e`.

How this differs from LAMBench's inference-efficiency task (facts from its repository and paper, no
code taken): LAMBench takes each test structure, searches by bisection for the largest supercell up to
1000 atoms that runs, times one energy/forces/stress call per structure on that supercell (time.time,
no GPU synchronisation, the first fraction of the structures as warm-up), averages µs/atom over
structures and sets M_E = 100 µs/atom / η̄. It treats an exception as out of memory when its message
contains "out of memory" or "OOM". Here instead: several timed repeats per size with a median and a
spread, fixed warm-up calls per size, GPU synchronisation, a full size sweep with a scaling exponent,
out-of-memory recognised by exception type only, and η̄ over a fixed size window (100–1000 atoms by
default, which CPU models here reach under the default 2000-atom cap) rather than over each
structure's largest size. The timings depend on the machine and on whatever else runs on it: compare
η̄ only between runs on the same idle hardware (benchmarks/efficiency_repeatability.py measures the
run-to-run spread).
"""

from __future__ import annotations

import functools
import gc
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import psutil
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambench_core.categories import Category
from lambench_core.data.manifest import ManifestDocument
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.results.provenance import cpu_name, gpu_name, thread_count
from lambench_core.results.record import Metric
from lambench_core.tasks.base import ItemResults, StandaloneTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import DEFAULT_PADDING, ItemFailure, evaluate_items
from lambench_core.tasks.named_frames import NamedFrames

ETA_0_US_PER_ATOM = 100.0  # M_E = ETA_0 / η̄
VACUUM_GAP_A = 5.0  # a gap this wide across a periodic axis makes it an open (slab) axis
MOLECULE_MARGIN_A = 5.0  # the molecule box edge is at least the molecule's extent plus this
MIN_GROWTH = 1.25  # the next size of the doubling sweep has at least this many times the copies
SIZE_WEIGHT = 2.0  # weight of |log(copies / target)| against log(aspect ratio) when choosing repeats
MIB = 2**20
PARAMS_SOURCE = "efficiency params"

STOP_CAP = "max_atoms cap"
STOP_BUDGET = "time budget"
STOP_OOM = "out of memory"
STOP_ERROR = "error"

Geometry = Literal["auto", "bulk", "slab", "molecule"]
Clock = Callable[[], float]


class EfficiencySystem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="A shipped (or fetched) extxyz/deepmd set, by manifest name")
    frame: int = Field(default=0, ge=0, description="Index of the frame in the set")
    geometry: Geometry = Field(
        default="auto", description="bulk: repeat along 3 axes; slab: in-plane only; molecule: a grid of boxes"
    )


DEFAULT_SYSTEMS: tuple[EfficiencySystem, ...] = (
    EfficiencySystem(dataset="cu_bulk_pbe"),  # fcc Cu, 4-atom cubic cell
    EfficiencySystem(dataset="si_bulk_pbe"),  # diamond Si, 8-atom cubic cell
    EfficiencySystem(dataset="molecules_small_pbe"),  # H2O, in 10 Å boxes
    EfficiencySystem(dataset="cu111_h_pbe"),  # H on a 3-layer Cu(111) slab, 4 atoms per in-plane cell
)


class EfficiencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systems: list[EfficiencySystem] = Field(default_factory=lambda: list(DEFAULT_SYSTEMS), min_length=1)
    min_atoms: int = Field(default=50, ge=1, description="Target size of the first supercell")
    max_atoms: int = Field(default=2000, ge=1, description="No supercell has more atoms than this")
    time_budget_s: float = Field(default=300.0, gt=0.0, description="Per-system wall-time budget of the sweep")
    warmup: int = Field(default=2, ge=0, le=100, description="Untimed calls per size")
    repeats: int = Field(default=5, ge=3, le=1000, description="Timed calls per size")
    rattle_A: float = Field(default=0.01, gt=0.0, le=0.2, description="Std of the per-call rattle, Å")
    seed: int = Field(default=0, ge=0)
    eta_window: tuple[int, int] = Field(
        default=(100, 1000), description="Atom-count range (inclusive) whose timed sizes are averaged into η̄"
    )
    molecule_spacing_A: float = Field(
        default=10.0, ge=10.0, le=100.0, description="Minimum centre-to-centre spacing of boxed molecules, Å"
    )

    @model_validator(mode="after")
    def _consistent(self) -> EfficiencyParams:
        if self.max_atoms < self.min_atoms:
            raise ValueError("max_atoms must be ≥ min_atoms")
        low, high = self.eta_window
        if low < 1 or high < low:
            raise ValueError("eta_window must be (low, high) with 1 ≤ low ≤ high")
        seen = set()
        for system in self.systems:
            key = (system.dataset, system.frame)
            if key in seen:
                raise ValueError(f"system {system.dataset}[{system.frame}] is listed twice")
            seen.add(key)
        return self


# ---------------------------------------------------------------------------------------------------------
# Out of memory, by exception type


@functools.cache
def out_of_memory_types() -> tuple[type[BaseException], ...]:
    """MemoryError and torch's out-of-memory exception classes that this torch version has."""
    types: list[type[BaseException]] = [MemoryError]
    try:
        import torch
    except ImportError:
        return tuple(types)
    for owner in (torch, getattr(torch, "cuda", None)):
        candidate = getattr(owner, "OutOfMemoryError", None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException) and candidate not in types:
            types.append(candidate)
    return tuple(types)


def is_out_of_memory(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from or while handling, is of an OOM type.
    The message is never read: a RuntimeError("out of memory") is not an out-of-memory error."""
    types = out_of_memory_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, types):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# ---------------------------------------------------------------------------------------------------------
# Supercells


@dataclass(frozen=True)
class RepeatUnit:
    """The periodic unit a system's supercells repeat, and the axes they repeat along."""

    atoms: Atoms
    axes: tuple[int, ...]
    geometry: Literal["bulk", "slab", "molecule"]

    @property
    def heights(self) -> np.ndarray:
        """Perpendicular widths of the cell (volume over the area of the opposite face), Å."""
        cell = np.asarray(self.atoms.cell)
        volume = abs(np.linalg.det(cell))
        return np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])

    def supercell(self, repeats: tuple[int, int, int]) -> Atoms:
        atoms = self.atoms.repeat(repeats)
        atoms.calc = None
        return atoms


def vacuum_axes(atoms: Atoms, gap: float = VACUUM_GAP_A) -> list[int]:
    """Periodic axes across which the atoms leave an empty layer at least `gap` Å thick."""
    cell = np.asarray(atoms.cell)
    volume = abs(np.linalg.det(cell))
    open_axes = []
    fractional = atoms.get_scaled_positions(wrap=True)
    for axis in range(3):
        height = volume / np.linalg.norm(np.cross(cell[(axis + 1) % 3], cell[(axis + 2) % 3]))
        s = np.sort(fractional[:, axis])
        gaps = np.append(np.diff(s), 1.0 - s[-1] + s[0]) if len(s) else np.array([1.0])
        if float(gaps.max()) * height >= gap:
            open_axes.append(axis)
    return open_axes


def detect_geometry(atoms: Atoms) -> Literal["bulk", "slab", "molecule"]:
    if not atoms.pbc.any() or atoms.cell.rank < 3:
        return "molecule"
    if not atoms.pbc.all() or vacuum_axes(atoms):
        return "slab"
    return "bulk"


def repeat_unit(atoms: Atoms, geometry: Geometry, molecule_spacing: float) -> RepeatUnit:
    """The unit of `atoms` to repeat; raises ValueError when `geometry` does not fit the structure."""
    atoms = atoms.copy()
    atoms.calc = None
    kind = detect_geometry(atoms) if geometry == "auto" else geometry
    if kind == "molecule":
        extent = float(np.ptp(atoms.positions, axis=0).max()) if len(atoms) else 0.0
        edge = max(molecule_spacing, extent + MOLECULE_MARGIN_A)
        atoms.set_cell(np.eye(3) * edge)
        atoms.pbc = True
        atoms.center()
        return RepeatUnit(atoms, (0, 1, 2), "molecule")
    if atoms.cell.rank < 3:
        raise ValueError(f"a {kind} needs a 3-dimensional cell")
    if kind == "bulk":
        if not atoms.pbc.all():
            raise ValueError("a bulk structure must be periodic along all three axes")
        return RepeatUnit(atoms, (0, 1, 2), "bulk")
    open_axes = set(np.flatnonzero(~atoms.pbc).tolist()) | set(vacuum_axes(atoms))
    in_plane = tuple(axis for axis in range(3) if axis not in open_axes)
    if not in_plane or len(in_plane) == 3:
        raise ValueError("a slab needs one or two open (vacuum or non-periodic) axes")
    return RepeatUnit(atoms, in_plane, "slab")


def _factorizations(copies: int, k: int) -> Iterator[tuple[int, ...]]:
    """Every ordered k-tuple of positive integers whose product is `copies`."""
    if k == 1:
        yield (copies,)
        return
    for first in range(1, copies + 1):
        if copies % first == 0:
            for rest in _factorizations(copies // first, k - 1):
                yield (first, *rest)


def _shape_cost(widths: np.ndarray, copies: np.ndarray, target: float) -> np.ndarray:
    return np.log(widths.max(axis=-1) / widths.min(axis=-1)) + SIZE_WEIGHT * np.abs(np.log(copies / target))


def choose_repeats(unit: RepeatUnit, low: int, high: int, target: float) -> tuple[int, int, int]:
    """The repeat vector with between `low` and `high` copies (inclusive) that is closest to near-cubic
    (near-square in-plane for a slab) and to `target` copies: the smallest
    log(widest / narrowest width) + SIZE_WEIGHT · |log(copies / target)|, ties to fewer copies."""
    if not 1 <= low <= high:
        raise ValueError(f"no copy count between {low} and {high}")
    axes = unit.axes
    heights = unit.heights[list(axes)]
    target = min(max(float(target), low), high)
    ideal = (target * np.prod(heights)) ** (1.0 / len(axes)) / heights
    ranges = [np.arange(1, min(high, math.ceil(2.0 * r) + 1) + 1) for r in ideal]
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, len(axes))
    copies = grid.prod(axis=1)
    grid, copies = grid[(copies >= low) & (copies <= high)], copies[(copies >= low) & (copies <= high)]
    if not len(grid):  # a narrow range of awkward copy counts (primes): factorise the nearest counts exactly
        counts = sorted(range(low, high + 1), key=lambda m: (abs(math.log(m / target)), m))[:64]
        grid = np.array([f for m in counts for f in _factorizations(m, len(axes))])
        copies = grid.prod(axis=1)
    cost = _shape_cost(grid * heights, copies.astype(float), target)
    best = np.lexsort((copies, np.round(cost, 12)))[0]
    repeats = [1, 1, 1]
    for axis, count in zip(axes, grid[best], strict=True):
        repeats[axis] = int(count)
    return (repeats[0], repeats[1], repeats[2])


# ---------------------------------------------------------------------------------------------------------
# Timing


def timing_statistics(seconds: list[float], n_atoms: int) -> dict[str, float | None]:
    """Median µs/atom of the timed calls and its spread."""
    us = np.asarray(seconds, float) / n_atoms * 1e6
    q1, q3 = np.percentile(us, [25.0, 75.0])
    mean = float(us.mean())
    return {
        "median_seconds": float(np.median(seconds)),
        "us_per_atom": float(np.median(us)),
        "us_per_atom_min": float(us.min()),
        "us_per_atom_max": float(us.max()),
        "us_per_atom_iqr": float(q3 - q1),
        "relative_std": float(us.std(ddof=1) / mean) if len(us) > 1 and mean > 0 else None,
    }


def scaling_exponent(n_atoms: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(time) against log(n_atoms); None with fewer than two sizes."""
    if len(set(n_atoms)) < 2:
        return None
    return float(np.polyfit(np.log(np.asarray(n_atoms, float)), np.log(np.asarray(seconds, float)), 1)[0])


def eta_and_m_e(us_per_atom: list[float]) -> tuple[float | None, float | None]:
    """η̄ (mean µs/atom of the sizes in the window) and M_E = 100 µs/atom / η̄."""
    if not us_per_atom:
        return None, None
    eta = float(np.mean(us_per_atom))
    return eta, (ETA_0_US_PER_ATOM / eta if eta > 0 else None)


def current_rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def lifetime_peak_rss_mib() -> float:
    """ru_maxrss: KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024.0


class _Device:
    """Synchronisation and memory statistics of the model's device; torch only for CUDA."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self._torch: Any = None
        self._device: Any = None
        if self.cuda:
            import torch

            self._torch = torch
            self._device = torch.device(device)

    def synchronize(self) -> None:
        if self.cuda:
            self._torch.cuda.synchronize(self._device)

    def reset_peak(self) -> None:
        if self.cuda:
            self._torch.cuda.reset_peak_memory_stats(self._device)

    def peak_mib(self) -> float | None:
        return float(self._torch.cuda.max_memory_allocated(self._device)) / MIB if self.cuda else None

    def release(self) -> None:
        gc.collect()
        if self.cuda:
            self._torch.cuda.empty_cache()


@dataclass
class SizeTiming:
    copies: int
    repeats: tuple[int, int, int]
    n_atoms: int
    seconds: list[float]
    rss_mib: float
    device_peak_mib: float | None
    phase: str  # "growth" or "bisection"

    def record(self) -> dict[str, Any]:
        return {
            "n_atoms": self.n_atoms,
            "repeat": list(self.repeats),
            "phase": self.phase,
            **timing_statistics(self.seconds, self.n_atoms),
            "call_seconds": list(self.seconds),
            "rss_mib": self.rss_mib,
            "device_peak_mib": self.device_peak_mib,
        }


class _SizeFailed(Exception):
    """A size failed for a reason other than memory; carries the system's partial sweep."""

    def __init__(self, n_atoms: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.n_atoms = n_atoms
        self.cause = cause
        self.sweep: Sweep | None = None


@dataclass
class Sweep:
    """One system's size sweep: the timed sizes (ascending), why growth stopped, the OOM boundary."""

    unit_atoms: int
    sizes: list[SizeTiming] = field(default_factory=list)
    stop_reason: str | None = None
    stop_detail: str | None = None
    oom_atoms: int | None = None  # smallest size that ran out of memory
    bisection_complete: bool | None = None
    model_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def max_atoms(self) -> int | None:
        return max((s.n_atoms for s in self.sizes), default=None)


class SizeSweeper:
    """Runs the sweep of one system with a model; `clock` is injectable (tests)."""

    def __init__(self, model: LoadedModel, params: EfficiencyParams, clock: Clock = time.perf_counter) -> None:
        self.model = model
        self.params = params
        self.clock = clock
        self.device = _Device(model.device)
        self.want_stress = bool(model.card.capabilities.stress)

    def run(self, unit: RepeatUnit) -> Sweep:
        params = self.params
        n0 = len(unit.atoms)
        sweep = Sweep(unit_atoms=n0)
        cap = params.max_atoms // n0
        if cap < 1:
            raise ItemFailure(f"the repeated unit has {n0} atoms, more than max_atoms = {params.max_atoms}")
        start = self.clock()
        try:
            self._grow(unit, sweep, cap, start)
            if sweep.stop_reason == STOP_OOM:
                self._bisect(unit, sweep, start)
        except _SizeFailed as failure:
            sweep.stop_reason = STOP_ERROR
            sweep.stop_detail = f"{type(failure.cause).__name__} at {failure.n_atoms} atoms: {failure.cause}"[:300]
            failure.sweep = sweep
            raise
        finally:
            sweep.wall_seconds = self.clock() - start
        return sweep

    def _grow(self, unit: RepeatUnit, sweep: Sweep, cap: int, start: float) -> None:
        n0 = len(unit.atoms)
        last = 0
        target = max(1.0, self.params.min_atoms / n0)
        while True:
            low = max(last + 1, math.ceil(MIN_GROWTH * last))
            if low > cap:
                sweep.stop_reason = STOP_CAP
                sweep.stop_detail = f"the next size would exceed max_atoms = {self.params.max_atoms}"
                return
            repeats = choose_repeats(unit, low, cap, target)
            copies = int(np.prod(repeats))
            if self._over_budget(sweep, copies, start):
                return
            if not self._try(unit, repeats, sweep, "growth"):
                sweep.oom_atoms = copies * n0
                return
            last = copies
            target = 2.0 * copies

    def _bisect(self, unit: RepeatUnit, sweep: Sweep, start: float) -> None:
        n0 = len(unit.atoms)
        assert sweep.oom_atoms is not None
        low = max((s.copies for s in sweep.sizes), default=0)
        high = sweep.oom_atoms // n0
        while high - low > 1:
            margin = max(1, (high - low) // 4)
            repeats = choose_repeats(unit, low + margin, high - margin, (low + high) / 2.0)
            copies = int(np.prod(repeats))
            if self._over_budget(sweep, copies, start, stop=False):
                sweep.bisection_complete = False
                return
            if self._try(unit, repeats, sweep, "bisection"):
                low = copies
            else:
                high = copies
                sweep.oom_atoms = copies * n0
        sweep.bisection_complete = True

    def _over_budget(self, sweep: Sweep, copies: int, start: float, stop: bool = True) -> bool:
        """True when the time spent plus the predicted time of a size of `copies` passes the budget.
        A growth size inside η̄'s window is never over budget: η̄ averages a fixed, declared set of
        sizes (which sizes a budget admits varied from run to run, and moved η̄ by up to 24%)."""
        if stop and copies * sweep.unit_atoms <= self.params.eta_window[1]:
            return False
        elapsed = self.clock() - start
        predicted = 0.0
        if sweep.sizes:
            last = max(sweep.sizes, key=lambda s: s.copies)
            per_call = float(np.median(last.seconds))
            predicted = per_call * copies / last.copies * (self.params.warmup + self.params.repeats)
        if elapsed + predicted <= self.params.time_budget_s:
            return False
        if stop:
            sweep.stop_reason = STOP_BUDGET
            sweep.stop_detail = (
                f"{elapsed:.3g} s spent + {predicted:.3g} s predicted for {copies} copies "
                f"> time_budget_s = {self.params.time_budget_s:g}"
            )
        return True

    def _try(self, unit: RepeatUnit, repeats: tuple[int, int, int], sweep: Sweep, phase: str) -> bool:
        """Time one size; False when it ran out of memory. Any other failure raises _SizeFailed."""
        supercell = prepare_for_model(self.model.card, unit.supercell(repeats), DEFAULT_PADDING)
        copies = int(np.prod(repeats))
        try:
            timing = self._time_size(supercell, copies, repeats, sweep, phase)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise _SizeFailed(len(supercell), exc) from exc
            detail = f"{type(exc).__name__} at {len(supercell)} atoms: {exc}"[:300]
        else:
            sweep.sizes.append(timing)
            sweep.sizes.sort(key=lambda s: s.copies)
            return True
        # Out of memory. Freed here, outside the handler, once the traceback no longer holds the tensors.
        self.device.release()
        if sweep.stop_reason is None:
            sweep.stop_reason = STOP_OOM
            sweep.stop_detail = detail
        return False

    def _time_size(
        self, supercell: Atoms, copies: int, repeats: tuple[int, int, int], sweep: Sweep, phase: str
    ) -> SizeTiming:
        params = self.params
        stress = self.want_stress and bool(supercell.pbc.all())
        self.device.reset_peak()
        timed: list[float] = []
        for call in range(params.warmup + params.repeats):
            atoms = supercell.copy()
            atoms.calc = None
            atoms.rattle(stdev=params.rattle_A, rng=np.random.default_rng([params.seed, copies, call]))
            atoms.calc = self.model.calculator
            self.device.synchronize()
            started = self.clock()
            try:
                energy = atoms.get_potential_energy()
                forces = atoms.get_forces()
                virial = atoms.get_stress() if stress else None
                self.device.synchronize()
            finally:
                seconds = self.clock() - started
                sweep.model_seconds += seconds
            if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
                raise ItemFailure(f"non-finite energy or forces at {len(atoms)} atoms")
            if virial is not None and not np.all(np.isfinite(virial)):
                raise ItemFailure(f"non-finite stress at {len(atoms)} atoms")
            if call >= params.warmup:
                timed.append(seconds)
        return SizeTiming(
            copies=copies,
            repeats=repeats,
            n_atoms=len(supercell),
            seconds=timed,
            rss_mib=current_rss_mib(),
            device_peak_mib=self.device.peak_mib(),
            phase=phase,
        )


# ---------------------------------------------------------------------------------------------------------
# The task


@dataclass(frozen=True)
class PreparedSystem:
    dataset: str
    frame: int
    frame_id: str
    structure: Atoms  # the frame as shipped (element coverage is checked on it)
    unit: RepeatUnit


def load_systems(params: EfficiencyParams, manifest: ManifestDocument) -> list[tuple[str, PreparedSystem]]:
    """Every listed system's repeat unit from `manifest`; a bad name, index or geometry is an InputError
    before any model call."""
    lookup = NamedFrames(manifest, PARAMS_SOURCE)
    systems = []
    for index, system in enumerate(params.systems):
        where = f"systems[{index}]"
        entry, frame = lookup.get(system.dataset, system.frame, where)
        structure = frame.atoms.copy()
        structure.calc = None
        try:
            unit = repeat_unit(structure, system.geometry, params.molecule_spacing_A)
        except ValueError as exc:
            raise InputError(PARAMS_SOURCE, f"{where}.geometry", f"{entry.name}[{system.frame}]: {exc}") from None
        name = f"{entry.name}[{system.frame}]"
        systems.append(
            (name, PreparedSystem(entry.name, system.frame, str(frame.frame_id), structure, unit))
        )
    return systems


def environment(model: LoadedModel) -> dict[str, Any]:
    try:
        import torch

        torch_version: str | None = str(torch.__version__)
    except ImportError:
        torch_version = None
    return {
        "device": model.device,
        "device_name": gpu_name(model.device) or cpu_name(),
        "dtype": model.card.dtype,
        "threads": thread_count(),
        "torch": torch_version,
    }


def sweep_record(system: PreparedSystem, sweep: Sweep, window: tuple[int, int], env: dict[str, Any]) -> dict[str, Any]:
    sizes = [s.record() for s in sweep.sizes]
    in_window = [s["us_per_atom"] for s in sizes if window[0] <= s["n_atoms"] <= window[1]]
    return {
        "dataset": system.dataset,
        "frame": system.frame,
        "frame_id": system.frame_id,
        "formula": system.unit.atoms.get_chemical_formula(),
        "geometry": system.unit.geometry,
        "unit_atoms": sweep.unit_atoms,
        "repeat_axes": list(system.unit.axes),
        "sizes": sizes,
        "max_atoms": sweep.max_atoms,
        "stop_reason": sweep.stop_reason,
        "stop_detail": sweep.stop_detail,
        "oom_atoms": sweep.oom_atoms,
        "bisection_complete": sweep.bisection_complete,
        "scaling_exponent": scaling_exponent([s["n_atoms"] for s in sizes], [s["median_seconds"] for s in sizes]),
        "eta_us_per_atom": float(np.mean(in_window)) if in_window else None,
        "n_sizes_in_window": len(in_window),
        # The window's sizes are timed whatever the budget; only out of memory, an error or the
        # max_atoms cap leaves some out, and then this says so.
        "window_complete": sweep.stop_reason in (STOP_CAP, STOP_BUDGET),
        "wall_seconds": sweep.wall_seconds,
        "model_seconds": sweep.model_seconds,
        "environment": env,
        "units": {"us_per_atom": "µs/atom", "median_seconds": "s", "rss_mib": "MiB", "device_peak_mib": "MiB"},
    }


@register_task
class EfficiencyTask(StandaloneTask[EfficiencyParams]):
    name = "efficiency"
    category = Category.EFFICIENCY
    # 2: the budget no longer decides which sizes inside η̄'s window are timed.
    version = "2"
    Params = EfficiencyParams

    @classmethod
    def referenced_datasets(cls, params: EfficiencyParams) -> list[str]:
        return sorted({system.dataset for system in params.systems})

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self.clock = clock

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: EfficiencyParams) -> dict[str, Metric]:
        """η̄, M_E, the largest size and the mean scaling exponent from the completed systems' records
        (records of failed systems, status "failed", are left out; η̄ pools the sizes inside
        params.eta_window). The peak memory metrics are the run's own: run() adds them."""
        low, high = params.eta_window
        completed = [r for r in records if r.get("status", "completed") == "completed"]
        in_window = [s["us_per_atom"] for r in completed for s in r["sizes"] if low <= s["n_atoms"] <= high]
        eta, m_e = eta_and_m_e(in_window)
        exponents = [r["scaling_exponent"] for r in completed if r["scaling_exponent"] is not None]
        reached = [r["max_atoms"] for r in completed if r["max_atoms"] is not None]
        return {
            "eta_us_per_atom": Metric(value=eta, unit="µs/atom"),
            "m_e": Metric(value=m_e, unit="1"),
            "max_atoms": Metric(value=float(max(reached)) if reached else None, unit="atoms"),
            "scaling_exponent": Metric(value=float(np.mean(exponents)) if exponents else None, unit="1"),
        }

    def run(self, model: LoadedModel, params: EfficiencyParams, context: TaskContext) -> TaskOutput:
        systems = load_systems(params, context.manifest)
        env = environment(model)
        sweeper = SizeSweeper(model, params, self.clock)
        window = params.eta_window
        failed_records: dict[str, dict[str, Any]] = {}
        sampled_rss = [current_rss_mib()]
        device_peaks: list[float] = []
        model_seconds = [0.0]

        def evaluate(name: str, system: PreparedSystem) -> dict[str, Any]:
            sweep = Sweep(unit_atoms=len(system.unit.atoms))
            try:
                sweep = sweeper.run(system.unit)
            except _SizeFailed as failure:
                sweep = failure.sweep or sweep
                failed_records[name] = {"item": name, "status": "failed", **sweep_record(system, sweep, window, env)}
                raise ItemFailure(f"at {failure.n_atoms} atoms: {type(failure.cause).__name__}: {failure.cause}") \
                    from failure.cause
            finally:
                model_seconds[0] += sweep.model_seconds
                sampled_rss.extend(s.rss_mib for s in sweep.sizes)
                device_peaks.extend(s.device_peak_mib for s in sweep.sizes if s.device_peak_mib is not None)
            if not sweep.sizes:
                raise ItemFailure(f"no size could be timed ({sweep.stop_reason}: {sweep.stop_detail})")
            return {"status": "completed", **sweep_record(system, sweep, window, env)}

        results = evaluate_items(model, systems, lambda s: [s.structure], evaluate, context.progress)
        completed = {r["item"]: r for r in results.records}
        records = [completed.get(name) or failed_records[name] for name, _ in systems
                   if name in completed or name in failed_records]
        peak_rss = max(lifetime_peak_rss_mib(), *sampled_rss)
        peak_device = max(device_peaks) if device_peaks else None
        return self.output(
            params,
            ItemResults(records, results.issues, len(systems)),
            compute_seconds=model_seconds[0],
            extra_metrics={
                "peak_rss_mib": Metric(value=peak_rss, unit="MiB"),
                "peak_device_mib": Metric(value=peak_device, unit="MiB"),
            },
        )


