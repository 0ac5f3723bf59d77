"""Convergence certificates: the protocols, the sample, the arithmetic, and a certification run of a
tiny set as `lambench data certify` runs it (a dflow DAG with PySCF)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

from lambench_core.data.checksums import dataset_digest
from lambench_core.data.labelling.certify import read_certificate
from lambench_core.data.labelling.convergence import (
    CRITERIA,
    certify,
    sample_frames,
    tightened,
)
from lambench_core.data.labelling.recipe import ReferenceSpec
from lambench_core.data.labelling.reference import ReferenceLabels
from lambench_core.data.manifest import load_manifest
from lambench_core.errors import LambenchError

REPO = Path(__file__).resolve().parents[2]
QE = ReferenceSpec(
    code="qe",
    settings={"pseudopotentials": {"Cu": "Cu.pbe-kjpaw.UPF"}, "ecutwfc": 30, "ecutrho": 240, "kspacing": 0.6,
              "smearing": "mv", "degauss": 0.02},
    pulay_stress_GPa=1.5,
)


def test_the_qe_protocol_tightens_cutoffs_k_points_and_smearing():
    check, description = tightened(QE)
    assert check.settings["ecutwfc"] == 45 and check.settings["ecutrho"] == 360
    assert check.settings["kspacing"] == 0.3 and check.settings["degauss"] == 0.01
    assert check.settings["pseudopotentials"] == QE.settings["pseudopotentials"]
    assert check.pulay_stress_GPa == 0.0 and "×1.5" in description


def test_the_pyscf_protocol_takes_the_next_basis_and_a_finer_grid():
    reference = ReferenceSpec(code="pyscf", settings={"xc": "PBE", "basis": "def2-TZVP", "grids_level": 3})
    check, _ = tightened(reference)
    assert check.settings["basis"] == "def2-QZVP" and check.settings["grids_level"] == 5
    with pytest.raises(LambenchError, match="no larger basis than 'def2-QZVPP'"):
        tightened(reference.model_copy(update={"settings": {"basis": "def2-QZVPP"}}))
    with pytest.raises(LambenchError, match="unknown convergence protocol 'nosuch'"):
        tightened(reference.model_copy(update={"convergence": "nosuch"}))
    with pytest.raises(LambenchError, match="'qe-tight' is for qe, not pyscf"):
        tightened(reference.model_copy(update={"convergence": "qe-tight"}))


def labelled(atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None, frame_id: str) -> Atoms:
    atoms = atoms.copy()
    atoms.info["frame_id"] = frame_id
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
    return atoms


def copper_frames() -> list[Atoms]:
    rng = np.random.default_rng(3)
    frames = []
    for i in range(8):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.01 * (i + 1), seed=i)
        if i == 6:
            atoms.positions[1] = atoms.positions[0] + [1.5, 0, 0]  # the closest contact
        forces = rng.normal(0, 0.1, (4, 3))
        stress = np.full(6, 0.001)
        frames.append(labelled(atoms, -10.0 + 0.01 * i, forces, stress, f"f{i}"))
    frames[5].calc.results["forces"][2] = [3.0, 0, 0]  # the largest force
    frames[2].calc.results["stress"] = np.array([0.05, 0, 0, 0, 0, 0])  # the largest stress
    return frames


def test_the_sample_holds_the_largest_force_the_most_distorted_and_the_largest_stress():
    frames = copper_frames()
    sample = dict(sample_frames(frames))
    assert "largest force" in sample[5] and "largest stress" in sample[2] and "most distorted" in sample[6]
    assert len(sample_frames(frames, 5)) == 5 and len(sample_frames(frames[:2])) == 2
    molecules = [labelled(Atoms("H2", [[0, 0, 0], [0, 0, d]]), -1.0 + d, np.zeros((2, 3)), None, f"m{d}")
                 for d in (0.7, 0.74, 0.9, 1.2)]
    picked = dict(sample_frames(molecules))
    assert "highest energy" in picked[3] and "most distorted" in picked[0] and len(picked) == 3


def test_certify_removes_one_common_offset_and_judges_each_criterion():
    frames = copper_frames()
    sample = [(0, "a"), (5, "b"), (2, "c")]

    def check_labels(index: int, de_per_atom: float, df: float, ds_gpa: float) -> ReferenceLabels:
        atoms = frames[index]
        forces = atoms.get_forces() + df
        stress = atoms.get_stress() + ds_gpa * GPa
        return ReferenceLabels(energy=atoms.get_potential_energy() + 4 * de_per_atom, forces=forces.tolist(),
                               stress=stress.tolist())

    # A shift of 50 meV/atom common to a composition is no error; 1 meV/atom around it, 0.01 eV/Å
    # and 0.2 GPa pass.
    checked = {0: check_labels(0, 0.050, 0.01, 0.2), 5: check_labels(5, 0.051, 0.0, 0.1), 2: check_labels(2, 0.049, 0.0, 0.0)}
    certificate = certify("cu", "pbe", "0" * 64, QE, frames, sample, checked, wall_seconds=3.0)
    assert certificate.passed and certificate.energy_offsets_meV_per_atom == {"Cu4": pytest.approx(50.0)}
    energy, force, stress = certificate.worst
    assert energy.value == pytest.approx(1.0) and force.value == pytest.approx(0.01) and stress.value == pytest.approx(0.2)
    assert certificate.pulay_stress_GPa_subtracted == 1.5 and certificate.check["settings"]["ecutwfc"] == 45
    assert certificate.frames[0].check_energy_eV == checked[0].energy

    checked[5] = check_labels(5, 0.051, 0.05, 0.9)  # too large a force and stress difference
    failing = certify("cu", "pbe", "0" * 64, QE, frames, sample, checked, wall_seconds=3.0)
    assert not failing.passed and [w.passed for w in failing.worst] == [True, False, False]
    assert failing.worst[1].frame_id == "f5" and failing.worst[2].value == pytest.approx(0.9)
    assert failing.summary().startswith("FAILED: energy (meV/atom) 1")
    assert CRITERIA.stress_GPa == 0.5


RECIPE = {
    "name": "tiny_h2",
    "domain": "molecules",
    "description": "H2 frames",
    "seed": 7,
    "systems": [
        {"name": "h2", "structure": {"builder": "molecule", "args": {"name": "H2"}},
         "generators": [{"generator": "rattle", "count": 3, "params": {"sigma": [0.02, 0.08]}},
                        {"generator": "stretch", "count": 1, "params": {"anchor": 0, "moving": 1, "distance": [1.3, 1.3]}}]},
    ],
    "references": {
        "lda": {"code": "pyscf", "settings": {"xc": "LDA", "basis": "def2-SVP", "density_fitting": False, "auxbasis": None, "grids_level": 1}},
    },
}


def lambench(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *argv], capture_output=True, text=True, timeout=900, cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)),
    )


def test_certify_runs_as_a_dag_writes_pins_and_reruns_from_the_cache(tmp_path):
    recipe = tmp_path / "tiny_h2.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    out, cache = tmp_path / "tiny_h2", tmp_path / "cache"
    built = lambench("data", "build", str(recipe), "--out", str(out), "--cache", str(cache), cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = tmp_path / "datasets.yaml"
    manifest.write_text(yaml.safe_dump({"include": ["tiny_h2/*.entry.yaml"]}))
    before = load_manifest(manifest).get("tiny_h2_lda")
    assert before.certificate is None

    done = lambench("data", "certify", str(recipe), "--set-dir", str(out), "--cache", str(cache), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 frames at the check level" in done.stdout and "3 labelling step(s)" in done.stdout
    certificate = read_certificate(out / "certificate_lda.json")
    assert certificate.check["settings"]["basis"] == "def2-TZVP" and len(certificate.frames) == 3
    assert {f.frame_id for f in certificate.frames} >= {"h2-stretch-000"}  # the highest energy
    # SVP → TZVP for LDA H2 moves forces by more than the criterion: the certificate says so.
    assert certificate.passed == all(w.passed for w in certificate.worst)
    verdict = "passed" if certificate.passed else "FAILED"
    assert f"tiny_h2_lda: {verdict}" in done.stdout

    after = load_manifest(manifest).get("tiny_h2_lda")
    assert after.certificate is not None and after.certificate.path == "certificate_lda.json"
    assert dataset_digest(after) != dataset_digest(before)  # a certificate is part of the set's identity
    listed = lambench("data", "list", "--manifest", str(manifest), cwd=tmp_path)
    assert "tiny_h2_lda" in listed.stdout and ("certified (" in listed.stdout or "FAILED certificate (" in listed.stdout)

    from lambench_core.report.leaderboard import convergence_info
    from lambench_core.report.site import convergence_html

    info = convergence_info(load_manifest(manifest), after)
    assert info is not None and info.verdict == verdict.lower() and info.frames == 3
    assert [c.criterion for c in info.criteria] == ["energy (meV/atom)", "force (eV/Å)", "stress (GPa)"]
    html = convergence_html(info)
    assert f"data-certificate='{info.verdict}'" in html and "h2-" in html

    again = lambench("data", "certify", str(recipe), "--set-dir", str(out), "--cache", str(cache), cwd=tmp_path)
    assert again.returncode == 0 and "3 already in the cache" in again.stdout and "0 labelling step(s)" in again.stdout
    # A rebuild that changes nothing keeps the certificate pinned; a tampered certificate is refused at load.
    rebuilt = lambench("data", "build", str(recipe), "--out", str(out), "--cache", str(cache), cwd=tmp_path)
    assert rebuilt.returncode == 0 and load_manifest(manifest).get("tiny_h2_lda").certificate is not None
    (out / "certificate_lda.json").write_text((out / "certificate_lda.json").read_text().replace('"passed"', '"passed" '))
    from lambench_core.data.checksums import verify_dataset
    from lambench_core.errors import ChecksumError

    document = load_manifest(manifest)
    with pytest.raises(ChecksumError, match=r"certificate\.sha256"):
        verify_dataset(document, document.get("tiny_h2_lda"))


def test_each_composition_has_its_own_offset_and_a_lone_frame_is_not_judged_on_energy():
    """A basis-set shift of its own per element (here 30 meV/atom more for the Cu3 frames) is what
    scores remove per element: not a label error. A composition sampled once has no energy difference."""
    frames = copper_frames()
    vacancy = []
    for i in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        del atoms[0]
        atoms.rattle(0.02, seed=10 + i)
        vacancy.append(labelled(atoms, -7.0 - 0.01 * i, np.zeros((3, 3)), np.zeros(6), f"v{i}"))
    frames += vacancy
    sample = [(0, "a"), (1, "b"), (8, "c"), (9, "d"), (10, "e")]

    def shifted(index: int, de_per_atom: float) -> ReferenceLabels:
        atoms = frames[index]
        return ReferenceLabels(energy=atoms.get_potential_energy() + len(atoms) * de_per_atom,
                               forces=atoms.get_forces().tolist(), stress=atoms.get_stress().tolist())

    checked = {0: shifted(0, 0.010), 1: shifted(1, 0.011), 8: shifted(8, 0.040), 9: shifted(9, 0.041), 10: shifted(10, 0.039)}
    certificate = certify("cu", "pbe", "0" * 64, QE, frames, sample, checked, wall_seconds=1.0)
    assert certificate.passed, certificate.summary()
    assert certificate.energy_offsets_meV_per_atom == {"Cu4": pytest.approx(10.5), "Cu3": pytest.approx(40.0)}
    lone = certify("cu", "pbe", "0" * 64, QE, frames, [(0, "a"), (1, "b"), (8, "c")], checked, wall_seconds=1.0)
    assert lone.frames[2].energy_meV_per_atom is None and lone.worst[0].value == pytest.approx(0.5)
    # The sample gives a frame a partner of its composition where it has none.
    picked = dict(sample_frames(frames))
    formulas = [frames[i].get_chemical_formula() for i in picked]
    assert all(formulas.count(f) >= 2 for f in formulas), picked


# --- the shipped sets' certificates ----------------------------------------------------------------

# Shipped sets whose certification had not finished when this was written (the closing note of #18
# says where each stands). The test below fails when a set lacks a certificate and is not listed,
# and when a listed set has one: keep the list true.
PENDING_CERTIFICATION = {
    "cu_bulk_pbe",  # relabelled at 45 Ry / 0.3 Å⁻¹; its check frames cost ~75 CPU-minutes each
}


def shipped_entries():
    document = load_manifest()
    return document, [e for e in document.entries() if e.files and not e.download_url]


def test_every_shipped_set_has_a_certificate_of_its_labels():
    document, entries = shipped_entries()
    missing = {e.name for e in entries if e.certificate is None}
    assert missing == PENDING_CERTIFICATION
    docs = (REPO / "docs/datasets.md").read_text()
    for entry in entries:
        if entry.certificate is None:
            continue
        certificate = read_certificate(document.file_path(entry, entry.certificate))
        assert certificate.dataset == entry.name and certificate.labels_sha256 == entry.files[0].sha256
        assert len(certificate.frames) >= 3 and certificate.passed == all(w.passed for w in certificate.worst)
        if not certificate.passed:  # a failing set ships with its reason, in the docs too
            assert certificate.note, f"{entry.name}: a failing certificate needs a note saying why it ships"
            assert certificate.note in docs


def cheapest_frame(code: str):
    document, entries = shipped_entries()
    frames = []
    for entry in entries:
        if entry.certificate is None:
            continue
        certificate = read_certificate(document.file_path(entry, entry.certificate))
        if certificate.check["code"] == code:
            labels_file = document.file_path(entry, entry.files[0])
            frames += [(frame.check_wall_seconds, frame.frame_id, certificate, labels_file) for frame in certificate.frames]
    assert frames, f"no shipped certificate was computed with {code}"
    return min(frames, key=lambda f: f[0])


@pytest.mark.slow
@pytest.mark.parametrize("code", ["pyscf", "qe"])
def test_a_shipped_certificate_frame_recomputes_within_the_codes_reproducibility(code, tmp_path):
    """The cheapest check-level frame of the shipped certificates computed by `code`, computed again
    here: a certificate is a reproducible measurement, not a claim."""
    from ase.io import read

    from lambench_core.data.labelling.reference import reference_calculator

    _, frame_id, certificate, labels_file = cheapest_frame(code)
    (atoms,) = [a for a in read(labels_file, index=":") if a.info["frame_id"] == frame_id]
    atoms.calc = None
    calculator = reference_calculator(code)
    settings = calculator.Settings.model_validate(certificate.check["settings"])
    calculator.check_available(settings)
    labels = calculator.label(atoms, settings, tmp_path)
    (recorded,) = [f for f in certificate.frames if f.frame_id == frame_id]
    assert abs(labels.energy - recorded.check_energy_eV) / len(atoms) < 5e-5  # eV/atom
    assert np.abs(np.asarray(labels.forces) - np.asarray(recorded.check_forces)).max() < 2e-3  # eV/Å
    if recorded.check_stress_GPa is not None:
        assert labels.stress is not None
        assert np.abs(np.asarray(labels.stress) / GPa - np.asarray(recorded.check_stress_GPa)).max() < 0.02
