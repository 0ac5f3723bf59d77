"""Elastic constants checked against pymatgen's fit and VRH, ASE's EOS, and hand-chosen tensors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.io import write
from ase.optimize import BFGS
from pymatgen.analysis.elasticity import DeformedStructureSet, ElasticTensor, Strain, Stress
from pymatgen.io.ase import AseAtomsAdaptor

from lambench_core.data.labelling.generators import apply_strain, voigt_strain_matrix
from lambench_core.data.labelling.recipe import SETS_DIR, generate_frames, load_recipe
from lambench_core.data.loaders import read_extxyz
from lambench_core.errors import InputError
from lambench_core.tasks.base import task_class
from lambench_core.tasks.elasticity import (
    ElasticCubicParams,
    ElasticCubicTask,
    LambenchElasticParams,
    LambenchElasticTask,
    StrainedStress,
    cubic_constants,
    fit_stiffness,
    vrh_moduli,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

GPA = units.GPa
STRAINS = [(c, m) for c in (0, 1, 2) for m in (-0.01, -0.005, 0.005, 0.01)] + [
    (c, m) for c in (3, 4, 5) for m in (-0.04, -0.02, 0.02, 0.04)
]


def emt_relaxed(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-6, steps=200)
    atoms.calc = None
    return atoms


def emt_stress(atoms) -> np.ndarray:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_stress(voigt=False)


def test_fit_and_vrh_match_pymatgen_on_emt_copper():
    cu = emt_relaxed(bulk("Cu", "fcc", a=3.6))
    eq = emt_stress(cu)
    samples = [StrainedStress(c, m, emt_stress(apply_strain(cu, voigt_strain_matrix(c, m)))) for c, m in STRAINS]
    ours = fit_stiffness(eq, samples)
    # pymatgen: the same strains as tensors (shear ε_ij = γ/2; its Voigt form doubles it back) and
    # the same stresses; its matrix is C[strain, stress], the transpose of ours.
    theirs = ElasticTensor.from_independent_strains(
        [Strain(voigt_strain_matrix(c, m)) for c, m in STRAINS],
        [Stress(s.stress) for s in samples],
        eq_stress=Stress(eq),
    )
    np.testing.assert_allclose(ours, theirs.voigt.T / GPA, atol=1e-6)
    assert ours[0, 0] > ours[0, 1] > 0 and ours[3, 3] > 0
    moduli = vrh_moduli(ours)
    reference = ElasticTensor.from_voigt((ours + ours.T) / 2)
    assert moduli.k_vrh == pytest.approx(reference.k_vrh, rel=1e-9)
    assert moduli.g_vrh == pytest.approx(reference.g_vrh, rel=1e-9)
    assert (moduli.k_voigt, moduli.k_reuss) == pytest.approx((reference.k_voigt, reference.k_reuss), rel=1e-9)
    assert (moduli.g_voigt, moduli.g_reuss) == pytest.approx((reference.g_voigt, reference.g_reuss), rel=1e-9)


def test_vrh_of_a_low_symmetry_tensor_matches_pymatgen():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(6, 6))
    stiffness = 40.0 * (a @ a.T) + 60.0 * np.eye(6)  # symmetric positive definite, triclinic
    moduli = vrh_moduli(stiffness)
    reference = ElasticTensor.from_voigt(stiffness)
    assert (moduli.k_voigt, moduli.k_reuss, moduli.g_voigt, moduli.g_reuss) == pytest.approx(
        (reference.k_voigt, reference.k_reuss, reference.g_voigt, reference.g_reuss), rel=1e-10
    )
    assert moduli.k_reuss < moduli.k_voigt and moduli.g_reuss < moduli.g_voigt


def test_cubic_constants_and_the_zero_tensor():
    stiffness = np.full((6, 6), np.nan)
    stiffness[:, 0] = [170.0, 119.0, 121.0, 0.0, 0.0, 0.0]
    stiffness[:, 3] = [0.0, 0.0, 0.0, 80.0, 0.0, 0.0]
    constants = cubic_constants(stiffness)
    assert (constants.c11, constants.c12, constants.c44) == (170.0, 120.0, 80.0)
    moduli = vrh_moduli(constants.tensor())
    # Closed forms for cubic crystals: K_V = K_R = (C11 + 2 C12)/3, G_V = (C11 − C12 + 3 C44)/5,
    # G_R = 5 (C11 − C12) C44 / (4 C44 + 3 (C11 − C12)).
    assert moduli.k_vrh == pytest.approx(410.0 / 3.0)
    assert moduli.g_vrh == pytest.approx((290.0 / 5.0 + 5 * 50.0 * 80.0 / (320.0 + 150.0)) / 2)
    assert vrh_moduli(np.zeros((6, 6))).k_vrh == 0.0
    with pytest.raises(ValueError, match="components 0 and 3"):
        cubic_constants(np.full((6, 6), np.nan))


# --- lambench_elastic ---------------------------------------------------------------------------


def poscar(atoms) -> str:
    from io import StringIO

    buffer = StringIO()
    write(buffer, atoms, format="vasp", direct=True)
    return buffer.getvalue()


LABELS = {"Cu": (140.0, 48.0), "Al": (76.0, 26.0)}  # K_VRH, G_VRH in GPa (chosen, not DFT)


def write_elastic_json(directory: Path) -> None:
    entries = [
        {"material_id": "cu", "poscar": poscar(bulk("Cu", "fcc", a=3.6)), "K_VRH": 140.0, "G_VRH": 48.0},
        {"material_id": "al", "poscar": poscar(bulk("Al", "fcc", a=4.05)), "K_VRH": 76.0, "G_VRH": 26.0},
        {"material_id": "broken", "poscar": "not a POSCAR\n1.0\n", "K_VRH": 1.0, "G_VRH": 1.0},
        {"material_id": "si", "poscar": poscar(bulk("Si", "diamond", a=5.43)), "K_VRH": 98.0, "G_VRH": 66.0},
    ]
    (directory / "elastic.json").write_text(json.dumps(entries))


def lambench_pipeline(atoms) -> tuple[float, float]:
    """LAMBench's procedure written with pymatgen directly: its deformations, its strain measure."""
    relaxed = emt_relaxed(atoms)
    structure = AseAtomsAdaptor.get_structure(relaxed)
    deformed = DeformedStructureSet(
        structure, norm_strains=np.linspace(-0.01, 0.01, 4), shear_strains=np.linspace(-0.06, 0.06, 4)
    )
    strains, stresses = [], []
    for deformation, cell in zip(deformed.deformations, deformed.deformed_structures, strict=True):
        strains.append(deformation.green_lagrange_strain)
        stresses.append(Stress(emt_stress(AseAtomsAdaptor.get_atoms(cell))))
    tensor = ElasticTensor.from_independent_strains(strains, stresses, eq_stress=Stress(emt_stress(relaxed)))
    return tensor.k_vrh / GPA, tensor.g_vrh / GPA


