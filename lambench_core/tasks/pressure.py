"""Volumes under pressure: LAMBench's high-pressure set (Loew et al., J. Phys. Mater. 9, 015010 (2026)).

Reads the data directory's ASE trajectories P025.traj, P050.traj, … P150.traj (file P<NNN>.traj
holds DFT structures relaxed at NNN GPa; LAMBench ships these six, 45 structures each). Each DFT
structure is the model's starting point and also its label: the model relaxes it under the file's
hydrostatic pressure (cell and positions, FrechetCellFilter with scalar_pressure, FIRE, fmax
1e-3 eV/Å, 500 steps, no symmetry constraint; the step limit is not a failure) and its volume per
atom is compared with the DFT one. Metrics, pooled over all pressures: volume_mae (scored) and
volume_rmse, in Å³/atom; the dummy value is LAMBench's 2.505 Å³/atom (MAE of predicting the mean
DFT volume). A structure whose relaxation fails or explodes is a failed item.

How it differs from LAMBench: its success rate is (successes − failures) / successes, a quirk;
here the harness's scored ÷ attempted is used (LAMBench does not use it in its score either). The
pressure is P · units.GPa (1 GPa = 6.2415091e-3 eV/Å³) where LAMBench rounds the factor to
6.2415e-3. An exploding relaxation (|F| > 10⁴ eV/Å, a threefold volume change, non-finite forces)
fails the item, where LAMBench would compare whatever volume came out. Any subset of the six
files is accepted; a directory with none of them is an input error.
"""

from __future__ import annotations

import re
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
from lambench_core.tasks.elasticity import NO_STRESS_REASON, relaxation_params
from lambench_core.tasks.evaluation import Timer, evaluate_items, mean_or_none
from lambench_core.tasks.relaxation import relax

PRESSURE_FILE = re.compile(r"^P(\d{3})\.traj$")
LAMBENCH_FILES = ("P025.traj", "P050.traj", "P075.traj", "P100.traj", "P125.traj", "P150.traj")


class PressureParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fmax: float = Field(default=1e-3, gt=0.0, le=1.0, description="eV/Å (and the cell filter's stress equivalent)")
    steps: int = Field(default=500, ge=0, le=100_000)


def pressure_files(root: Path) -> list[tuple[float, Path]]:
    """(pressure in GPa, file) of every P<NNN>.traj in the directory, by pressure."""
    if not root.is_dir():
        raise InputError(root, None, "not a directory (LAMBench's pressure set is a folder of P<NNN>.traj files)")
    found = sorted(
        (float(match.group(1)), path)
        for path in root.iterdir()
        if path.is_file() and (match := PRESSURE_FILE.match(path.name))
    )
    if not found:
        raise InputError(root / LAMBENCH_FILES[0], None, f"missing: no P<NNN>.traj file ({', '.join(LAMBENCH_FILES)})")
    return found


def read_structures(root: Path) -> list[tuple[str, tuple[float, Atoms]]]:
    """(item name, (pressure GPa, DFT structure)) of every frame, read before any model call."""
    from ase.io import read  # ase.io pulls in scipy: imported where it is used, not at every step's start

    items: list[tuple[str, tuple[float, Atoms]]] = []
    for pressure, path in pressure_files(root):
        try:
            frames = read(path, index=":", format="traj")
        except Exception as exc:  # ASE raises many kinds for a damaged trajectory
            raise InputError(path, None, f"not a readable ASE trajectory: {type(exc).__name__}: {exc}") from None
        if not frames:
            raise InputError(path, None, "holds no structures")
        for index, atoms in enumerate(frames):
            if not (atoms.pbc.all() and atoms.cell.volume > 0):
                raise InputError(path, f"frame {index}", "is not a periodic structure with a cell")
            atoms = atoms.copy()
            atoms.calc = None
            items.append((f"{path.stem}:{index}:{atoms.get_chemical_formula()}", (pressure, atoms)))
    return items


@register_task
class LambenchPressureTask(DirectoryTask[PressureParams]):
    name = "lambench_pressure"
    category = Category.PROPERTY
    version = "1"
    Params = PressureParams
    scored_metrics = ("volume_mae",)
    # LAMBench's normalisation constant (Å³/atom): the MAE of the mean DFT volume over 270 structures.
    dummy_values = {"volume_mae": 2.505}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: PressureParams) -> dict[str, Metric]:
        """MAE and RMSE of the relaxed volume per atom over the scored structures."""
        errors = [r["volume"] - r["volume_ref"] for r in records]
        rmse = float(np.sqrt(np.mean(np.square(errors)))) if errors else None
        return {
            "volume_mae": Metric(value=mean_or_none(abs(e) for e in errors), unit="Å³/atom"),
            "volume_rmse": Metric(value=rmse, unit="Å³/atom"),
        }

    def run(self, model: LoadedModel, root: Path, params: PressureParams, context: TaskContext) -> TaskOutput:
        items = read_structures(root)
        if not model.card.capabilities.stress:
            return self.all_skipped(params, [name for name, _ in items], NO_STRESS_REASON)
        timer = Timer()

        def evaluate(name: str, item: tuple[float, Atoms]) -> dict[str, Any]:
            pressure, atoms = item
            relaxed = relax(model, atoms, relaxation_params(params.fmax, params.steps, pressure), timer)
            n_atoms = len(atoms)
            return {
                "pressure_GPa": pressure,
                "formula": atoms.get_chemical_formula(),
                "n_atoms": n_atoms,
                "volume": relaxed.atoms.get_volume() / n_atoms,
                "volume_ref": atoms.get_volume() / n_atoms,
                "relax_converged": relaxed.converged,
                "relax_steps": relaxed.steps,
            }

        results = evaluate_items(model, items, lambda item: [item[1]], evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)
