from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from lambench_core.categories import Category
from lambench_core.data.checksums import path_sha256
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import DATASET_USES, load_manifest
from lambench_core.data.normalization import dummy_errors
from lambench_core.errors import ChecksumError, InputError, UnknownNameError


def copper_frames(n: int = 4):
    frames = []
    rng = np.random.default_rng(0)
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
        atoms.rattle(0.05, seed=i)
        atoms.set_cell(atoms.cell * (1 + 0.01 * rng.normal()), scale_atoms=True)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info["frame_id"] = f"cu-{i}"
        frames.append(atoms)
    return frames


def make_set(tmp_path: Path, fmt: str = "extxyz", frames=None, **overrides) -> Path:
    """A manifest with one EMT-labelled copper set in `fmt`."""
    frames = frames or copper_frames()
    if fmt == "extxyz":
        data = tmp_path / "cu.extxyz"
        write(data, frames, format="extxyz")
    else:
        import dpdata

        data = tmp_path / "cu_npy"
        system = dpdata.LabeledSystem(frames[0], fmt="ase/structure")
        for atoms in frames[1:]:
            system.append(dpdata.LabeledSystem(atoms, fmt="ase/structure"))
        system.to("deepmd/npy", str(data))
    entry = {
        "name": "cu_emt",
        "domain": "inorganic_materials",
        "format": fmt,
        "files": [{"path": data.name, "sha256": path_sha256(data)}],
        "labels": ["energy", "forces", "virial"],
        "n_frames": len(frames),
        "level_of_theory": {"code": "ase-emt"},
        "source": "test",
        "licence": "CC0-1.0",
    } | overrides
    manifest = tmp_path / "datasets.yaml"
    manifest.write_text(yaml.safe_dump({"datasets": [entry]}))
    return manifest


def test_shipped_manifest_verifies_and_loads():
    document = load_manifest()
    entry = document.get("molecules_small_pbe")
    frames, digest = load_frames(document, entry)
    assert len(frames) == entry.n_frames >= 30 and len(digest) == 64
    assert document.get("molecules_small_wb97").group == entry.group == "molecules_small"
    for frame in frames:
        assert np.isfinite(frame.energy) and frame.forces.shape == (frame.n_atoms, 3)
        assert frame.atoms.info["charge"] == 0 and frame.atoms.info["spin"] == 1
        assert not frame.periodic


def test_shipped_dummy_errors_match_a_fresh_computation():
    document = load_manifest()
    for entry in document.entries():
        if entry.use != "force_field":
            assert entry.dummy_errors is None, entry.name  # read by a task, never scored per frame
            continue
        assert entry.dummy_errors is not None, entry.name
        if not document.is_present(entry):  # external sets carry LAMBench's published values
            continue
        fresh = dummy_errors(document, entry)
        assert fresh.model_dump() == pytest.approx(entry.dummy_errors.model_dump(), rel=1e-9)


@pytest.mark.parametrize("fmt", ["extxyz", "deepmd/npy"])
def test_formats_give_the_same_frames(tmp_path, fmt):
    document = load_manifest(make_set(tmp_path, fmt))
    frames, _ = load_frames(document, document.get("cu_emt"))
    reference = copper_frames()
    for frame, atoms in zip(frames, reference, strict=True):
        assert frame.energy == pytest.approx(atoms.get_potential_energy())
        np.testing.assert_allclose(frame.forces, atoms.get_forces(), atol=1e-8)
        stress = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(frame.virial, -stress * atoms.get_volume(), atol=1e-6)
        assert frame.periodic


def test_checksum_mismatch_names_manifest_and_field(tmp_path):
    manifest = make_set(tmp_path)
    (tmp_path / "cu.extxyz").write_text((tmp_path / "cu.extxyz").read_text().replace("Cu", "Cu ", 1))
    document = load_manifest(manifest)
    with pytest.raises(ChecksumError) as caught:
        load_frames(document, document.get("cu_emt"))
    assert str(manifest) in str(caught.value) and "datasets[cu_emt].files.0.sha256" in str(caught.value)


def test_missing_file_names_the_path_field(tmp_path):
    manifest = make_set(tmp_path)
    (tmp_path / "cu.extxyz").unlink()
    document = load_manifest(manifest)
    with pytest.raises(InputError, match=r"datasets\[cu_emt\]\.files\.0\.path"):
        load_frames(document, document.get("cu_emt"))


def test_frame_count_mismatch(tmp_path):
    document = load_manifest(make_set(tmp_path, n_frames=7))
    with pytest.raises(InputError, match=r"datasets\[cu_emt\]\.n_frames: manifest says 7, files hold 4"):
        load_frames(document, document.get("cu_emt"))


def test_promised_label_missing(tmp_path):
    frames = copper_frames()
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    document = load_manifest(make_set(tmp_path, frames=frames))
    with pytest.raises(InputError, match=r"datasets\[cu_emt\]\.labels: frame cu-0 lacks virial"):
        load_frames(document, document.get("cu_emt"))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"domain": "astrology"}, "datasets[cu_emt].domain"),
        ({"labels": ["energy", "charges"]}, "datasets[cu_emt].labels.1"),
        ({"n_frames": 0}, "datasets[cu_emt].n_frames"),
        ({"files": []}, "datasets[cu_emt]"),
        ({"use": "stability"}, "datasets[cu_emt].use"),  # a category, but one that reads no reference data
        ({"use": "forces"}, "datasets[cu_emt].use"),
    ],
)
def test_malformed_manifest_entry(tmp_path, overrides, field):
    manifest = make_set(tmp_path, **overrides)
    with pytest.raises(InputError) as caught:
        load_manifest(manifest)
    assert f"{manifest}: {field}:" in str(caught.value)


def test_dataset_use_is_a_category_read_from_its_string(tmp_path):
    entry = load_manifest(make_set(tmp_path, use="force_field")).get("cu_emt")
    assert entry.use is Category.FORCE_FIELD
    assert [c.value for c in DATASET_USES] == ["force_field", "property", "adaptability"]
    assert [c.title for c in Category if c.applicability] == ["Efficiency", "MD stability"]


def test_unknown_format_and_unknown_dataset(tmp_path):
    document = load_manifest(make_set(tmp_path, format="cif"))
    with pytest.raises(InputError, match=r"datasets\[cu_emt\]\.format: unknown format 'cif'"):
        load_frames(document, document.get("cu_emt"))
    with pytest.raises(UnknownNameError, match="cu_emt"):
        document.get("nosuch")


def test_directory_checksum_covers_every_file(tmp_path):
    make_set(tmp_path, "deepmd/npy")
    before = path_sha256(tmp_path / "cu_npy")
    shutil.copy(tmp_path / "datasets.yaml", tmp_path / "cu_npy" / "extra.txt")
    assert path_sha256(tmp_path / "cu_npy") != before
