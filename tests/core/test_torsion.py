"""Torsion profiles: the scoring function by hand, both tasks against energies computed directly."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT

from lambench_core.data.frames import Frame
from lambench_core.data.labelling.recipe import generate_frames, load_recipe
from lambench_core.data.loaders import read_extxyz
from lambench_core.errors import InputError
from lambench_core.tasks.base import task_class
from lambench_core.tasks.torsion import (
    TorsionNetParams,
    TorsionNetTask,
    TorsionScanParams,
    TorsionScanTask,
    score_torsion_profiles,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model

KCAL = units.kcal / units.mol
SHIPPED = Path(__file__).resolve().parents[2] / "lambench_core" / "data" / "sets" / "torsion_scans" / "pbe.extxyz"


def emt_energy(atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_potential_energy()


@pytest.fixture(scope="module")
def scan_atoms():
    return generate_frames(load_recipe("torsion_scans"))


def labelled_frames(scan_atoms, offset=lambda atoms: 0.0) -> list[Frame]:
    """The recipe's frames labelled with EMT energy + offset(atoms), in eV."""
    return [
        Frame(a.info["frame_id"], a.copy(), emt_energy(a) + offset(a), None, None) for a in scan_atoms
    ]


def test_scoring_function_by_hand():
    reference = [[0.0, 1.0, 3.0], [2.0, 2.5, 2.0], [0.0, 2.0, 0.5]]
    predicted = [[1.0, 1.5, 4.0], [7.0, 7.0, 7.0], [10.0, 14.0, 10.0]]
    scores = score_torsion_profiles(reference, predicted)
    # deviations after shifting each to its minimum: [0,-.5,0], [0,-.5,0], [0,2,-.5]
    assert scores.profile_mae == pytest.approx(3.5 / 9)
    assert scores.profile_rmse == pytest.approx(np.sqrt(4.75 / 9))
    # barrier errors 0, -0.5, +2
    assert scores.barrier_mae == pytest.approx(2.5 / 3)
    assert scores.n_barrier_above_1 == 1
    empty = score_torsion_profiles([], [])
    assert empty.profile_mae is None and empty.n_barrier_above_1 is None
    with pytest.raises(ValueError, match="reference energies"):
        score_torsion_profiles([[0.0, 1.0]], [[0.0, 1.0, 2.0]])


def test_torsion_scans_with_emt_against_direct_energies(scan_atoms):
    # A reference that differs from EMT by a dihedral-dependent bump, so the errors are not zero.
    frames = labelled_frames(scan_atoms, lambda a: 0.05 * np.sin(np.radians(a.info["dihedral_deg"])) ** 2)
    random.Random(1).shuffle(frames)
    output = TorsionScanTask().run(model("emt"), frames, TorsionScanParams(), task_context())
    assert output.n_items == 4 and not output.issues
    assert [r["item"] for r in output.records] == ["acetamide", "acetic-acid", "butadiene", "butane"]

    deviations, barrier_errors = [], []
    for system in ("acetamide", "acetic-acid", "butadiene", "butane"):
        members = sorted((a for a in scan_atoms if a.info["system"] == system), key=lambda a: a.info["dihedral_deg"])
        assert len(members) == 7
        pred = np.array([emt_energy(a) for a in members]) / KCAL
        ref = np.array(
            [emt_energy(a) + 0.05 * np.sin(np.radians(a.info["dihedral_deg"])) ** 2 for a in members]
        ) / KCAL
        pred, ref = pred - pred.min(), ref - ref.min()
        deviations.extend(pred - ref)
        barrier_errors.append(pred.max() - ref.max())
        record = next(r for r in output.records if r["item"] == system)
        assert record["dihedral_deg"] == [a.info["dihedral_deg"] for a in members]
        assert record["predicted"] == pytest.approx(pred.tolist(), abs=1e-9)
    deviations = np.array(deviations)
    assert output.metrics["profile_mae"].value == pytest.approx(np.mean(np.abs(deviations)), rel=1e-9)
    assert output.metrics["profile_rmse"].value == pytest.approx(np.sqrt(np.mean(deviations**2)), rel=1e-9)
    assert output.metrics["barrier_mae"].value == pytest.approx(np.mean(np.abs(barrier_errors)), rel=1e-9)
    assert output.metrics["n_barrier_above_1"].value == sum(abs(e) > 1 for e in barrier_errors)
    assert output.metrics["profile_mae"].value > 0.1  # the bump is 0.05 eV ≈ 1.15 kcal/mol
    assert_summarizes(TorsionScanTask, output, TorsionScanParams())


def test_torsion_scans_bad_scan_is_one_failed_item_and_bad_frames_are_input_errors(scan_atoms):
    frames = labelled_frames(scan_atoms)
    broken = next(f for f in frames if f.atoms.info["system"] == "butane")
    broken.energy = None
    output = TorsionScanTask().run(model("emt"), frames, TorsionScanParams(), task_context())
    assert output.n_items == 4 and len(output.records) == 3
    (issue,) = output.issues
    assert issue.item == "butane" and issue.kind == "failed" and broken.frame_id in issue.reason
    assert output.metrics["profile_mae"].value == pytest.approx(0.0, abs=1e-9)  # EMT labels, EMT model

    with pytest.raises(InputError, match="systems"):
        TorsionScanTask().run(model("emt"), frames, TorsionScanParams(systems=["pentane"]), task_context())
    del frames[0].atoms.info["dihedral_deg"]
    with pytest.raises(InputError, match="dihedral_deg"):
        TorsionScanTask().run(model("emt"), frames, TorsionScanParams(), task_context())


