"""Property-task data: LAMBench-layout directories fetched and pinned, and the generators of the
shipped property references (strains, torsion scans, vacancies, fixed structures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule

from lambench_core.data.fetch import fetch_dataset
from lambench_core.data.labelling.generators import (
    GeneratorSpec,
    StructureSpec,
    build_structure,
    generate,
    voigt_strain_matrix,
)
from lambench_core.data.loaders import load_directory
from lambench_core.data.manifest import DATA_DIR_ENV, DatasetEntry, load_datasets
from lambench_core.errors import ChecksumError, InputError
from lambench_core.tasks.suite import Suite, SuiteDatasets, SuiteEntry
from tests.core.test_fetch import tar_gz


def directory_manifest(tmp_path: Path) -> Path:
    entry = {
        "name": "lambench_demo",
        "domain": "molecules",
        "use": "property",
        "format": "directory",
        "level_of_theory": {"method": "test"},
        "source": "test",
        "licence": "CC0-1.0",
        "download_url": "http://127.0.0.1:9/unused",
    }
    manifest = tmp_path / "manifest" / "datasets.yaml"
    manifest.parent.mkdir()
    manifest.write_text(yaml.safe_dump({"datasets": [entry]}))
    return manifest


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


def test_a_directory_archive_is_registered_pinned_and_handed_over(tmp_path, data_root):
    archive = tmp_path / "demo.tar.gz"
    archive.write_bytes(tar_gz({"Demo/label.csv": b"traj,Ea,dE\n", "Demo/sub/a.txt": b"1\n"}))
    manifest = directory_manifest(tmp_path)
    entry = fetch_dataset(load_datasets(manifest), "lambench_demo", archive=archive)
    assert entry.format == "directory" and len(entry.files) == 1

    document = load_datasets(manifest)
    root, digest = load_directory(document, document.get("lambench_demo"))
    # The archive's single top folder is the root the task sees.
    assert (root / "label.csv").read_text() == "traj,Ea,dE\n" and (root / "sub" / "a.txt").is_file()
    assert len(digest) == 64

    (root / "sub" / "a.txt").write_text("tampered\n")
    with pytest.raises(ChecksumError, match="lambench_demo"):
        load_directory(document, document.get("lambench_demo"))


def test_a_single_file_archive_becomes_a_directory(tmp_path, data_root):
    single = tmp_path / "Wiggle150.traj"
    single.write_bytes(b"not really a trajectory")
    manifest = directory_manifest(tmp_path)
    fetch_dataset(load_datasets(manifest), "lambench_demo", archive=single)
    document = load_datasets(manifest)
    root, _ = load_directory(document, document.get("lambench_demo"))
    assert (root / "Wiggle150.traj").read_bytes() == b"not really a trajectory"


def test_property_tasks_join_the_suite_only_when_their_data_is_present(tmp_path, data_root):
    suite = Suite([SuiteEntry(task="cu_adsorption", domain="catalysis", datasets=SuiteDatasets(set="lambench_demo"))])
    manifest = directory_manifest(tmp_path)
    assert suite.instances(load_datasets(manifest)) == []
    archive = tmp_path / "demo.tar.gz"
    archive.write_bytes(tar_gz({"Demo/x.txt": b"x"}))
    fetch_dataset(load_datasets(manifest), "lambench_demo", archive=archive)
    (instance,) = suite.instances(load_datasets(manifest))
    assert instance.datasets == {"pbe": "lambench_demo"}


def test_directory_format_needs_property_use():
    with pytest.raises(ValueError, match="use: property"):
        DatasetEntry(name="x", domain="molecules", format="directory", level_of_theory={}, source="s",
                     licence="l", download_url="http://127.0.0.1:9/x", labels=["energy"])
    with pytest.raises(ValueError, match="labels"):
        DatasetEntry(name="x", domain="molecules", format="extxyz", level_of_theory={}, source="s",
                     licence="l", download_url="http://127.0.0.1:9/x")


def test_load_directory_refuses_a_frame_set(repo):
    document = load_datasets()
    with pytest.raises(InputError, match="not a directory"):
        load_directory(document, document.get("si_bulk_pbe"))


# --- generators -----------------------------------------------------------------------------


def test_elastic_strains_are_voigt_with_engineering_shear():
    base = bulk("Cu", "fcc", a=3.6)
    spec = GeneratorSpec(generator="elastic_strain", count=5, params={"components": [0, 3], "magnitudes": [-0.01, 0.01]})
    frames = generate(spec, base, np.random.default_rng(0))
    assert [(f.info["strain_component"], f.info["strain"]) for f in frames] == [
        (-1, 0.0), (0, -0.01), (0, 0.01), (3, -0.01), (3, 0.01)
    ]
    sheared = frames[4]
    # Deformation gradient F = cell⁻¹·cell' = 1 + ε, with ε_yz = γ/2.
    deformation = np.linalg.solve(base.cell.array, sheared.cell.array)
    assert deformation[1, 2] == pytest.approx(0.005) and deformation[2, 1] == pytest.approx(0.005)
    assert np.allclose(voigt_strain_matrix(0, 0.02), np.diag([0.02, 0, 0]))
    with pytest.raises(ValueError, match="makes 5 frames"):
        generate(GeneratorSpec(generator="elastic_strain", count=4, params=spec.params), base, np.random.default_rng(0))


def test_torsion_scan_turns_only_the_dihedral():
    butane = molecule("trans-butane")
    spec = GeneratorSpec(generator="torsion_scan", count=7, params={"dihedral": [0, 1, 2, 3], "angles": [0, 180]})
    frames = generate(spec, butane, np.random.default_rng(0))
    assert [round(f.info["dihedral_deg"]) for f in frames] == [0, 30, 60, 90, 120, 150, 180]
    for frame, angle in zip(frames, range(0, 181, 30)):
        assert frame.get_dihedral(0, 1, 2, 3) % 360 == pytest.approx(angle % 360, abs=1e-6)
        # Bonded distances (C–C and C–H) are those of the base: a rigid rotation about C1–C2.
        bonded = butane.get_all_distances() < 1.6
        assert np.allclose(frame.get_all_distances()[bonded], butane.get_all_distances()[bonded], atol=1e-9)
    with pytest.raises(ValueError, match="ring"):
        generate(GeneratorSpec(generator="torsion_scan", count=2, params={"dihedral": [0, 1, 2, 3]}),
                 molecule("C6H6"), np.random.default_rng(0))


def test_vacancy_structure_and_identity():
    perfect = build_structure(StructureSpec(builder="bulk", args={"name": "Cu", "crystalstructure": "fcc", "a": 3.6},
                                            repeat=(2, 2, 2)))
    defect = build_structure(StructureSpec(builder="bulk", args={"name": "Cu", "crystalstructure": "fcc", "a": 3.6},
                                           repeat=(2, 2, 2), remove=[0]))
    assert len(perfect) == 8 and len(defect) == 7
    assert np.allclose(defect.positions, perfect.positions[1:])
    (same,) = generate(GeneratorSpec(generator="identity", count=1), perfect, np.random.default_rng(0))
    assert np.array_equal(same.positions, perfect.positions)
    with pytest.raises(ValueError, match="exactly one"):
        generate(GeneratorSpec(generator="identity", count=2), perfect, np.random.default_rng(0))


@pytest.mark.slow
def test_a_fetched_lambench_set_runs_in_a_campaign(tmp_path):
    """CLI end to end: fetch a Wiggle150-layout file, and `lambench run` picks the task up and scores
    it through the DAG against energies computed here with EMT."""
    import json
    import os
    import subprocess
    import sys

    from ase import units
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    repo = Path(__file__).resolve().parents[2]
    frames, energies = [], []
    for index in range(51):  # one block: the reference conformer and 50 distorted ones
        atoms = molecule("CH3CH2OH")
        if index:
            atoms.rattle(0.03, seed=index)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy() / (units.kcal / units.mol))
        label = energies[-1] + (0.5 if index % 2 else 0.0)  # a known error on every other conformer
        atoms.calc = SinglePointCalculator(atoms, energy=label)
        frames.append(atoms)
    archive = tmp_path / "Wiggle150.traj"
    write(archive, frames)
    env = dict(os.environ, OMP_NUM_THREADS="1", LAMBENCH_DATA_DIR=str(tmp_path / "data"))

    def lambench(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workflows.cli", *args], capture_output=True, text=True,
                              timeout=900, env=env, cwd=repo)

    fetched = lambench("data", "fetch", "lambench_wiggle150", "--archive", str(archive))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    listed = lambench("tasks")
    assert "lambench_wiggle150" in listed.stdout, listed.stdout
    done = lambench("run", "--models", "emt", "--tasks", "lambench_wiggle150", "--workdir", str(tmp_path / "work"))
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "work" / "runs").iterdir()
    results = json.loads((run_dir / "site" / "results.json").read_text())
    (mae,) = [r for r in results["metrics"] if r["benchmark"] == "lambench_wiggle150" and r["metric"] == "mae"]
    # Labels are EMT plus 0.5 kcal/mol on odd conformers (the reference, index 0, is exact): the
    # relative-energy error is 0.5 on the 25 odd conformers of 50 and 0 elsewhere.
    assert mae["value"] == pytest.approx(0.25, abs=1e-6)
    (job,) = [j for j in results["jobs"] if j["task"] == "lambench_wiggle150"]
    assert job["dataset"] == "lambench_wiggle150" and len(job["dataset_sha256"]) == 64
