"""MD stability: energy drift of NVE velocity-Verlet runs, scored as the instability metric M_IS.

`md_stability` runs plain NVE molecular dynamics (ASE's `VelocityVerlet`) with the model on shipped
structures of every domain, named by dataset and frame index in the `systems` param (default: bulk Cu,
Si and SiC; ethanol and water; H and O on Cu(111)). Each structure is the shipped frame (a slightly
rattled, near-equilibrium geometry) repeated `repeat` times along periodic axes, prepared the harness's
way (`prepare_for_model`: a molecule goes into a vacuum box for periodic-only models; a slab stored
with open axes gets vacuum). A system whose elements the model lacks is skipped (not attempted).

Start: Maxwell–Boltzmann velocities at `temperature_K` from `numpy.random.default_rng(seed)` (a fresh
generator per system, so a system's run does not depend on which others are listed), then zero total
momentum (`Stationary`) and, for non-periodic systems only, zero angular momentum (`ZeroRotation`):
in a periodic cell a rigid rotation is not a motion of the system and angular momentum is not
conserved, so removing it is meaningless there. Both keep the drawn temperature (ASE rescales). The
structure is not relaxed first, so about half of the kinetic energy flows into potential energy
during the first steps; this transient falls in the dropped equilibration window.

Run: `steps` steps of `timestep_fs`; the total energy E_tot = E_pot + E_kin is sampled every
`log_interval` steps (step 0 included); the first `equilibration_fraction` of the samples is dropped
and the drift is the least-squares slope of E_tot / N_atoms against time, in eV/atom/ps.

Time units. ASE's internal time unit is Å·sqrt(amu/eV) ≈ 10.18 fs, not 1 fs: `units.fs` ≈ 0.0982.
With the timestep built as `timestep_fs * units.fs`, step k is at k·timestep_fs/1000 ps exactly, and
an ASE time t converts to ps as t / (1000·units.fs) (`ase_time_to_ps`). A known benchmark mislabels
this conversion: reading ASE time as femtoseconds (or as 0.1 ps) puts its drifts off by about 10×
(10.18 resp. 9.8). Drifts here are per picosecond of simulated time.

Failure. A run stops early and counts as failed (an ItemIssue of kind "failed" naming the step, so
the harness's success rate counts it) when the model raises, when forces become non-finite or exceed
1e4 eV/Å (checked every step), or when at a sample E_tot is non-finite or |E_tot − E_tot(0)| / N
exceeds `max_energy_change_eV_per_atom` (default 1 eV/atom: about 25× the mean kinetic energy per
atom at 300 K, ≈ a 7700 K temperature jump; no usable NVE run gets there, and a slower drift still
gets a drift-based score). Its partial trajectory stays in the records with status "failed".

Per-system record: signed and absolute drift (eV/atom/ps), steps completed, wall time, total-momentum
drift |P_end − P_start| (amu·Å/fs), mean temperature over the kept samples (ASE's `get_temperature`,
3N degrees of freedom), the largest |E_tot − E_tot(0)| / N, and the energy samples (at most
`MAX_STORED_SAMPLES`, evenly subsampled).

Score. Per attempted system M_IS = clip(log10(|drift| / λ0), 0, 5) with λ0 = 5·10⁻⁴ eV/atom/ps, and 5
for a failed run; the task's `m_is` is the mean over attempted systems (skipped ones excluded; 0 is
stable, 5 the worst), with `survival_fraction` = completed ÷ attempted and the mean and median
|drift| over completed runs. The dummy model (constant energy, zero forces) conserves its energy
exactly and gets M_IS = 0: the metric measures integrator-level stability, not accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambench_core.categories import Category
from lambench_core.data.manifest import ManifestDocument
from lambench_core.domains import Domain
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.results.record import Metric
from lambench_core.tasks.base import ItemResults, StandaloneTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import DEFAULT_PADDING, ItemFailure, evaluate_items
from lambench_core.tasks.named_frames import NamedFrames
from lambench_core.tasks.relaxation import EXPLODING_FORCE

LAMBDA_0 = 5e-4  # eV/atom/ps: a drift this small (or smaller) scores M_IS = 0
M_IS_MAX = 5.0  # the score of a failed run, and the cap
MAX_STORED_SAMPLES = 201
PARAMS_SOURCE = "md_stability params"


def ase_time_to_ps(t_ase: float | np.ndarray) -> float | np.ndarray:
    """ASE time (units of Å·sqrt(amu/eV) ≈ 10.18 fs) to picoseconds."""
    return t_ase / (1000.0 * units.fs)


def momentum_to_amu_angstrom_per_fs(p_ase: np.ndarray) -> np.ndarray:
    """ASE momentum (amu·Å per ASE time unit) to amu·Å/fs: one fs is `units.fs` ASE time units."""
    return p_ase * units.fs


class MDSystem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="A shipped (or fetched) extxyz/deepmd set, by manifest name")
    frame: int = Field(ge=0, description="Index of the frame in the set (files in manifest order)")
    repeat: tuple[int, int, int] = Field(
        default=(1, 1, 1), description="Supercell repetitions, along periodic axes only"
    )

    @model_validator(mode="after")
    def _positive_repeat(self) -> MDSystem:
        if min(self.repeat) < 1:
            raise ValueError("repeat entries must be ≥ 1")
        return self


DEFAULT_SYSTEMS: tuple[MDSystem, ...] = (
    MDSystem(dataset="cu_bulk_pbe", frame=0, repeat=(2, 2, 2)),  # cu-rattle-000, 32 atoms
    MDSystem(dataset="si_bulk_pbe", frame=0, repeat=(2, 2, 2)),  # si-rattle-000, 64 atoms
    MDSystem(dataset="sic_bulk_pbe", frame=0, repeat=(2, 2, 2)),  # sic-rattle-000, 64 atoms
    MDSystem(dataset="molecules_small_pbe", frame=28),  # ethanol-rattle-000
    MDSystem(dataset="molecules_small_pbe", frame=0),  # h2o-rattle-000
    MDSystem(dataset="cu111_h_pbe", frame=0, repeat=(3, 3, 1)),  # cu111-h-rattle-000, 36 atoms
    MDSystem(dataset="cu111_o_pbe", frame=0, repeat=(3, 3, 1)),  # cu111-o-rattle-000, 36 atoms
)


class MDStabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systems: list[MDSystem] = Field(default_factory=lambda: list(DEFAULT_SYSTEMS), min_length=1)
    steps: int = Field(default=10_000, ge=1, le=10_000_000)
    timestep_fs: float = Field(default=1.0, gt=0.0, le=10.0)
    temperature_K: float = Field(default=300.0, ge=0.0, le=10_000.0)
    log_interval: int = Field(default=10, ge=1, description="Steps between total-energy samples")
    equilibration_fraction: float = Field(default=0.2, ge=0.0, lt=1.0, description="Leading samples dropped")
    seed: int = Field(default=0, ge=0)
    max_energy_change_eV_per_atom: float = Field(
        default=1.0, gt=0.0, description="|E_tot − E_tot(0)| / N above this stops the run as failed"
    )

    @model_validator(mode="after")
    def _enough_samples(self) -> MDStabilityParams:
        if kept_sample_count(self.steps // self.log_interval + 1, self.equilibration_fraction) < 3:
            raise ValueError("steps / log_interval leaves fewer than 3 energy samples after equilibration")
        seen = set()
        for system in self.systems:
            key = (system.dataset, system.frame, system.repeat)
            if key in seen:
                raise ValueError(f"system {system.dataset}[{system.frame}] is listed twice")
            seen.add(key)
        return self


def kept_sample_count(n_samples: int, equilibration_fraction: float) -> int:
    return n_samples - int(math.floor(equilibration_fraction * n_samples))


def fit_drift(time_ps: np.ndarray, energy_per_atom: np.ndarray, equilibration_fraction: float) -> float:
    """Least-squares slope (eV/atom/ps) of the samples left after dropping the leading fraction."""
    n_drop = len(time_ps) - kept_sample_count(len(time_ps), equilibration_fraction)
    t, e = np.asarray(time_ps[n_drop:], float), np.asarray(energy_per_atom[n_drop:], float)
    if len(t) < 2:
        raise ItemFailure("fewer than 2 energy samples to fit a drift")
    slope = np.polyfit(t, e, 1)[0]
    return float(slope)


def system_instability(drift_abs: float | None) -> float:
    """M_IS of one attempted system: clip(log10(|drift| / λ0), 0, 5); None (a failed run) scores 5."""
    if drift_abs is None or not np.isfinite(drift_abs):
        return M_IS_MAX
    if drift_abs <= LAMBDA_0:
        return 0.0
    return float(min(M_IS_MAX, math.log10(drift_abs / LAMBDA_0)))


def instability_metrics(drifts_abs: list[float | None]) -> dict[str, Metric]:
    """Task metrics from the attempted systems' |drift| (None for a failed run)."""
    completed = [d for d in drifts_abs if d is not None]
    scores = [system_instability(d) for d in drifts_abs]
    return {
        "m_is": Metric(value=float(np.mean(scores)) if scores else None, unit="1"),
        "survival_fraction": Metric(value=len(completed) / len(drifts_abs) if drifts_abs else None, unit="1"),
        "drift_mean_abs": Metric(value=float(np.mean(completed)) if completed else None, unit="eV/atom/ps"),
        "drift_median_abs": Metric(value=float(np.median(completed)) if completed else None, unit="eV/atom/ps"),
    }


