"""Catalytic reaction barriers on DFT NEB paths: LAMBench's OC20NEB-OOD layout (single points, no NEB run).

Reads label.csv (columns traj, Ea and dE in eV) and one ASE trajectory <traj>.traj per row: the
converged DFT NEB path, initial to final state, each frame carrying its stored DFT energy. The
transition state is the frame of highest stored energy; the model is evaluated on the initial state,
that frame and the final state only: Ea = E_TS − E_IS and dE = E_FS − E_IS (eV), compared with the
labels of label.csv. The reaction type is the traj name up to its first "_" (desorption,
dissociation or transfer); any other type is a failed item.

Metrics (all scored): ea_mae and de_mae (eV), and per type the percentage of reactions whose
|Ea − Ea_label| exceeds `fail_threshold_eV` (0.1 eV): ea_fail_pct_desorption, ea_fail_pct_dissociation,
ea_fail_pct_transfer — 0 when none exceed it, None when no reaction of that type was scored.
Differences from LAMBench: the percentages are over the scored reactions of the type (LAMBench's
code aborts on a failing reaction, so there all rows are scored), a type with no failing reaction
reports 0 (LAMBench omits the key), values are unrounded, and a row whose trajectory file is
missing is an input error naming it (LAMBench crashes).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import DirectoryTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import ItemFailure, Timer, evaluate_items, mean_or_none
from lambench_core.tasks.lambench_files import as_float, read_csv_rows, read_trajectory, require_files

REACTION_TYPES = ("desorption", "dissociation", "transfer")


class NEBParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_threshold_eV: float = Field(
        default=0.1, gt=0.0, le=10.0, description="|ΔEa| above this counts against the per-type percentages"
    )


def reaction_type(traj: str) -> str:
    kind = traj.split("_")[0]
    if kind not in REACTION_TYPES:
        known = ", ".join(REACTION_TYPES)
        raise ItemFailure(f"unknown reaction type {kind!r} (the name's prefix must be one of {known})")
    return kind


def stored_energies(images: list[Atoms]) -> np.ndarray:
    energies = []
    for k, image in enumerate(images):
        try:
            energy = float(image.get_potential_energy())
        except Exception:
            raise ItemFailure(f"frame {k} has no stored DFT energy") from None
        if not np.isfinite(energy):
            raise ItemFailure(f"frame {k} has a non-finite stored energy")
        energies.append(energy)
    return np.array(energies)


def ea_failed(ea: float, ea_ref: float, params: NEBParams) -> bool:
    """Whether a reaction's barrier error counts against its type's percentage."""
    return bool(abs(ea - ea_ref) > params.fail_threshold_eV)


@register_task
class NEBTask(DirectoryTask[NEBParams]):
    name = "lambench_neb"
    category = Category.PROPERTY
    version = "1"
    Params = NEBParams
    scored_metrics = ("ea_mae", "de_mae", *(f"ea_fail_pct_{kind}" for kind in REACTION_TYPES))

    # LAMBench's published neb baselines (eV, eV, then percentages).
    dummy_values = {
        "ea_mae": 2.3595,
        "de_mae": 0.9498,
        "ea_fail_pct_desorption": 95.28,
        "ea_fail_pct_dissociation": 99.37,
        "ea_fail_pct_transfer": 95.43,
    }

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: NEBParams) -> dict[str, Metric]:
        """Ea and dE MAE over the scored reactions, and per reaction type the percentage whose
        |ΔEa| exceeds params.fail_threshold_eV (None for a type with no scored reaction)."""
        metrics = {
            "ea_mae": Metric(value=mean_or_none(abs(r["ea"] - r["ea_ref"]) for r in records), unit="eV"),
            "de_mae": Metric(value=mean_or_none(abs(r["de"] - r["de_ref"]) for r in records), unit="eV"),
        }
        for kind in REACTION_TYPES:
            failed = [ea_failed(r["ea"], r["ea_ref"], params) for r in records if r["type"] == kind]
            percent = 100.0 * sum(failed) / len(failed) if failed else None
            metrics[f"ea_fail_pct_{kind}"] = Metric(value=percent, unit="%")
        return metrics

    def run(self, model: LoadedModel, root: Path, params: NEBParams, context: TaskContext) -> TaskOutput:
        (label_path,) = require_files(root, ("label.csv",))
        rows = sorted(read_csv_rows(label_path, ("traj", "Ea", "dE")), key=lambda row: row["traj"])
        names = [row["traj"] for row in rows]
        if any(not name for name in names):
            raise InputError(label_path, "traj", "empty trajectory name")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InputError(label_path, "traj", f"listed more than once: {', '.join(duplicates[:5])}")
        missing = [f"{name}.traj" for name in names if not (root / f"{name}.traj").is_file()]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputError(root, None, f"missing file(s) named in label.csv: {', '.join(missing[:5])}{more}")
        timer = Timer()

        @functools.cache
        def path_images(name: str) -> list[Atoms]:
            try:
                return read_trajectory(root / f"{name}.traj")
            except InputError as exc:
                raise ItemFailure(str(exc)) from None

        def evaluate(name: str, row: dict[str, str]) -> dict[str, Any]:
            kind = reaction_type(name)
            ea_ref, de_ref = as_float(row["Ea"], "Ea"), as_float(row["dE"], "dE")
            images = path_images(name)
            if len(images) < 2:
                raise ItemFailure(f"{name}.traj has {len(images)} frame(s): a path needs at least two")
            ts = int(np.argmax(stored_energies(images)))
            e_is = timer.energy(model, images[0])
            e_ts = timer.energy(model, images[ts])
            e_fs = timer.energy(model, images[-1])
            ea = e_ts - e_is
            return {
                "type": kind,
                "ts_index": ts,
                "n_frames": len(images),
                "ea": ea,
                "ea_ref": ea_ref,
                "de": e_fs - e_is,
                "de_ref": de_ref,
                "ea_failed": ea_failed(ea, ea_ref, params),
            }

        results = evaluate_items(
            model, list(zip(names, rows, strict=True)), lambda row: path_images(row["traj"]), evaluate, context.progress
        )
        return self.output(params, results, compute_seconds=timer.seconds)
