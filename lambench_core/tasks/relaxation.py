"""Relaxations for property tasks: one place that decides what a failed or exploding relaxation is.

A relaxation that raises, predicts non-finite or absurd forces, or collapses or blows up the cell
raises ItemFailure: the item counts against the task's success rate and the task goes on.
Hitting the step limit is not a failure (the last structure is used); the outcome says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.models.loading import LoadedModel
from lambench_core.tasks.evaluation import ItemFailure, Timer

# |F| above this (eV/Å) is no physical structure: the model has blown the geometry apart.
EXPLODING_FORCE = 1.0e4
# A relaxed cell more than this factor away from the starting volume (either way) has collapsed
# or exploded; no plausible relaxation changes the volume threefold.
VOLUME_FACTOR_LIMIT = 3.0

class RelaxationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fmax: float = Field(default=1e-3, gt=0.0, le=1.0, description="eV/Å (and the filter's stress equivalent)")
    steps: int = Field(default=500, ge=0, le=100_000)
    optimizer: Literal["FIRE", "BFGS"] = "FIRE"
    relax_cell: bool = True
    fix_symmetry: bool = False
    pressure_GPa: float = Field(default=0.0, ge=-100.0, le=1000.0, description="Hydrostatic pressure on the cell")


@dataclass
class Relaxed:
    atoms: Atoms
    converged: bool
    steps: int


def _check_physical(atoms: Atoms, start_volume: float | None) -> None:
    forces = atoms.get_forces()
    if not np.all(np.isfinite(forces)) or not np.isfinite(atoms.get_potential_energy()):
        raise ItemFailure("non-finite energy or forces during relaxation")
    if np.max(np.linalg.norm(forces, axis=1)) > EXPLODING_FORCE:
        raise ItemFailure(f"relaxation exploded: |F| > {EXPLODING_FORCE:g} eV/Å")
    if start_volume is not None:
        ratio = atoms.get_volume() / start_volume
        if not 1.0 / VOLUME_FACTOR_LIMIT < ratio < VOLUME_FACTOR_LIMIT:
            raise ItemFailure(f"relaxation changed the volume {ratio:.3g}-fold")


def relax(model: LoadedModel, atoms: Atoms, params: RelaxationParams, timer: Timer) -> Relaxed:
    """Relax a periodic structure with the model; the returned copy has no calculator attached."""
    # ASE's optimizers, filters and symmetry constraint pull in scipy: imported where a relaxation
    # runs, not at the start of every step that imports the task modules.
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    optimizers = {"FIRE": FIRE, "BFGS": BFGS}
    work = atoms.copy()
    work.calc = model.calculator
    if params.fix_symmetry:
        work.set_constraint(FixSymmetry(work))
    start_volume = work.get_volume() if params.relax_cell else None
    target = (
        FrechetCellFilter(work, scalar_pressure=params.pressure_GPa * units.GPa) if params.relax_cell else work
    )
    optimizer = optimizers[params.optimizer](target, logfile=None)
    start = time.perf_counter()
    try:
        converged = bool(optimizer.run(fmax=params.fmax, steps=params.steps))
        _check_physical(work, start_volume)
    except ItemFailure:
        raise
    except Exception as exc:
        raise ItemFailure(f"relaxation failed: {type(exc).__name__}: {exc}") from exc
    finally:
        timer.seconds += time.perf_counter() - start
    relaxed = work.copy()
    relaxed.set_constraint()
    relaxed.calc = None
    return Relaxed(atoms=relaxed, converged=converged, steps=int(optimizer.nsteps))
