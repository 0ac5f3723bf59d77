"""Equation of state on ASE's dcdft set: V0, B0, B1 and the Δ-gauge against WIEN2k (all-electron PBE).

Each elemental crystal is scaled isotropically over ±`volume_range` of its volume, the model's
energies are fitted with a third-order Birch–Murnaghan EOS, and the fit is compared with WIEN2k's.
Δ is the root-mean-square energy difference of the two EOS curves (each zeroed at its minimum)
over ±6% of the WIEN2k volume, in meV/atom (Lejaeghere et al., Science 351, aad3000 (2016)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import units
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import ComputedValues, StandaloneTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import ItemFailure, ItemUnsupported, Timer, evaluate_items

DELTA_RANGE = 0.06


def _dcdft() -> Any:
    """ASE's dcdft collection, imported when it is read: ase.collections opens ase.db, over half a
    second at the start of every step that imports the task modules."""
    from ase.collections import dcdft

    return dcdft


class EOSParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume_range: float = Field(default=0.06, gt=0.005, le=0.2, description="± fraction of the volume")
    points: int = Field(default=7, ge=5, le=41)
    elements: list[str] | None = Field(default=None, description="A subset of dcdft's 71 elements")


@dataclass(frozen=True)
class BirchMurnaghan:
    """Third-order Birch–Murnaghan EOS; V0 in Å³/atom, B0 in eV/Å³, E0 in eV/atom."""

    e0: float
    v0: float
    b0: float
    b1: float

    def energy(self, volume: np.ndarray) -> np.ndarray:
        eta2 = (self.v0 / volume) ** (2.0 / 3.0)
        return self.e0 + 9.0 * self.v0 * self.b0 / 16.0 * (
            (eta2 - 1.0) ** 3 * self.b1 + (eta2 - 1.0) ** 2 * (6.0 - 4.0 * eta2)
        )


def fit_birch_murnaghan(volumes: Sequence[float], energies: Sequence[float]) -> BirchMurnaghan:
    """Fit E = Σ_k c_k V^(-2k/3), k = 0..3 (BM3 is exactly this polynomial), then read off V0, B0, B1."""
    v = np.asarray(volumes, float)
    e = np.asarray(energies, float)
    if np.ptp(e) < 1e-6:
        raise ItemUnsupported("the model's energy does not depend on the volume")
    x = v ** (-2.0 / 3.0)
    c3, c2, c1, c0 = np.polyfit(x, e, 3)
    roots = np.roots([3 * c3, 2 * c2, c1])  # dE/dx = 0
    real = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    inside = [r for r in real if x.min() <= r <= x.max() and 2 * c2 + 6 * c3 * r > 0]
    if not inside:
        raise ItemFailure("no energy minimum inside the sampled volumes")
    x0 = inside[0]
    v0 = x0**-1.5
    coefficients = (c0, c1, c2, c3)

    def derivative(order: int) -> float:
        """d^order E / dV^order at V0, term by term: d/dV V^p = p V^(p-1)."""
        total = 0.0
        for k, c in enumerate(coefficients):
            power, factor = -2.0 * k / 3.0, 1.0
            for _ in range(order):
                factor *= power
                power -= 1.0
            total += c * factor * v0**power
        return total

    e_vv, e_vvv = derivative(2), derivative(3)
    b0 = v0 * e_vv
    if not b0 > 0:
        raise ItemFailure("the fitted bulk modulus is not positive")
    # B(V) = V E_VV and P = -E_V, so B1 = dB/dP = (E_VV + V E_VVV) / (-E_VV).
    b1 = -(e_vv + v0 * e_vvv) / e_vv
    poly = np.poly1d([c3, c2, c1, c0])
    return BirchMurnaghan(e0=float(poly(x0)), v0=float(v0), b0=float(b0), b1=float(b1))


def delta_gauge(model: BirchMurnaghan, reference: BirchMurnaghan) -> float:
    """RMS difference (eV/atom) of two EOS curves zeroed at their minima over ±6% of the reference V0."""
    volumes = np.linspace((1 - DELTA_RANGE) * reference.v0, (1 + DELTA_RANGE) * reference.v0, 2001)
    shifted_model = BirchMurnaghan(0.0, model.v0, model.b0, model.b1)
    shifted_reference = BirchMurnaghan(0.0, reference.v0, reference.b0, reference.b1)
    difference = shifted_model.energy(volumes) - shifted_reference.energy(volumes)
    return float(np.sqrt(np.trapezoid(difference**2, volumes) / (volumes[-1] - volumes[0])))


def wien2k_reference(element: str) -> BirchMurnaghan:
    data = _dcdft().data[element]
    return BirchMurnaghan(0.0, data["wien2k_volume"], data["wien2k_B"] * units.GPa, data["wien2k_Bp"])


def trivial_errors(elements: Sequence[str] | None = None) -> dict[str, float]:
    """MAE of predicting the mean WIEN2k V0 and B0 for every element: the EOS task's dummy values."""
    dcdft = _dcdft()
    names = list(elements or dcdft.names)
    v0 = np.array([dcdft.data[n]["wien2k_volume"] for n in names])
    b0 = np.array([dcdft.data[n]["wien2k_B"] for n in names])
    return {"v0_mae": float(np.mean(np.abs(v0 - v0.mean()))), "b0_mae": float(np.mean(np.abs(b0 - b0.mean())))}


