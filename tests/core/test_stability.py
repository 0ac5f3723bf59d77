"""MD stability (`md_stability`): drift against analytic answers, EMT against a plain ASE run, failures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.constants as const
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.io import read
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from pydantic import ValidationError

import lambench_core
from lambench_core.categories import Category
from lambench_core.errors import InputError
from lambench_core.models import ModelCatalog, load_model
from lambench_core.tasks.base import task_class
from lambench_core.tasks.stability import (
    LAMBDA_0,
    MDStabilityParams,
    MDStabilityTask,
    MDSystem,
    ase_time_to_ps,
    initial_velocities,
    instability_metrics,
    load_systems,
    subsample,
    system_instability,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes

SETS = Path(lambench_core.__file__).parent / "data" / "sets"
CU4 = MDSystem(dataset="cu_bulk_pbe", frame=0)  # cu-rattle-000: 4 Cu atoms, equal masses


@pytest.fixture(scope="module")
def emt():
    return load_model(ModelCatalog.load().get("emt"), None, "cpu")


def with_calculator(model, calculator):
    """The EMT card (its element list) with a test calculator in place of EMT."""
    return dataclasses.replace(model, calculator=calculator)


def ase_time_unit_fs() -> float:
    """ASE's time unit Å·sqrt(amu/eV) in fs, from CODATA constants (not from ase.units)."""
    return 1e-10 * math.sqrt(const.atomic_mass / const.electron_volt) * 1e15


class Harmonic(Calculator):
    """Independent isotropic oscillators tethered to the first positions seen: E = ½k Σ|r − r0|²."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k
        self.r0 = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.r0 is None:
            self.r0 = self.atoms.positions.copy()
        d = self.atoms.positions - self.r0
        self.results = {"energy": 0.5 * self.k * float(np.sum(d**2)), "forces": -self.k * d}


class ConstantForce(Calculator):
    """Not conservative: E = 0 while every atom feels the same force f, which does work on it."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, force) -> None:
        super().__init__()
        self.force = np.asarray(force, float)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.tile(self.force, (len(self.atoms), 1))}


class BreaksAfter(EMT):
    """EMT until `calls` calculations are done; then NaN forces, or `energy_jump` eV/atom more energy."""

    def __init__(self, calls: int, energy_jump: float | None = None) -> None:
        super().__init__()
        self.limit = calls
        self.energy_jump = energy_jump
        self.count = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.count += 1
        if self.count > self.limit:
            if self.energy_jump is None:
                self.results["forces"] = np.full_like(self.results["forces"], np.nan)
            else:
                self.results["energy"] += self.energy_jump * len(self.atoms)


# ---------------------------------------------------------------------------------------------
# Units and score arithmetic


def test_ase_time_converts_to_picoseconds():
    assert units.fs == pytest.approx(0.0982269, rel=1e-5)
    assert ase_time_to_ps(1000 * units.fs) == pytest.approx(1.0, rel=1e-12)
    assert ase_time_to_ps(250 * 2.0 * units.fs) == pytest.approx(0.5, rel=1e-12)  # 250 steps of 2 fs
    # One ASE time unit is ≈ 10.18 fs, from the physical constants: reading it as 1 fs is 10× off.
    assert ase_time_to_ps(1.0) * 1000 == pytest.approx(ase_time_unit_fs(), rel=1e-6)
    assert ase_time_to_ps(np.array([0.0, 1.0]))[1] == pytest.approx(0.0101805, rel=1e-5)


def test_instability_score_clips_at_0_and_5_and_failures_score_5():
    assert system_instability(None) == 5.0
    assert system_instability(float("nan")) == 5.0
    assert system_instability(0.0) == 0.0
    assert system_instability(LAMBDA_0) == 0.0
    assert system_instability(LAMBDA_0 / 7) == 0.0  # log10 < 0 clips to 0
    assert system_instability(LAMBDA_0 * 10) == pytest.approx(1.0)
    assert system_instability(LAMBDA_0 * 10**3.5) == pytest.approx(3.5)
    assert system_instability(LAMBDA_0 * 1e7) == 5.0  # log10 = 7 clips to 5
    drifts = [None, LAMBDA_0 * 10, 1e-6, LAMBDA_0 * 1e7]
    metrics = instability_metrics(drifts)
    assert metrics["m_is"].value == pytest.approx((5 + 1 + 0 + 5) / 4)
    assert metrics["survival_fraction"].value == pytest.approx(0.75)
    assert metrics["drift_mean_abs"].value == pytest.approx(np.mean([LAMBDA_0 * 10, 1e-6, LAMBDA_0 * 1e7]))
    assert metrics["drift_median_abs"].value == pytest.approx(LAMBDA_0 * 10)
    assert metrics["drift_mean_abs"].unit == "eV/atom/ps"
    failed_only = instability_metrics([None, None])
    assert failed_only["m_is"].value == 5.0 and failed_only["survival_fraction"].value == 0.0
    assert failed_only["drift_mean_abs"].value is None
    assert all(m.value is None for m in instability_metrics([]).values())
    kept = subsample(list(range(1001)))  # long runs store ≤ 201 evenly spaced samples, ends included
    assert len(kept) == 201 and kept[0] == 0 and kept[-1] == 1000 and kept[1] == 5