def test_lambench_elastic_with_emt(tmp_path: Path):
    write_elastic_json(tmp_path)
    task = task_class("lambench_elastic")()
    output = task.run(model("emt"), tmp_path, LambenchElasticParams(), task_context())
    assert output.n_items == 4
    issues = {issue.item: issue.kind for issue in output.issues}
    assert issues == {"broken": "failed", "si": "skipped"}
    records = {r["item"]: r for r in output.records}
    assert set(records) == {"cu", "al"}
    for element, lattice in (("Cu", 3.6), ("Al", 4.05)):
        record = records[element.lower()]
        k, g = lambench_pipeline(bulk(element, "fcc", a=lattice))
        # Same stresses, different deformation convention (pymatgen's upper-triangular F and
        # Green–Lagrange strain vs F = 1 + ε): they agree to the strains' second order.
        assert record["k_vrh"] == pytest.approx(k, rel=2e-3)
        assert record["g_vrh"] == pytest.approx(g, rel=3e-2)
        assert (record["k_vrh_ref"], record["g_vrh_ref"]) == LABELS[element]
    cu = records["cu"]
    # A cubic crystal's K_VRH is its bulk modulus: compare with ASE's EOS fit of EMT energies.
    relaxed = emt_relaxed(bulk("Cu", "fcc", a=3.6))
    volumes, energies = [], []
    for factor in np.linspace(0.99, 1.01, 7):
        atoms = relaxed.copy()
        atoms.set_cell(relaxed.cell * factor ** (1 / 3), scale_atoms=True)
        atoms.calc = EMT()
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    _, _, b0 = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    assert cu["k_vrh"] == pytest.approx(b0 / GPA, rel=5e-3)
    assert cu["volume"] == pytest.approx(relaxed.get_volume(), rel=1e-4)
    expected_k = np.mean([abs(records[e.lower()]["k_vrh"] - LABELS[e][0]) for e in LABELS])
    expected_g = np.mean([abs(records[e.lower()]["g_vrh"] - LABELS[e][1]) for e in LABELS])
    assert output.metrics["k_vrh_mae"].value == pytest.approx(expected_k)
    assert output.metrics["g_vrh_mae"].value == pytest.approx(expected_g)
    assert_summarizes(type(task), output, LambenchElasticParams())
    assert set(task.scored_metrics) == {"k_vrh_mae", "g_vrh_mae"}
    assert task.dummy_values == {"g_vrh_mae": 67.5431, "k_vrh_mae": 136.2597}


