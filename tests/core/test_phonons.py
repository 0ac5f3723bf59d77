"""The phonon task checked against phonopy run directly on the shipped files and on hand-made forces."""

from __future__ import annotations

import numpy as np
import phonopy
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.units import Bohr
from pydantic import ValidationError

from lambench_core.tasks.base import task_class
from lambench_core.tasks.phonons import SYSTEMS, PhononParams, PhononTask, data_directory
from lambench_core.tasks.suite import load_suite
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

SMALL_MESH = [4, 4, 4]


def direct_phonopy(system: str, produce_fc: bool = False) -> phonopy.Phonopy:
    """The shipped example through phonopy's own loader (no NAC)."""
    directory = data_directory() / system
    return phonopy.load(
        directory / "phonopy_disp.yaml", force_sets_filename=directory / "FORCE_SETS", primitive_matrix="F",
        is_nac=False, produce_fc=produce_fc, log_level=0,
    )


def gamma_and_x(phonon: phonopy.Phonopy) -> np.ndarray:
    phonon.run_qpoints([[0, 0, 0], [0.5, 0, 0.5]])
    return phonon.qpoints.frequencies


def test_dft_side_matches_phonopy_directly():
    output = PhononTask().run(model("dummy"), PhononParams(systems=["NaCl"], mesh=SMALL_MESH), task_context())
    (record,) = output.records
    # phonopy's default pipeline (symfc's symmetrization, which fails only on the Al example) vs the
    # task's traditional symmetrization: the same physics up to symmetrization noise.
    phonon = direct_phonopy("NaCl", produce_fc=True)
    reference = np.array(record["frequencies_ref"])
    qpoints = np.array(record["qpoints"])
    assert reference.shape == (32, 6)  # 2×2×2 conventional = 32 primitive cells of 2 atoms
    gamma = int(np.flatnonzero(np.all(np.abs(qpoints) < 1e-12, axis=1))[0])
    x_point = int(np.flatnonzero(np.all(np.isclose(np.abs(qpoints), [0.5, 0, 0.5]), axis=1))[0])
    direct = gamma_and_x(phonon)
    assert reference[gamma] == pytest.approx(direct[0], abs=2e-3)
    assert reference[x_point] == pytest.approx(direct[1], abs=2e-3)
    assert reference[gamma][3:] == pytest.approx([4.616] * 3, abs=0.01)  # NaCl TO at Γ without NAC
    phonon.run_mesh(SMALL_MESH, is_gamma_center=True)
    phonon.run_thermal_properties(temperatures=[300.0], exclude_gamma_acoustic=True)
    cv_per_atom = phonon.thermal_properties.heat_capacity[0] / 2
    assert record["cv_ref"] == pytest.approx(cv_per_atom, rel=1e-3)
    assert record["cv_ref"] < 3 * 8.314462618  # below Dulong–Petit


def emt_frequencies_by_hand() -> np.ndarray:
    """Al's supercells built from phonopy's own displacements, forces from EMT directly."""
    phonon = direct_phonopy("Al")
    forces = []
    for supercell in phonon.supercells_with_displacements:
        # The ABACUS example stores lengths in bohr; EMT wants Å and returns eV/Å, which phonopy keeps.
        atoms = Atoms(list(supercell.symbols), cell=supercell.cell * Bohr, scaled_positions=supercell.scaled_positions,
                      pbc=True)
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants(fc_calculator="traditional", show_drift=False)
    phonon.symmetrize_force_constants(show_drift=False)
    phonon.run_qpoints(phonopy.harmonic.dynmat_to_fc.get_commensurate_points(2 * np.array([[-1, 1, 1], [1, -1, 1],
                                                                                                [1, 1, -1]])))
    return phonon.qpoints.frequencies


def test_model_side_equals_an_independent_computation_and_elements_are_skipped():
    output = PhononTask().run(model("emt"), PhononParams(mesh=SMALL_MESH), task_context())
    assert {(i.item, i.kind) for i in output.issues} == {("NaCl", "skipped"), ("MgO", "skipped")}
    reasons = {i.item: i.reason for i in output.issues}
    assert reasons == {"NaCl": "model lacks element(s) Cl, Na", "MgO": "model lacks element(s) Mg"}
    (record,) = output.records
    assert record["item"] == "Al" and record["n_atoms_supercell"] == 32 and record["n_supercells"] == 1
    frequencies = np.array(record["frequencies"])
    expected = emt_frequencies_by_hand()
    # Same q-point order: both come from phonopy's commensurate-point generator.
    assert np.max(np.abs(frequencies - expected)) < 1e-6
    assert record["frequency_mae"] == pytest.approx(np.mean(np.abs(frequencies - np.array(record["frequencies_ref"]))))
    assert output.metrics["frequency_mae"].value == pytest.approx(record["frequency_mae"])
    assert output.metrics["max_frequency_mae"].value == pytest.approx(
        abs(frequencies.max() - np.max(record["frequencies_ref"]))
    )
    assert output.compute_seconds > 0 and output.n_scored == 1
    assert_summarizes(PhononTask, output, PhononParams(mesh=SMALL_MESH))


def test_dummy_model_records_zero_frequencies_and_scores_its_dummy_values():
    output = PhononTask().run(model("dummy"), PhononParams(), task_context())
    assert output.issues == [] and [r["item"] for r in output.records] == list(SYSTEMS)
    for record in output.records:
        assert np.all(np.array(record["frequencies"]) == 0.0)
        assert (record["cv"], record["entropy"], record["free_energy"]) == (0.0, 0.0, 0.0)
    dummy = PhononTask.dummy_values
    assert set(PhononTask.scored_metrics) <= set(dummy)
    for name, value in dummy.items():
        # 1e-9, not tighter: the reference frequencies come from a LAPACK diagonalization whose last
        # digits follow the CPU's OpenBLAS kernel (5e-11 apart between two CI machines).
        assert output.metrics[name].value == pytest.approx(value, rel=1e-9)
    assert dummy["frequency_mae"] == pytest.approx(
        np.mean([np.mean(np.abs(r["frequencies_ref"])) for r in output.records])
    )
    assert_summarizes(PhononTask, output, PhononParams())


@pytest.mark.parametrize(
    "bad", [{"systems": ["Si"]}, {"mesh": [8, 8]}, {"mesh": [0, 8, 8]}, {"temperature_K": -1.0}, {"nac": True}]
)
def test_bad_params_are_refused(bad):
    with pytest.raises(ValidationError):
        PhononParams(**bad)


def test_task_is_registered_as_a_property_task():
    assert task_class("phonons_phonopy") is PhononTask
    assert any(entry.task == "phonons_phonopy" for entry in load_suite().entries)
    for system in SYSTEMS:
        assert {"phonopy_disp.yaml", "FORCE_SETS"} <= {p.name for p in (data_directory() / system).iterdir()}
