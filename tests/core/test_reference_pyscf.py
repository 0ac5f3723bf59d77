"""The PySCF reference plug-in, with real (small-basis) calculations."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from pydantic import ValidationError

pytest.importorskip("pyscf")

from lambench_core.data.labelling import pyscf_reference  # noqa: E402
from lambench_core.data.labelling.pyscf_reference import PySCFReference, PySCFSettings  # noqa: E402
from lambench_core.data.labelling.reference import (  # noqa: E402
    _REFERENCES,
    ReferenceCalculator,
    ReferenceCodeMissingError,
)
from lambench_core.errors import InputError  # noqa: E402

# Small enough for a 2-core CI machine, large enough that forces are not trivially symmetric.
SMALL = PySCFSettings(basis="def2-SVP")


def water() -> Atoms:
    # Off-equilibrium and without symmetry, so every force component is non-zero.
    atoms = molecule("H2O")
    atoms.positions += np.array([[0.01, -0.02, 0.03], [0.04, 0.05, -0.02], [-0.03, 0.02, 0.01]])
    return atoms


@pytest.fixture(scope="module")
def reference() -> PySCFReference:
    return PySCFReference()


@pytest.fixture(scope="module")
def water_labels(reference: PySCFReference, tmp_path_factory: pytest.TempPathFactory):
    return reference.label(water(), SMALL, tmp_path_factory.mktemp("water"))


def test_registered_under_its_code_name() -> None:
    assert _REFERENCES["pyscf"] is PySCFReference
    assert issubclass(PySCFReference, ReferenceCalculator)
    assert PySCFReference.Settings is PySCFSettings


def test_water_labels_are_physical(water_labels) -> None:
    forces = np.asarray(water_labels.forces)
    assert forces.shape == (3, 3)
    assert water_labels.stress is None
    # PBE/def2-SVP water is about -76.3 Hartree.
    assert -2080.0 < water_labels.energy < -2070.0
    assert np.abs(forces).max() > 0.05
    # No external field: the net force vanishes up to the quadrature's translational error.
    assert np.abs(forces.sum(axis=0)).max() < 1e-3


@pytest.mark.parametrize(("atom", "axis"), [(1, 1), (0, 2)])
def test_forces_are_minus_the_energy_gradient(
    reference: PySCFReference, water_labels, tmp_path: Path, atom: int, axis: int
) -> None:
    def central_difference(step: float) -> float:
        energies = []
        for sign in (+1, -1):
            displaced = water()
            displaced.positions[atom, axis] += sign * step
            energies.append(reference.label(displaced, SMALL, tmp_path).energy)
        return -(energies[0] - energies[1]) / (2 * step)

    # A 0.005 Å central difference alone is off by ~4e-4 eV/Å on an O-H stretch (its h² error, the
    # third derivative of the bond energy), so Richardson-extrapolate it with the 0.0025 Å one.
    coarse, fine = central_difference(0.005), central_difference(0.0025)
    extrapolated = (4 * fine - coarse) / 3
    assert water_labels.forces[atom][axis] == pytest.approx(extrapolated, abs=1e-4)
    assert abs(water_labels.forces[atom][axis]) > 0.5  # a component that actually tests something


def test_repeat_run_gives_the_same_energy(reference: PySCFReference, water_labels, tmp_path: Path) -> None:
    again = reference.label(water(), SMALL, tmp_path)
    assert again.energy == pytest.approx(water_labels.energy, abs=1e-9)
    np.testing.assert_allclose(again.forces, water_labels.forces, atol=1e-9)


def test_doublet_runs_unrestricted(reference: PySCFReference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyscf.dft.uks import UKS

    methods = []
    run = pyscf_reference.run_scf_and_gradient

    def spy(mf, formula):
        methods.append(mf)
        return run(mf, formula)

    monkeypatch.setattr(pyscf_reference, "run_scf_and_gradient", spy)
    radical = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.98]])
    radical.info["spin"] = 2
    labels = reference.label(radical, SMALL, tmp_path)
    assert isinstance(methods[-1], UKS)
    forces = np.asarray(labels.forces)
    assert np.abs(forces.sum(axis=0)).max() < 1e-3
    assert forces[1, 2] == pytest.approx(-forces[0, 2])
    # 9 electrons cannot be a singlet: refused before PySCF sees it.
    radical.info["spin"] = 1
    with pytest.raises(InputError, match="multiplicity 1"):
        reference.label(radical, SMALL, tmp_path)
    reference.label(water(), SMALL, tmp_path)
    assert not isinstance(methods[-1], UKS)


def test_periodic_input_is_refused(reference: PySCFReference, tmp_path: Path) -> None:
    crystal = molecule("H2O", cell=[5.0, 5.0, 5.0], pbc=True)
    with pytest.raises(InputError, match="isolated molecules only"):
        reference.label(crystal, SMALL, tmp_path)


@pytest.mark.parametrize(
    ("xc", "message"),
    [("NOT-A-FUNCTIONAL", "unknown to PySCF"), ("wB97X-D", "not implemented"), ("B3LYP-D3BJ", "dispersion")],
)
def test_unusable_functional_is_one_clear_error(reference: PySCFReference, xc: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        reference.check_available(PySCFSettings(xc=xc))
    assert caught.value.field == "xc"
    assert "\n" not in str(caught.value)


def test_hybrid_gets_an_exchange_fitting_basis(reference: PySCFReference) -> None:
    assert reference.provenance(PySCFSettings())["auxbasis"] == "def2-universal-jfit"
    record = reference.provenance(PySCFSettings(xc="wB97X"))
    assert record["auxbasis"] == "def2-universal-jkfit"
    assert record["range_separation_omega_per_bohr"] == pytest.approx(0.3)
    assert record["exact_exchange_long_range"] == 1.0
    assert "exchange" in record["density_fitted_terms"]
    with pytest.raises(InputError, match="fits Coulomb only"):
        reference.provenance(PySCFSettings(xc="PBE0", auxbasis="def2-universal-jfit"))
    assert reference.provenance(PySCFSettings(xc="PBE0", density_fitting=False))["auxbasis"] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"basis_set": "def2-SVP"},
        {"grids_level": 12},
        {"conv_tol": 0.0},
        {"threads": 0},
        {"max_cycle": 0},
        {"xc": ""},
        {"density_fitting": False, "auxbasis": "def2-universal-jkfit"},
    ],
)
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        PySCFSettings(**bad)


def test_thread_count_is_restored(reference: PySCFReference, tmp_path: Path) -> None:
    from pyscf import lib

    before = lib.num_threads()
    reference.label(
        Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), PySCFSettings(basis="sto-3g", threads=2), tmp_path
    )
    assert lib.num_threads() == before


def test_missing_pyscf_is_one_clear_error(reference: PySCFReference, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyscf", None)
    with pytest.raises(ReferenceCodeMissingError, match="pip install pyscf"):
        reference.check_available(PySCFSettings())
