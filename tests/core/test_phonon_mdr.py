"""LAMBench MDR phonon task: fcc Cu with EMT against phonopy and ASE run directly in the test."""

from __future__ import annotations

import bz2
import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

from lambench_core.errors import InputError
from lambench_core.tasks.phonon_mdr import PhononMDRParams, PhononMDRTask
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

SUPERCELL = np.diag([2, 2, 2])
# pbe.csv's labels are the test's own phonopy values plus these offsets
OFFSETS = {"max_freq": 12.5, "entropy": -3.0, "free_energy": 0.75, "heat_capacity": -1.25}
COLUMNS = ["mp_id", "max_freq", "entropy", "free_energy", "heat_capacity"]


def phonopy_cell(atoms: Atoms) -> PhonopyAtoms:
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.array(atoms.cell),
        scaled_positions=atoms.get_scaled_positions(),
        masses=atoms.get_masses(),
    )


def start_cell() -> Atoms:
    return bulk("Cu", "fcc", a=3.7, cubic=True)  # conventional 4-atom cell, 3 % too large for EMT


def write_phonopy_file(path: Path) -> None:
    """A phonopy file with the unit cell and the two matrices (no forces), bz2-compressed."""
    phonon = Phonopy(phonopy_cell(start_cell()), supercell_matrix=SUPERCELL, primitive_matrix="F")
    plain = path.with_suffix("")
    phonon.save(plain)
    path.write_bytes(bz2.compress(plain.read_bytes()))
    plain.unlink()


def reference_values() -> dict[str, float]:
    """The same recipe written out with ASE and phonopy: relax, displace, EMT forces, phonopy."""
    atoms = start_cell()
    atoms.calc = EMT()
    atoms.set_constraint(FixSymmetry(atoms))
    FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-3, steps=500)
    atoms.set_constraint()
    phonon = Phonopy(phonopy_cell(atoms), supercell_matrix=SUPERCELL, primitive_matrix="F")
    phonon.generate_displacements(distance=0.01, is_diagonal=False)
    forces = []
    for cell in phonon.supercells_with_displacements:
        supercell = Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)
        supercell.calc = EMT()
        force = supercell.get_forces()
        forces.append(force - force.mean(axis=0))
    phonon.forces = np.array(forces)
    phonon.produce_force_constants(fc_calculator="traditional", show_drift=False)
    phonon.symmetrize_force_constants(show_drift=False)
    phonon.run_mesh(100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # phonopy's note that Γ's acoustic modes enter the sums
        phonon.run_thermal_properties(temperatures=[300.0])
    thermal = phonon.thermal_properties
    # The frequencies at the q-points commensurate with the supercell are the supercell's Γ modes:
    # diagonalise its mass-weighted force constants (eV/Å²/amu) and convert ω to THz.
    fc = phonon.force_constants
    masses = np.repeat(phonon.supercell.masses, 3)
    n = fc.shape[0]
    dynamical = fc.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) / np.sqrt(np.outer(masses, masses))
    omega2 = np.linalg.eigvalsh(dynamical).max() * units._e / (1e-20 * units._amu)  # s⁻²
    max_thz = np.sqrt(omega2) / (2 * np.pi) / 1e12
    return {
        "max_freq": max_thz * units._hplanck * 1e12 / units._k,
        "entropy": float(thermal.entropy[0]),
        "free_energy": float(thermal.free_energy[0]),
        "heat_capacity": float(thermal.heat_capacity[0]),
    }


def write_labels(path: Path, rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def reference() -> dict[str, float]:
    return reference_values()


def test_phonon_mdr_reproduces_phonopy_and_scores_offsets(tmp_path, reference):
    write_phonopy_file(tmp_path / "mp-30.yaml.bz2")
    labels = {key: reference[key] + OFFSETS[key] for key in OFFSETS}
    write_labels(
        tmp_path / "pbe.csv",
        [["mp-30", *(labels[c] for c in COLUMNS[1:])], ["mp-999", 500.0, 30.0, 1.0, 20.0]],  # mp-999: no file
    )
    output = PhononMDRTask().run(model("emt"), tmp_path, PhononMDRParams(), task_context())
    assert output.n_items == 2
    (record,) = output.records
    assert record["item"] == "mp-30" and record["n_atoms_primitive"] == 1 and record["relaxation_converged"]
    # the task's values are the independent ones (≈ 0 error) ...
    assert record["max_freq"] == pytest.approx(reference["max_freq"], rel=1e-5)
    for key in ("entropy", "free_energy", "heat_capacity"):
        assert record[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), key
    # ... and each MAE is exactly its label's offset
    for key, offset in OFFSETS.items():
        assert output.metrics[f"{key}_mae"].value == pytest.approx(abs(offset), abs=1e-4), key
    assert output.metrics["max_freq_mae"].unit == "K"
    assert output.metrics["free_energy_mae"].unit == "kJ/mol"
    assert_summarizes(PhononMDRTask, output, PhononMDRParams())
    # magnitudes of fcc Cu: top of the spectrum ≈ 7 THz; Dulong–Petit Cv ≈ 3R per atom at 300 K
    assert 250 < record["max_freq"] < 450
    assert 20 < record["heat_capacity"] < 3 * units._k * units._Nav
    (issue,) = output.issues
    assert issue.item == "mp-999" and issue.kind == "failed" and "no phonopy file" in issue.reason


def test_phonon_mdr_input_errors(tmp_path):
    write_phonopy_file(tmp_path / "mp-30.yaml.bz2")
    with pytest.raises(InputError, match="pbe.csv"):
        PhononMDRTask().run(model("emt"), tmp_path, PhononMDRParams(), task_context())
    write_labels(tmp_path / "pbe.csv", [["mp-1", 300.0, 30.0, 1.0, 20.0]])
    with pytest.raises(InputError, match=r"mp-30\.yaml\.bz2.*pbe\.csv"):
        PhononMDRTask().run(model("emt"), tmp_path, PhononMDRParams(), task_context())
    (tmp_path / "pbe.csv").write_text("mp_id,max_freq,entropy\nmp-30,300,30\n")
    with pytest.raises(InputError, match="free_energy, heat_capacity"):
        PhononMDRTask().run(model("emt"), tmp_path, PhononMDRParams(), task_context())