def test_dummy_scores_the_reference_profiles_own_size(scan_atoms):
    frames = labelled_frames(scan_atoms)
    output = TorsionScanTask().run(model("dummy"), frames, TorsionScanParams(), task_context())
    relative, barriers = [], []
    for system in ("butane", "butadiene", "acetamide", "acetic-acid"):
        ref = np.array([f.energy for f in frames if f.atoms.info["system"] == system]) / KCAL
        relative.extend(ref - ref.min())
        barriers.append(ref.max() - ref.min())
    assert output.metrics["profile_mae"].value == pytest.approx(np.mean(relative), rel=1e-9)
    assert output.metrics["barrier_mae"].value == pytest.approx(np.mean(barriers), rel=1e-9)


@pytest.mark.skipif(not SHIPPED.exists(), reason="torsion_scans/pbe.extxyz is not labelled yet")
def test_dummy_constants_match_the_shipped_set():
    frames = read_extxyz(SHIPPED, "torsion_scans_pbe")
    relative, barriers = [], []
    for system in sorted({f.atoms.info["system"] for f in frames}):
        ref = np.array([f.energy for f in frames if f.atoms.info["system"] == system]) / KCAL
        relative.extend(ref - ref.min())
        barriers.append(ref.max() - ref.min())
    expected = {"profile_mae": float(np.mean(relative)), "barrier_mae": float(np.mean(barriers))}
    constants = TorsionScanTask.dummy_values
    assert constants == pytest.approx(expected, rel=1e-6), f"set TorsionScanTask.DUMMY_* to {expected}"
    output = TorsionScanTask().run(model("dummy"), frames, TorsionScanParams(), task_context())
    assert not output.issues
    for name, value in constants.items():
        assert output.metrics[name].value == pytest.approx(value, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# lambench_torsionnet


def write_fragment(directory: Path, conformers, energies_kcal, periodic: bool = False) -> None:
    directory.mkdir()
    symbols = conformers[0].get_chemical_symbols()
    type_map = sorted(set(symbols))
    (directory / "type_map.raw").write_text("\n".join(type_map) + "\n")
    (directory / "type.raw").write_text("\n".join(str(type_map.index(s)) for s in symbols) + "\n")
    np.savetxt(directory / "coord.raw", np.array([a.positions.ravel() for a in conformers]))
    np.savetxt(directory / "energy.raw", np.asarray(energies_kcal))
    if periodic:
        np.savetxt(directory / "box.raw", np.tile(np.eye(3).ravel() * 30.0, (len(conformers), 1)))
    else:
        (directory / "nopbc").write_text("")


def test_torsionnet_directory_against_direct_energies(tmp_path, scan_atoms):
    expected_dev, expected_barrier = [], []
    for system, periodic in (("butane", False), ("acetic-acid", True)):
        members = sorted((a for a in scan_atoms if a.info["system"] == system), key=lambda a: a.info["dihedral_deg"])
        emt = np.array([emt_energy(a) for a in members]) / KCAL
        labels = emt - emt.min() + np.linspace(0.0, 1.5, len(members))  # a made-up "CCSD(T)" profile
        labels -= labels.min()
        write_fragment(tmp_path / system, members, labels, periodic)
        pred = emt - emt.min()
        expected_dev.extend(pred - labels)
        expected_barrier.append(pred.max() - labels.max())
    bad = sorted((a for a in scan_atoms if a.info["system"] == "butadiene"), key=lambda a: a.info["dihedral_deg"])
    write_fragment(tmp_path / "zz-bad", bad, np.zeros(len(bad)))
    (tmp_path / "zz-bad" / "energy.raw").write_text("0.0\n1.0\n")  # 2 energies for 7 conformers
    (tmp_path / "README").write_text("plain files at the top level are ignored\n")

    output = TorsionNetTask().run(model("emt"), tmp_path, TorsionNetParams(), task_context())
    assert output.n_items == 3 and [r["item"] for r in output.records] == ["acetic-acid", "butane"]
    (issue,) = output.issues
    assert issue.item == "zz-bad" and issue.kind == "failed" and "energy.raw" in issue.reason
    dev = np.array(expected_dev)
    assert output.metrics["profile_mae"].value == pytest.approx(np.mean(np.abs(dev)), rel=1e-9)
    assert output.metrics["profile_rmse"].value == pytest.approx(np.sqrt(np.mean(dev**2)), rel=1e-9)
    assert output.metrics["barrier_mae"].value == pytest.approx(np.mean(np.abs(expected_barrier)), rel=1e-9)
    assert output.metrics["n_barrier_above_1"].value == sum(abs(b) > 1 for b in expected_barrier)
    assert output.metrics["n_barrier_above_1"].unit == "count"
    assert_summarizes(TorsionNetTask, output, TorsionNetParams())
    # A count, not a mean: a bootstrap draw that repeats every fragment counts each twice.
    doubled = TorsionNetTask.summarize(output.records * 2, TorsionNetParams())
    assert doubled["n_barrier_above_1"].value == 2 * output.metrics["n_barrier_above_1"].value


def test_torsionnet_input_errors_and_registration(tmp_path):
    with pytest.raises(InputError, match="no fragment sub-directories"):
        TorsionNetTask().run(model("emt"), tmp_path, TorsionNetParams(), task_context())
    with pytest.raises(InputError, match="missing-dir"):
        TorsionNetTask().run(model("emt"), tmp_path / "missing-dir", TorsionNetParams(), task_context())
    assert TorsionNetTask.dummy_values == {"profile_mae": 2.4939, "barrier_mae": 5.8176, "n_barrier_above_1": 493}
    assert set(TorsionNetTask.scored_metrics) == set(TorsionNetTask.dummy_values)
    assert task_class("lambench_torsionnet") is TorsionNetTask and task_class("torsion_scans") is TorsionScanTask
