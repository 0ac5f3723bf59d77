"""A labelled frame: a structure and its reference labels, independent of the file format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass
class Frame:
    frame_id: str
    atoms: Atoms
    energy: float | None
    forces: np.ndarray | None
    virial: np.ndarray | None  # 3×3, eV (virial = −stress·volume)

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def periodic(self) -> bool:
        return bool(self.atoms.pbc.all()) and self.atoms.cell.volume > 0
