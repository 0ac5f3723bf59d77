"""Reaction barriers: DBH24 forward and backward barrier heights (Zheng, Zhao and Truhlar 2007).

V_f = E(TS) − Σ E(reactants), V_b = E(TS) − Σ E(products), in kcal/mol, against ASE's reference
values. Open-shell species are evaluated as the model sees them (no spin input).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import units
from ase.data import dbh24 as dbh24_data
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import StandaloneTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import Timer, evaluate_items, mean_or_none

KCAL_PER_MOL = units.kcal / units.mol


class DBH24Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reactions: list[str] | None = Field(default=None, description="A subset of dbh24_r1 … dbh24_r12")


def dummy_errors() -> dict[str, float]:
    """The dummy model's error: reactants, transition state and products share a composition, so its
    barriers are exactly 0, and its MAE is the mean |barrier| of the reference."""
    barriers = [
        abs(getter(spec["tst"]))
        for spec in dbh24_data.dbh24_reaction_list.values()
        for getter in (dbh24_data.get_dbh24_Vf, dbh24_data.get_dbh24_Vb)
    ]
    return {"barrier_mae": float(np.mean(barriers))}


@register_task
class DBH24Task(StandaloneTask[DBH24Params]):
    name = "dbh24"
    category = Category.PROPERTY
    version = "1"
    Params = DBH24Params
    scored_metrics = ("barrier_mae",)
    dummy_values = dummy_errors()

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: DBH24Params) -> dict[str, Metric]:
        """MAE over the forward and backward barriers of the scored reactions."""
        errors = [abs(r[k] - r[f"{k}_ref"]) for r in records for k in ("vf", "vb")]
        return {"barrier_mae": Metric(value=mean_or_none(errors), unit="kcal/mol")}

    def run(self, model: LoadedModel, params: DBH24Params, context: TaskContext) -> TaskOutput:
        reactions = params.reactions or sorted(dbh24_data.dbh24_reaction_list, key=lambda r: int(r.split("_r")[1]))
        timer = Timer()

        def species(spec: dict[str, Any]) -> list[str]:
            return [spec["tst"], *spec["initial"], *spec["final"]]

        def evaluate(reaction: str, spec: dict[str, Any]) -> dict[str, Any]:
            energies = {name: timer.energy(model, dbh24_data.create_dbh24_system(name)) for name in species(spec)}
            ts = energies[spec["tst"]]
            return {
                "description": spec["description"],
                "vf": (ts - sum(energies[n] for n in spec["initial"])) / KCAL_PER_MOL,
                "vb": (ts - sum(energies[n] for n in spec["final"])) / KCAL_PER_MOL,
                "vf_ref": dbh24_data.get_dbh24_Vf(spec["tst"]),
                "vb_ref": dbh24_data.get_dbh24_Vb(spec["tst"]),
            }

        results = evaluate_items(
            model,
            [(reaction, dbh24_data.dbh24_reaction_list[reaction]) for reaction in reactions],
            lambda spec: [dbh24_data.create_dbh24_system(name) for name in species(spec)],
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)
