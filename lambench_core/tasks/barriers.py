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

from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import ItemIssue, Metric
from lambench_core.tasks.base import ProgressCallback, Task, TaskCategory, TaskOutput, register_task
from lambench_core.tasks.evaluation import Timer, issue_for, skip_reason

KCAL_PER_MOL = units.kcal / units.mol


class DBH24Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reactions: list[str] | None = Field(default=None, description="A subset of dbh24_r1 … dbh24_r12")


@register_task
class DBH24Task(Task):
    name = "dbh24"
    category = TaskCategory.PROPERTY
    version = "1"
    Params = DBH24Params
    scored_metrics = ("barrier_mae",)

    @classmethod
    def dummy_values(cls) -> dict[str, float]:
        """The dummy model's error: reactants, transition state and products share a composition,
        so its barriers are exactly 0."""
        barriers = [
            abs(getter(spec["tst"]))
            for spec in dbh24_data.dbh24_reaction_list.values()
            for getter in (dbh24_data.get_dbh24_Vf, dbh24_data.get_dbh24_Vb)
        ]
        return {"barrier_mae": float(np.mean(barriers))}

    def run(self, model: LoadedModel, frames: list, params: BaseModel, progress: ProgressCallback) -> TaskOutput:
        assert isinstance(params, DBH24Params)
        reactions = params.reactions or sorted(dbh24_data.dbh24_reaction_list, key=lambda r: int(r.split("_r")[1]))
        timer = Timer()
        records: list[dict[str, Any]] = []
        issues: list[ItemIssue] = []
        for done, reaction in enumerate(reactions, start=1):
            spec: dict[str, Any] = dbh24_data.dbh24_reaction_list[reaction]
            species = [spec["tst"], *spec["initial"], *spec["final"]]
            structures = {name: dbh24_data.create_dbh24_system(name) for name in species}
            reason = skip_reason(model, list(structures.values()))
            if reason:
                issues.append(ItemIssue(item=reaction, kind="skipped", reason=reason))
            else:
                try:
                    energies = {name: timer.energy(model, atoms) for name, atoms in structures.items()}
                    ts = energies[spec["tst"]]
                    records.append(
                        {
                            "item": reaction,
                            "description": spec["description"],
                            "vf": (ts - sum(energies[n] for n in spec["initial"])) / KCAL_PER_MOL,
                            "vb": (ts - sum(energies[n] for n in spec["final"])) / KCAL_PER_MOL,
                            "vf_ref": dbh24_data.get_dbh24_Vf(spec["tst"]),
                            "vb_ref": dbh24_data.get_dbh24_Vb(spec["tst"]),
                        }
                    )
                except Exception as exc:
                    issues.append(issue_for(reaction, exc))
            progress(done, len(reactions))
        errors = [abs(r[k] - r[f"{k}_ref"]) for r in records for k in ("vf", "vb")]
        return TaskOutput(
            metrics={"barrier_mae": Metric(value=float(np.mean(errors)) if errors else None, unit="kcal/mol")},
            n_items=len(reactions),
            records=records,
            issues=issues,
            compute_seconds=timer.seconds,
        )