@dataclass
class MDRun:
    """One NVE trajectory's samples; `failed_at_step` is set when the run stopped early."""

    n_atoms: int
    steps: list[int] = field(default_factory=list)
    time_ps: list[float] = field(default_factory=list)
    energy_per_atom: list[float] = field(default_factory=list)  # E_tot / N, eV/atom
    temperature_K: list[float] = field(default_factory=list)
    steps_completed: int = 0
    failed_at_step: int | None = None
    failure: str | None = None
    momentum_drift: float | None = None  # amu·Å/fs
    wall_seconds: float = 0.0


def maxwell_boltzmann(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """ASE's Maxwell–Boltzmann momenta: `thermalize_momenta` from ASE 3.29 (which deprecates
    `MaxwellBoltzmannDistribution`), the older name before it; both draw the same numbers."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    else:
        thermalize_momenta(atoms, temperature_K, rng=rng)


def initial_velocities(atoms: Atoms, temperature_K: float, seed: int, isolated: bool) -> None:
    """Maxwell–Boltzmann velocities, zero total momentum, and zero angular momentum for an isolated
    system (in a periodic cell a rigid rotation is no motion of the system and is not conserved)."""
    from ase.md.velocitydistribution import Stationary, ZeroRotation  # ase.md pulls in scipy: see run_nve

    rng = np.random.default_rng(seed)
    maxwell_boltzmann(atoms, temperature_K, rng)
    if len(atoms) > 1 and temperature_K > 0:
        Stationary(atoms)
        if isolated:
            ZeroRotation(atoms)


def run_nve(atoms: Atoms, params: MDStabilityParams, isolated: bool) -> MDRun:
    """Velocity-Verlet NVE from Maxwell–Boltzmann velocities; `atoms` carries the model's calculator."""
    # Imported where MD runs: ase.md pulls in ase.io, ase.optimize and scipy, which the plan,
    # aggregate and publish steps (they import every task module) would load for nothing.
    from ase.md.verlet import VelocityVerlet

    n = len(atoms)
    run = MDRun(n_atoms=n)
    initial_velocities(atoms, params.temperature_K, params.seed, isolated)
    dyn = VelocityVerlet(atoms, timestep=params.timestep_fs * units.fs, logfile=None)
    p_start = atoms.get_momenta().sum(axis=0)
    e_start: float | None = None
    step = 0
    start = time.perf_counter()

    def fail(reason: str) -> None:
        run.failed_at_step = step
        run.failure = reason

    try:
        forces = atoms.get_forces(md=True)
        while True:
            if not np.all(np.isfinite(forces)):
                fail("non-finite forces")
                break
            if np.max(np.linalg.norm(forces, axis=1), initial=0.0) > EXPLODING_FORCE:
                fail(f"|F| > {EXPLODING_FORCE:g} eV/Å")
                break
            if step % params.log_interval == 0:
                e_tot = (atoms.get_potential_energy() + atoms.get_kinetic_energy()) / n
                if not np.isfinite(e_tot):
                    fail("non-finite total energy")
                    break
                if e_start is None:
                    e_start = e_tot
                if abs(e_tot - e_start) > params.max_energy_change_eV_per_atom:
                    fail(
                        f"energy exploded: |E_tot − E_tot(0)| = {abs(e_tot - e_start):.3g} eV/atom "
                        f"> {params.max_energy_change_eV_per_atom:g}"
                    )
                    break
                run.steps.append(step)
                run.time_ps.append(float(ase_time_to_ps(step * dyn.dt)))
                run.energy_per_atom.append(float(e_tot))
                run.temperature_K.append(float(atoms.get_temperature()))
            run.steps_completed = step
            if step == params.steps:
                break
            step += 1
            forces = dyn.step(forces)
            dyn.nsteps += 1
    except Exception as exc:  # the model's own failure mid-run is this run's failure
        fail(f"{type(exc).__name__}: {exc}")
    run.wall_seconds = time.perf_counter() - start
    momenta = atoms.get_momenta()
    if np.all(np.isfinite(momenta)):
        delta = momentum_to_amu_angstrom_per_fs(momenta.sum(axis=0) - p_start)
        run.momentum_drift = float(np.linalg.norm(delta))
    return run


def subsample(values: list[Any], limit: int = MAX_STORED_SAMPLES) -> list[Any]:
    if len(values) <= limit:
        return list(values)
    return [values[i] for i in np.unique(np.linspace(0, len(values) - 1, limit).round().astype(int))]


@dataclass(frozen=True)
class PreparedSystem:
    dataset: str
    frame: int
    frame_id: str
    domain: Domain
    isolated: bool  # no periodic axis: a molecule (zero rotation applies)
    atoms: Atoms


def _system_fields(system: PreparedSystem) -> dict[str, Any]:
    """What identifies a system in its record, whether its run completed, failed or never started."""
    return {
        "dataset": system.dataset,
        "frame": system.frame,
        "frame_id": system.frame_id,
        "domain": system.domain.value,
        "formula": system.atoms.get_chemical_formula(),
        "periodic": not system.isolated,
    }


def load_systems(params: MDStabilityParams, manifest: ManifestDocument) -> list[tuple[str, PreparedSystem]]:
    """Every listed system's structure from `manifest`; bad names or indices are InputErrors, raised
    before any model call."""
    lookup = NamedFrames(manifest, PARAMS_SOURCE)
    systems = []
    for index, system in enumerate(params.systems):
        where = f"systems[{index}]"
        entry, frame = lookup.get(system.dataset, system.frame, where)
        atoms = frame.atoms.copy()
        atoms.calc = None
        isolated = bool(not atoms.pbc.any() or atoms.cell.rank < 3)
        if system.repeat != (1, 1, 1):
            open_axes = [axis for axis in range(3) if system.repeat[axis] > 1 and (isolated or not atoms.pbc[axis])]
            if open_axes:
                raise InputError(
                    PARAMS_SOURCE, f"{where}.repeat", f"{entry.name}[{system.frame}] is not periodic along {open_axes}"
                )
            atoms = atoms.repeat(system.repeat)
        name = f"{entry.name}[{system.frame}]"
        if system.repeat != (1, 1, 1):
            name += "×".join(str(r) for r in system.repeat)
        frame_id = str(frame.frame_id)
        systems.append((name, PreparedSystem(entry.name, system.frame, frame_id, entry.domain, isolated, atoms)))
    return systems


@register_task
class MDStabilityTask(StandaloneTask[MDStabilityParams]):
    name = "md_stability"
    category = Category.STABILITY
    version = "1"
    Params = MDStabilityParams

    @classmethod
    def referenced_datasets(cls, params: MDStabilityParams) -> list[str]:
        return sorted({system.dataset for system in params.systems})

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: MDStabilityParams) -> dict[str, Metric]:
        """M_IS, survival fraction and |drift| statistics of the attempted systems' records: a
        completed run (status "completed") enters with its |drift|, a failed one (status "failed")
        scores 5 and counts against survival. Skipped systems have no record."""
        drifts: list[float | None] = [r["drift_abs"] if r["status"] == "completed" else None for r in records]
        return instability_metrics(drifts)

    def run(self, model: LoadedModel, params: MDStabilityParams, context: TaskContext) -> TaskOutput:
        systems = load_systems(params, context.manifest)
        failed_records: dict[str, dict[str, Any]] = {}
        compute = [0.0]

        def evaluate(name: str, system: PreparedSystem) -> dict[str, Any]:
            atoms = prepare_for_model(model.card, system.atoms, DEFAULT_PADDING)
            atoms.calc = model.calculator
            run = run_nve(atoms, params, isolated=system.isolated)
            compute[0] += run.wall_seconds
            record = self._record(system, run, params)
            if run.failed_at_step is not None:
                failed_records[name] = {"item": name, **record}
                raise ItemFailure(
                    f"run failed at step {run.failed_at_step} of {params.steps} "
                    f"(t = {run.failed_at_step * params.timestep_fs / 1000:g} ps): {run.failure}"
                )
            return record

        results = evaluate_items(model, systems, lambda s: [s.atoms], evaluate, context.progress)
        completed = {r["item"]: r for r in results.records}
        # Every attempted system has a record, a failure included (the MD blew up: its partial
        # trajectory; the model raised before or outside the MD loop: the system and the reason), so
        # that the metrics follow from the records alone.
        by_name = dict(systems)
        for issue in results.issues:
            if issue.kind == "failed" and issue.item not in failed_records:
                failed_records[issue.item] = {
                    "item": issue.item,
                    **self._unstarted_record(by_name[issue.item], issue.reason, params),
                }
        records = [completed.get(name) or failed_records[name] for name, _ in systems
                   if name in completed or name in failed_records]
        return self.output(params, ItemResults(records, results.issues, len(systems)), compute_seconds=compute[0])

    @staticmethod
    def _unstarted_record(system: PreparedSystem, reason: str, params: MDStabilityParams) -> dict[str, Any]:
        """The record of an attempted system whose run left no trajectory (the model raised first)."""
        return {
            **_system_fields(system),
            "n_atoms": len(system.atoms),
            "status": "failed",
            "steps_requested": params.steps,
            "steps_completed": None,
            "failed_at_step": None,
            "failure": reason,
            "drift": None,
            "drift_abs": None,
            "m_is": system_instability(None),
        }

    @staticmethod
    def _record(system: PreparedSystem, run: MDRun, params: MDStabilityParams) -> dict[str, Any]:
        failed = run.failed_at_step is not None
        drift = None
        temperature = None
        if not failed:
            drift = fit_drift(np.array(run.time_ps), np.array(run.energy_per_atom), params.equilibration_fraction)
            n_drop = len(run.time_ps) - kept_sample_count(len(run.time_ps), params.equilibration_fraction)
            temperature = float(np.mean(run.temperature_K[n_drop:]))
        deviation = (
            float(np.max(np.abs(np.array(run.energy_per_atom) - run.energy_per_atom[0])))
            if run.energy_per_atom else None
        )
        stored = subsample(list(range(len(run.steps))))
        return {
            **_system_fields(system),
            "n_atoms": run.n_atoms,
            "zero_rotation": system.isolated and run.n_atoms > 1,
            "status": "failed" if failed else "completed",
            "steps_requested": params.steps,
            "steps_completed": run.steps_completed,
            "failed_at_step": run.failed_at_step,
            "failure": run.failure,
            "simulated_time_ps": run.steps_completed * params.timestep_fs / 1000.0,
            "wall_seconds": run.wall_seconds,
            "drift": drift,
            "drift_abs": None if drift is None else abs(drift),
            "m_is": system_instability(None if drift is None else abs(drift)),
            "momentum_drift": run.momentum_drift,
            "temperature_mean_K": temperature,
            "max_energy_deviation": deviation,
            "energy_samples": {
                "step": [run.steps[i] for i in stored],
                "time_ps": [run.time_ps[i] for i in stored],
                "total_energy_per_atom": [run.energy_per_atom[i] for i in stored],
            },
            "units": {
                "drift": "eV/atom/ps",
                "momentum_drift": "amu·Å/fs",
                "max_energy_deviation": "eV/atom",
                "total_energy_per_atom": "eV/atom",
            },
        }

