"""Preparing a structure for a model card: element coverage, and vacuum boxes for periodic-only models.

It sits in `models` because what a structure must look like depends on the card alone; the tasks and
the feature extractors of `models.representation` prepare structures through it alike.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from lambench_core.models.card import ModelCard


def unsupported_elements(card: ModelCard, atoms: Atoms) -> list[str]:
    supported = card.supported_elements()
    if supported is None:
        return []
    return sorted(set(atoms.get_chemical_symbols()) - supported)


def in_vacuum_box(atoms: Atoms, padding: float) -> Atoms:
    """A periodic copy of a non-periodic structure with `padding` Å of vacuum on every side.

    Periodic images are then further apart than any model's cutoff, so the energy is the isolated
    structure's; the harness never reports stress for such a box.
    """
    boxed = atoms.copy()
    boxed.calc = None
    extent = np.ptp(boxed.positions, axis=0) if len(boxed) else np.zeros(3)
    boxed.set_cell(np.diag(extent + 2 * padding))
    boxed.center()
    boxed.pbc = True
    return boxed


def prepare_for_model(card: ModelCard, atoms: Atoms, padding: float) -> Atoms:
    prepared = atoms.copy()
    prepared.calc = None
    periodic = bool(prepared.pbc.all()) and prepared.cell.volume > 0
    if not periodic and prepared.pbc.any() and prepared.cell.rank == 3:
        # A slab or wire stored with pbc like (T, T, F): fully periodic with `padding` Å of vacuum on
        # both sides of each open direction, so no model sees a periodic image across it.
        open_axes = tuple(int(axis) for axis in np.flatnonzero(~prepared.pbc))
        prepared.center(vacuum=padding, axis=open_axes)
        prepared.pbc = True
        return prepared
    if card.capabilities.requires_pbc and not periodic:
        return in_vacuum_box(prepared, padding)
    if not periodic:
        # A cell-less structure goes in as a molecule: no cell, no PBC.
        prepared.pbc = False
    return prepared
