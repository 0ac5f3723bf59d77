"""Non-covalent interactions: S22 and S22x5 interaction energies against CCSD(T) (ASE's data).

E_int = E(dimer) − E(monomer A) − E(monomer B), monomers cut from the dimer geometry. S22 uses the
equilibrium dimers and Jurečka's CCSD(T)/CBS values; S22x5 the dissociation curves at 0.9, 1.0,
1.2, 1.5 and 2.0 × the equilibrium separation with the offset-corrected reference energies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms, units
from ase.data import s22 as s22_data
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import StandaloneTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import Timer, evaluate_items

KCAL_PER_MOL = units.kcal / units.mol
DISTANCES = ("0.9", "1.0", "1.2", "1.5", "2.0")


class S22Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systems: list[str] | None = Field(default=None, description="A subset of the 22 S22 names")
    curves: bool = Field(default=True, description="Also score the S22x5 dissociation curves")


def interaction_energy(model: LoadedModel, dimer: Atoms, split: int, timer: Timer) -> float:
    """E_int in eV of a dimer whose first `split` atoms are monomer A."""
    return timer.energy(model, dimer) - timer.energy(model, dimer[:split]) - timer.energy(model, dimer[split:])


def monomer_split(name: str) -> int:
    """The number of atoms of monomer A (the dimer's first atoms)."""
    return int(s22_data.get_number_of_dimer_atoms(name)[0])


def dummy_errors() -> dict[str, float]:
    """The dummy model's errors: its energies are sums over atoms, so every E_int is exactly 0."""
    reference = [abs(s22_data.get_interaction_energy_cc(n)) for n in s22_data.s22]
    curves = [abs(s22_data.get_interaction_energy_s22x5(f"{n}_{d}")) for n in s22_data.s22 for d in DISTANCES]
    return {"s22_mae": float(np.mean(reference)) / KCAL_PER_MOL, "s22x5_mae": float(np.mean(curves)) / KCAL_PER_MOL}


@register_task
class S22Task(StandaloneTask[S22Params]):
    name = "s22"
    category = Category.PROPERTY
    version = "1"
    Params = S22Params
    scored_metrics = ("s22_mae", "s22x5_mae")
    dummy_values = dummy_errors()

    def run(self, model: LoadedModel, params: S22Params, context: TaskContext) -> TaskOutput:
        systems = params.systems or list(s22_data.s22)
        timer = Timer()
        results = evaluate_items(
            model,
            [(name, name) for name in systems],
            lambda name: [s22_data.create_s22_system(name)],
            lambda name, _: self._system(model, name, monomer_split(name), params.curves, timer),
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)

    @staticmethod
    def _system(model: LoadedModel, name: str, split: int, curves: bool, timer: Timer) -> dict[str, Any]:
        record: dict[str, Any] = {
            "e_int": interaction_energy(model, s22_data.create_s22_system(name), split, timer) / KCAL_PER_MOL,
            "e_int_ref": s22_data.get_interaction_energy_cc(name) / KCAL_PER_MOL,
        }
        if curves:
            record["curve"] = {
                distance: interaction_energy(model, s22_data.create_s22_system(f"{name}_{distance}"), split, timer)
                / KCAL_PER_MOL
                for distance in DISTANCES
            }
            record["curve_ref"] = {
                distance: s22_data.get_interaction_energy_s22x5(f"{name}_{distance}") / KCAL_PER_MOL
                for distance in DISTANCES
            }
        return record

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: S22Params) -> dict[str, Metric]:
        """s22_mae over the scored systems; with params.curves (or records carrying curves) also the
        S22x5 MAE, overall and per distance, None when no system was scored."""
        metrics = {
            "s22_mae": Metric(
                value=float(np.mean([abs(r["e_int"] - r["e_int_ref"]) for r in records])) if records else None,
                unit="kcal/mol",
            )
        }
        curves = [r for r in records if "curve" in r]
        if curves or params.curves:
            errors = {d: [abs(r["curve"][d] - r["curve_ref"][d]) for r in curves] for d in DISTANCES}
            every = [error for values in errors.values() for error in values]
            metrics["s22x5_mae"] = Metric(value=float(np.mean(every)) if every else None, unit="kcal/mol")
            for distance, values in errors.items():
                metrics[f"s22x5_mae_{distance}"] = Metric(
                    value=float(np.mean(values)) if values else None, unit="kcal/mol"
                )
        return metrics