@register_task
class EquationOfStateTask(StandaloneTask[EOSParams]):
    name = "eos_dcdft"
    category = Category.PROPERTY
    version = "1"
    Params = EOSParams
    scored_metrics = ("v0_mae", "b0_mae")
    # The dummy's energies do not depend on volume, so it has no EOS: its stand-in predicts the
    # mean WIEN2k V0 and B0 for every element.
    dummy_values = ComputedValues(trivial_errors)

    def run(self, model: LoadedModel, params: EOSParams, context: TaskContext) -> TaskOutput:
        dcdft = _dcdft()
        elements = params.elements or list(dcdft.names)
        timer = Timer()
        results = evaluate_items(
            model,
            [(element, dcdft[element]) for element in elements],
            lambda crystal: [crystal],
            lambda element, crystal: self._element(model, element, crystal, params, timer),
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)

    @staticmethod
    def _element(model: LoadedModel, element: str, crystal: Any, params: EOSParams, timer: Timer) -> dict[str, Any]:
        n_atoms = len(crystal)
        volumes, energies = [], []
        for factor in np.linspace(1 - params.volume_range, 1 + params.volume_range, params.points):
            atoms = crystal.copy()
            atoms.set_cell(crystal.cell * factor ** (1.0 / 3.0), scale_atoms=True)
            volumes.append(atoms.get_volume() / n_atoms)
            energies.append(timer.energy(model, atoms) / n_atoms)
        fit = fit_birch_murnaghan(volumes, energies)
        reference = wien2k_reference(element)
        return {
            "volumes": volumes,
            "energies": energies,
            "v0": fit.v0,
            "b0": fit.b0 / units.GPa,
            "b1": fit.b1,
            "v0_ref": reference.v0,
            "b0_ref": reference.b0 / units.GPa,
            "b1_ref": reference.b1,
            "delta": delta_gauge(fit, reference) * 1000.0,
        }

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: EOSParams) -> dict[str, Metric]:
        """MAE of V0, B0 and B1 and the mean and median Δ over the scored elements."""

        def mae(key: str) -> float | None:
            if not records:
                return None
            return float(np.mean([abs(r[key] - r[f"{key}_ref"]) for r in records]))

        deltas = [r["delta"] for r in records]
        return {
            "v0_mae": Metric(value=mae("v0"), unit="Å³/atom"),
            "b0_mae": Metric(value=mae("b0"), unit="GPa"),
            "b1_mae": Metric(value=mae("b1"), unit="1"),
            "delta_mean": Metric(value=float(np.mean(deltas)) if deltas else None, unit="meV/atom"),
            "delta_median": Metric(value=float(np.median(deltas)) if deltas else None, unit="meV/atom"),
        }