def test_a_model_without_stress_skips_every_item_and_scores_nothing(tmp_path: Path):
    write_elastic_json(tmp_path)
    emt = model("emt")
    card = emt.card.model_copy(update={"capabilities": emt.card.capabilities.model_copy(update={"stress": False})})
    no_stress = dataclasses.replace(emt, card=card)
    output = LambenchElasticTask().run(no_stress, tmp_path, LambenchElasticParams(), task_context())
    assert output.n_items == 4 and not output.records and {i.kind for i in output.issues} == {"skipped"}
    assert output.metrics == LambenchElasticTask.summarize([], LambenchElasticParams())
    assert_summarizes(LambenchElasticTask, output, LambenchElasticParams())


def test_lambench_elastic_bad_input(tmp_path: Path):
    task = LambenchElasticTask()
    with pytest.raises(InputError, match="elastic.json"):
        task.run(model("emt"), tmp_path, LambenchElasticParams(), task_context())
    (tmp_path / "elastic.json").write_text(json.dumps([{"poscar": poscar(bulk("Cu")), "G_VRH": 48.0}]))
    with pytest.raises(InputError, match=r"\[0\]\.K_VRH"):
        task.run(model("emt"), tmp_path, LambenchElasticParams(), task_context())
    with pytest.raises(ValueError):
        LambenchElasticParams(shear_strains=[0.0, 0.01])


# --- elastic_cubic ------------------------------------------------------------------------------

CHOSEN = {"cu": (170.0, 120.0, 80.0), "rh": (410.0, 190.0, 190.0)}  # C11, C12, C44 (GPa), hand-chosen


def labelled_cubic_frames(tmp_path: Path):
    """The recipe's frames with stresses σ = σ0 + C ε from the chosen constants, through extxyz."""
    images = []
    for atoms in generate_frames(load_recipe("elastic_cubic")):
        c11, c12, c44 = CHOSEN[atoms.info["system"]]
        stiffness = np.zeros((6, 6))
        stiffness[:3, :3] = c12
        stiffness[[0, 1, 2], [0, 1, 2]] = c11
        stiffness[[3, 4, 5], [3, 4, 5]] = c44
        strain = np.zeros(6)
        if atoms.info["strain_component"] >= 0:
            strain[atoms.info["strain_component"]] = atoms.info["strain"]
        stress = (stiffness @ strain + [0.7, 0.7, 0.7, 0.0, 0.0, 0.0]) * GPA  # a residual pressure
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((1, 3)), stress=stress)
        images.append(atoms)
    path = tmp_path / "pbe.extxyz"
    write(path, images, format="extxyz")
    return read_extxyz(path, "elastic_cubic_pbe")


def cubic_moduli(c11: float, c12: float, c44: float) -> tuple[float, float]:
    g_voigt = (c11 - c12 + 3 * c44) / 5
    g_reuss = 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))
    return (c11 + 2 * c12) / 3, (g_voigt + g_reuss) / 2


def test_elastic_cubic_reference_fit_and_emt_model(tmp_path: Path):
    frames = labelled_cubic_frames(tmp_path)
    output = ElasticCubicTask().run(model("emt"), frames, ElasticCubicParams(), task_context())
    assert output.n_items == 2
    assert [(i.item, i.kind) for i in output.issues] == [("rh", "skipped")]  # EMT has no Rh
    (record,) = output.records
    assert record["item"] == "cu"
    assert (record["c11_ref"], record["c12_ref"], record["c44_ref"]) == pytest.approx(CHOSEN["cu"], rel=1e-9)
    assert (record["k_vrh_ref"], record["g_vrh_ref"]) == pytest.approx(cubic_moduli(*CHOSEN["cu"]), rel=1e-9)
    # The model side, computed directly: EMT-relaxed cell, ±1% ε_xx and γ_yz, straight-line slopes.
    relaxed = emt_relaxed(frames[0].atoms)
    slopes = {}
    for component, stress_index in ((0, 0), (0, 1), (0, 2), (3, 3)):
        strains = [-0.01, 0.0, 0.01]
        stresses = []
        for strain in strains:
            cell = apply_strain(relaxed, voigt_strain_matrix(component, strain)) if strain else relaxed
            voigt = emt_stress(cell)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            stresses.append(voigt[stress_index] / GPA)
        slopes[component, stress_index] = np.polyfit(strains, stresses, 1)[0]
    c11, c12, c44 = slopes[0, 0], (slopes[0, 1] + slopes[0, 2]) / 2, slopes[3, 3]
    assert (record["c11"], record["c12"], record["c44"]) == pytest.approx((c11, c12, c44), rel=1e-3)
    assert (record["k_vrh"], record["g_vrh"]) == pytest.approx(cubic_moduli(c11, c12, c44), rel=1e-3)
    assert record["volume"] == pytest.approx(relaxed.get_volume(), rel=1e-4)
    assert output.metrics["k_vrh_mae"].value == pytest.approx(abs(record["k_vrh"] - record["k_vrh_ref"]))
    assert output.metrics["c44_mae"].value == pytest.approx(abs(c44 - 80.0), abs=0.1)  # relaxed to fmax 1e-3