# ---------------------------------------------------------------------------------------------
# Analytic answers


def test_harmonic_oscillators_conserve_energy_and_show_no_drift(emt):
    params = MDStabilityParams(systems=[CU4], steps=400, log_interval=10, seed=3)
    output = MDStabilityTask().run(with_calculator(emt, Harmonic(k=2.0)), params, task_context())
    (record,) = output.records
    assert not output.issues and record["status"] == "completed" and record["steps_completed"] == 400
    # Velocity Verlet's energy error for a harmonic well is bounded and oscillates: no secular drift.
    assert abs(record["drift"]) < LAMBDA_0 / 10
    assert output.metrics["m_is"].value == 0.0 and output.metrics["survival_fraction"].value == 1.0
    assert 0 < record["max_energy_deviation"] < 1e-3
    assert record["temperature_mean_K"] > 50  # the atoms did move
    # Total momentum is conserved (equal masses, Σp = 0 at start) and zeroed by Stationary.
    assert record["momentum_drift"] < 1e-10


def test_constant_force_drift_matches_the_analytic_rate(emt):
    """E_pot = 0 and F = f on each atom (mass m): velocity Verlet is exact for a constant force, and
    with Σp = 0 and equal masses E_tot/N = E_kin(0)/N + |f|² t² / (2m). The least-squares slope of
    c·t² over evenly spaced samples on [t1, t2] is exactly c·(t1 + t2)."""
    force = np.array([0.02, 0.01, -0.03])  # eV/Å
    params = MDStabilityParams(systems=[CU4], steps=300, log_interval=10, timestep_fs=1.0, seed=11)
    output = MDStabilityTask().run(with_calculator(emt, ConstantForce(force)), params, task_context())
    (record,) = output.records
    assert record["status"] == "completed"
    mass = 63.546  # amu (Cu, ASE's value)
    tau_ps = ase_time_unit_fs() / 1000.0  # one ASE time unit in ps
    c = float(force @ force) / (2 * mass) / tau_ps**2  # eV/atom/ps²
    samples_ps = np.arange(0, 301, 10) * 1.0 / 1000.0  # 31 samples; the first 6 (20 %) are dropped
    t1, t2 = samples_ps[6], samples_ps[-1]
    expected = c * (t1 + t2)
    assert record["drift"] == pytest.approx(expected, rel=1e-5)
    assert np.polyfit(samples_ps[6:], c * samples_ps[6:] ** 2, 1)[0] == pytest.approx(expected, rel=1e-9)
    assert record["m_is"] == pytest.approx(math.log10(expected / LAMBDA_0), rel=1e-5)
    assert output.metrics["drift_mean_abs"].value == pytest.approx(expected, rel=1e-5)
    # The stored samples are the energy curve itself.
    times = np.array(record["energy_samples"]["time_ps"])
    energies = np.array(record["energy_samples"]["total_energy_per_atom"])
    assert times == pytest.approx(samples_ps, abs=1e-12)
    assert energies - energies[0] == pytest.approx(c * times**2, rel=1e-5, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# EMT against a plain ASE run


def test_emt_copper_matches_a_direct_ase_run(emt):
    system = MDSystem(dataset="cu_bulk_pbe", frame=0, repeat=(2, 2, 2))
    params = MDStabilityParams(systems=[system], steps=200, log_interval=10, seed=7)
    output = MDStabilityTask().run(emt, params, task_context())
    (record,) = output.records
    assert record["item"] == "cu_bulk_pbe[0]2×2×2" and record["frame_id"] == "cu-rattle-000"
    assert record["status"] == "completed" and record["steps_completed"] == 200 and record["n_atoms"] == 32
    assert record["momentum_drift"] < 1e-10
    assert not record["zero_rotation"] and record["periodic"]
    assert abs(record["drift"]) < 10 * LAMBDA_0

    atoms = read(SETS / "cu_bulk" / "pbe.extxyz", index=0).repeat((2, 2, 2))
    atoms.calc = EMT()
    thermalize_momenta(atoms, 300.0, rng=np.random.default_rng(7))  # Maxwell–Boltzmann
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    steps, energies, temperatures = [], [], []
    for block in range(21):
        if block:
            dyn.run(10)
        steps.append(10 * block)
        energies.append(atoms.get_total_energy() / len(atoms))
        temperatures.append(atoms.get_temperature())
    time_ps = np.array(steps) / 1000.0
    drop = int(0.2 * 21)
    expected = np.polyfit(time_ps[drop:], np.array(energies)[drop:], 1)[0]
    assert record["drift"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert record["temperature_mean_K"] == pytest.approx(np.mean(temperatures[drop:]), rel=1e-6)
    assert record["energy_samples"]["total_energy_per_atom"] == pytest.approx(energies, abs=1e-10)


def test_molecules_get_zero_angular_momentum_and_periodic_cells_do_not(emt):
    frames = read(SETS / "molecules_small" / "pbe.extxyz", index=":")
    water = frames[0].copy()
    initial_velocities(water, 300.0, seed=1, isolated=True)
    assert np.linalg.norm(water.get_angular_momentum()) < 1e-10
    assert np.linalg.norm(water.get_momenta().sum(axis=0)) < 1e-10
    assert water.get_temperature() == pytest.approx(300.0, rel=0.7)
    bulk = read(SETS / "cu_bulk" / "pbe.extxyz", index=0).repeat(2)
    initial_velocities(bulk, 300.0, seed=1, isolated=False)
    assert np.linalg.norm(bulk.get_momenta().sum(axis=0)) < 1e-10
    assert np.linalg.norm(bulk.get_angular_momentum()) > 1e-3  # not removed in a periodic cell


# ---------------------------------------------------------------------------------------------
# Failures


@pytest.mark.parametrize(
    ("calculator", "step", "why"),
    [
        (BreaksAfter(calls=50), 50, "non-finite forces"),  # call 1 is step 0, call k + 1 is step k
        (BreaksAfter(calls=75, energy_jump=2.0), 80, "energy exploded"),  # from step 75, seen at the next sample
    ],
)
def test_exploding_run_stops_early_and_scores_5(emt, calculator, step, why):
    params = MDStabilityParams(systems=[CU4], steps=300, log_interval=10)
    output = MDStabilityTask().run(with_calculator(emt, calculator), params, task_context())
    (issue,) = output.issues
    assert issue.kind == "failed" and f"step {step} " in issue.reason and why in issue.reason
    assert output.n_items == 1 and output.n_scored == 0
    (record,) = output.records  # the partial trajectory is kept
    assert record["status"] == "failed" and record["failed_at_step"] == step
    assert record["steps_completed"] == step - 1 and record["m_is"] == 5.0 and record["drift"] is None
    assert record["energy_samples"]["step"][-1] < step
    assert output.metrics["m_is"].value == 5.0 and output.metrics["survival_fraction"].value == 0.0
    assert output.metrics["drift_mean_abs"].value is None
    assert_summarizes(MDStabilityTask, output, params)


def test_skipped_systems_are_not_attempted_and_failures_count(emt):
    """EMT lacks Si (skipped); its H on Cu(111) at a PBE geometry has ~18 eV/Å forces and blows up at 1 fs."""
    systems = [
        MDSystem(dataset="cu_bulk_pbe", frame=0),
        MDSystem(dataset="si_bulk_pbe", frame=0),
        MDSystem(dataset="cu111_h_pbe", frame=0, repeat=(3, 3, 1)),
    ]
    params = MDStabilityParams(systems=systems, steps=100, log_interval=5)
    output = MDStabilityTask().run(emt, params, task_context())
    kinds = {issue.item: issue.kind for issue in output.issues}
    assert kinds == {"si_bulk_pbe[0]": "skipped", "cu111_h_pbe[0]3×3×1": "failed"}
    assert output.n_items == 3 and output.n_scored == 1
    completed, failed = output.records
    assert completed["status"] == "completed" and failed["status"] == "failed"
    assert failed["domain"] == "catalysis" and completed["domain"] == "inorganic_materials"
    assert output.metrics["survival_fraction"].value == 0.5
    assert output.metrics["m_is"].value == pytest.approx((completed["m_is"] + 5.0) / 2)
    assert_summarizes(MDStabilityTask, output, params)
    json.dumps(output.records)  # plain JSON types, for the result store


# ---------------------------------------------------------------------------------------------
# Registration and bad input


def test_registered_with_defaults_from_every_domain():
    assert task_class("md_stability") is MDStabilityTask
    assert MDStabilityTask.category == Category.STABILITY and MDStabilityTask.version == "1"
    params = MDStabilityParams()
    assert (params.steps, params.timestep_fs, params.temperature_K, params.log_interval) == (10_000, 1.0, 300.0, 10)
    domains = [system.domain.value for _, system in load_systems(params, task_context().manifest)]
    assert len(domains) >= 6 and set(domains) == {"inorganic_materials", "molecules", "catalysis"}


def test_bad_systems_are_input_errors_before_any_model_call(emt):
    never = with_calculator(emt, BreaksAfter(calls=0))
    cases = [
        (MDSystem(dataset="no_such_set", frame=0), "systems[0].dataset"),
        (MDSystem(dataset="cu_bulk_pbe", frame=99), "systems[0].frame"),
        (MDSystem(dataset="molecules_small_pbe", frame=0, repeat=(2, 1, 1)), "systems[0].repeat"),
    ]
    for system, field in cases:
        with pytest.raises(InputError) as info:
            MDStabilityTask().run(never, MDStabilityParams(systems=[system], steps=100), task_context())
        assert info.value.field == field
    assert never.calculator.count == 0
    with pytest.raises(ValidationError, match="fewer than 3"):
        MDStabilityParams(steps=19, log_interval=10)
    with pytest.raises(ValidationError, match="twice"):
        MDStabilityParams(systems=[CU4, CU4])
    with pytest.raises(ValidationError):
        MDStabilityParams(unknown=1)
