"""Small helpers the test modules share: a loaded model card, a silent progress callback, EMT energies."""

from __future__ import annotations

from ase import Atoms
from ase.calculators.emt import EMT

from lambench_core.models import ModelCatalog, load_model
from lambench_core.models.loading import LoadedModel


def model(name: str) -> LoadedModel:
    return load_model(ModelCatalog.load().get(name), None, "cpu")


def quiet(done: int, total: int) -> None:
    pass


def emt_energy(atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())