def test_elastic_cubic_dummy_error_is_the_mean_reference(tmp_path: Path):
    frames = labelled_cubic_frames(tmp_path)
    output = ElasticCubicTask().run(model("dummy"), frames, ElasticCubicParams(), task_context())
    assert not output.issues and len(output.records) == 2
    assert all(r["k_vrh"] == 0.0 and r["g_vrh"] == 0.0 for r in output.records)
    k_refs, g_refs = zip(*(cubic_moduli(*CHOSEN[s]) for s in ("cu", "rh")), strict=True)
    assert output.metrics["k_vrh_mae"].value == pytest.approx(np.mean(k_refs))
    assert output.metrics["g_vrh_mae"].value == pytest.approx(np.mean(g_refs))
    assert_summarizes(ElasticCubicTask, output, ElasticCubicParams())


def test_elastic_cubic_bad_frames(tmp_path: Path):
    frames = labelled_cubic_frames(tmp_path)
    del frames[3].atoms.info["strain_component"]
    with pytest.raises(InputError, match="strain_component"):
        ElasticCubicTask().run(model("emt"), frames, ElasticCubicParams(), task_context())
    frames = labelled_cubic_frames(tmp_path)
    only_normal = [f for f in frames if f.atoms.info["strain_component"] != 3]
    with pytest.raises(InputError, match=r"component\(s\) \[3\]"):
        ElasticCubicTask().run(model("emt"), only_normal, ElasticCubicParams(), task_context())
    with pytest.raises(InputError, match="unknown system"):
        ElasticCubicTask().run(model("emt"), frames, ElasticCubicParams(systems=["ag"]), task_context())


SHIPPED = SETS_DIR / "elastic_cubic" / "pbe.extxyz"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="the Quantum ESPRESSO elastic_cubic set is not built yet")
def test_elastic_cubic_dummy_constants_match_the_shipped_set():
    frames = read_extxyz(SHIPPED, "elastic_cubic_pbe")
    output = ElasticCubicTask().run(model("dummy"), frames, ElasticCubicParams(), task_context())
    assert not output.issues
    k_mean = np.mean([abs(r["k_vrh_ref"]) for r in output.records])
    g_mean = np.mean([abs(r["g_vrh_ref"]) for r in output.records])
    assert ElasticCubicTask.DUMMY_K_GPA == pytest.approx(k_mean, rel=1e-4)
    assert ElasticCubicTask.DUMMY_G_GPA == pytest.approx(g_mean, rel=1e-4)
    assert ElasticCubicTask.dummy_values == {"k_vrh_mae": ElasticCubicTask.DUMMY_K_GPA, "g_vrh_mae": ElasticCubicTask.DUMMY_G_GPA}


def test_shipped_reference_bulk_moduli_agree_with_wien2k():
    """Independent check of the QE reference: K_VRH from stresses against WIEN2k's B0 from energies."""
    from ase.collections import dcdft

    from lambench_core.data.loaders import load_frames
    from lambench_core.data.manifest import load_datasets
    from lambench_core.tasks.elasticity import cubic_systems, reference_constants

    document = load_datasets()
    entry = document.get("elastic_cubic_pbe")
    if not document.is_present(entry):
        pytest.skip("elastic_cubic is not built")
    frames = load_frames(document, entry)[0]
    for name, system in cubic_systems(frames, "elastic_cubic_pbe").items():
        _, moduli = reference_constants(system)
        wien2k = dcdft.data[name.capitalize()]["wien2k_B"]
        assert moduli.k_vrh == pytest.approx(wien2k, rel=0.05), name
