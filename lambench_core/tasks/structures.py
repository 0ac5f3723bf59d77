"""Geometry helpers of property tasks. (Preparing a structure for a model — element coverage, vacuum
boxes — lives in `lambench_core.models.preparation`.)"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def in_plane_area(atoms: Atoms) -> float:
    return float(np.linalg.norm(np.cross(atoms.cell[0], atoms.cell[1])))
