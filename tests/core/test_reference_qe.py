"""The Quantum ESPRESSO plug-in runs pw.x for real on a 2-atom silicon cell (a few seconds in all).

The norm-conserving Si.pbe-rrkj.UPF at 12 Ry keeps each run well under a second; the numbers are
unconverged, which does not matter for the properties checked here (finiteness, force balance,
forces as the energy gradient, run-to-run reproducibility, errors).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from pydantic import ValidationError

from lambench_core.data.labelling.qe import (
    PW_MISSING,
    QuantumEspressoReference,
    QuantumEspressoSettings,
    SCFNotConvergedError,
    kpoint_grid,
    kpoint_offset,
)
from lambench_core.data.labelling.reference import ReferenceCodeMissingError, ReferenceLabels

LOW = {
    "pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"},
    "ecutwfc": 12.0,
    "ecutrho": 48.0,
    "kspacing": 1.0,  # 2×2×2 for the primitive cell
    # Tight, so that the finite-difference and repeat checks measure the code, not the SCF noise.
    "conv_thr_per_atom": 1e-12,
}


@pytest.fixture(scope="module")
def reference() -> QuantumEspressoReference:
    return QuantumEspressoReference()


@pytest.fixture(scope="module")
def settings() -> QuantumEspressoSettings:
    return QuantumEspressoSettings(**LOW)


@pytest.fixture(scope="module")
def silicon() -> Atoms:
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=3)  # break the symmetry so that forces are not zero by construction
    return atoms


@pytest.fixture(scope="module")
def base_labels(reference, settings, silicon, tmp_path_factory) -> ReferenceLabels:
    environment = dict(os.environ)
    labels = reference.label(silicon, settings, tmp_path_factory.mktemp("base"))
    assert dict(os.environ) == environment  # thread settings went to the child process only
    return labels


def _energy(reference, settings, atoms, workdir: Path) -> float:
    return reference.label(atoms, settings, workdir).energy


def test_two_atom_silicon_gives_finite_balanced_labels(base_labels):
    forces = np.array(base_labels.forces)
    assert np.isfinite(base_labels.energy) and -250.0 < base_labels.energy / 2 < -80.0  # eV/atom, PBE Si
    assert forces.shape == (2, 3) and np.isfinite(forces).all()
    assert np.abs(forces.sum(axis=0)).max() < 1e-4  # Newton's third law in a 2-atom cell
    assert np.abs(forces).max() > 0.1  # the rattle is visible
    assert base_labels.stress is not None and len(base_labels.stress) == 6 and np.isfinite(base_labels.stress).all()
    assert base_labels.wall_seconds > 0.0


def test_forces_are_minus_the_energy_gradient(reference, settings, silicon, base_labels, tmp_path):
    step = 0.01  # Å
    index, axis = 1, 2
    energies = []
    for sign in (+1, -1):
        displaced = silicon.copy()
        displaced.positions[index, axis] += sign * step
        energies.append(_energy(reference, settings, displaced, tmp_path / f"d{sign:+d}"))
    numeric = -(energies[0] - energies[1]) / (2 * step)
    assert base_labels.forces[index][axis] == pytest.approx(numeric, abs=5e-3)


def test_a_repeated_run_reproduces_the_energy(reference, settings, silicon, base_labels, tmp_path):
    again = reference.label(silicon, settings, tmp_path)
    assert again.energy == pytest.approx(base_labels.energy, abs=1e-6)
    assert np.abs(np.array(again.forces) - np.array(base_labels.forces)).max() < 1e-5


def test_unconverged_scf_is_an_error(reference, silicon, tmp_path):
    starved = QuantumEspressoSettings(**{**LOW, "electron_maxstep": 1})
    with pytest.raises(SCFNotConvergedError, match="did not converge"):
        reference.label(silicon, starved, tmp_path)


def test_missing_pseudopotential_names_element_and_path(reference, tmp_path):
    settings = QuantumEspressoSettings(**{**LOW, "pseudo_dir": str(tmp_path)})
    expected = str(tmp_path / "Si.pbe-rrkj.UPF")
    with pytest.raises(ReferenceCodeMissingError, match=r"\bSi\b") as caught:
        reference.check_available(settings)
    assert expected in str(caught.value)


def test_missing_pw_x_is_one_line_with_the_install_command(reference, settings, silicon, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for call in (lambda: reference.check_available(settings), lambda: reference.label(silicon, settings, tmp_path)):
        with pytest.raises(ReferenceCodeMissingError) as caught:
            call()
        assert str(caught.value) == PW_MISSING and "\n" not in PW_MISSING
        assert "apt-get install quantum-espresso" in PW_MISSING


@pytest.mark.parametrize(
    "change",
    [
        {"ecutwfc": -10.0},
        {"ecutrho": 20.0},  # below 4 × ecutwfc
        {"kspacing": 0.0},
        {"smearing": "mv"},  # without degauss
        {"degauss": 0.02},  # without smearing
        {"nspin": 2},  # without a starting magnetization
        {"threads": 0},
        {"pseudopotentials": {"Xx": "Si.pbe-rrkj.UPF"}},
        {"pseudopotentials": {"Si": "../Si.pbe-rrkj.UPF"}},
        {"ecut": 30.0},  # unknown key
    ],
)
def test_bad_settings_are_refused(change):
    with pytest.raises(ValidationError):
        QuantumEspressoSettings(**{**LOW, **change})


def test_kpoint_grid_follows_kspacing_and_skips_vacuum_directions():
    cubic = Atoms("Si", cell=[4.0, 4.0, 4.0], pbc=True)
    # |b| = 2π/4 Å⁻¹ = 1.5708; an exact multiple of kspacing must not round up.
    assert kpoint_grid(cubic, 2 * np.pi / 4 / 3) == (3, 3, 3)
    assert kpoint_grid(cubic, 0.3) == (6, 6, 6)
    slab = fcc111("Cu", (2, 2, 3), a=3.63, vacuum=6.0)
    assert tuple(slab.pbc) == (True, True, False)
    assert kpoint_grid(slab, 0.3) == (5, 5, 1)
    # A shifted grid is never shifted along vacuum (that would sample k_z = π/c, not Γ).
    assert kpoint_offset(slab, True) == (1, 1, 0) and kpoint_offset(slab, False) == (0, 0, 0)
    # A fully periodic vacuum-padded cell still gets few points along the long axis.
    slab.pbc = True
    assert kpoint_grid(slab, 0.3)[2] == 2


def test_provenance_records_version_functional_and_pseudopotential_checksums(reference, settings):
    record = reference.provenance(settings)
    assert record["code"] == "quantum-espresso"
    assert re.match(r"\d+\.\d+", record["version"])
    assert record["functional"] == "PBE"
    assert re.fullmatch(r"[0-9a-f]{64}", record["pseudopotentials"]["Si"]["sha256"])
    assert record["pseudopotentials"]["Si"]["file"] == "Si.pbe-rrkj.UPF"
    for key in ("ecutwfc_ry", "ecutrho_ry", "kspacing_per_angstrom", "kpoint_shift", "smearing", "degauss_ry", "nspin"):
        assert key in record
    assert record["conv_thr_per_atom_ry"] == 1e-12 and record["threads"] == 1
    assert isinstance(record["numerical_libraries"], dict)  # which BLAS/FFT pw.x resolved, where ldd exists
