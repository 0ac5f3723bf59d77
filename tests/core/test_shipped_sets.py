"""The shipped suite: every domain present, docs in sync, and labels reproducible by their recipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from lambench_core.data.catalog_doc import render
from lambench_core.data.labelling.recipe import RECIPES_DIR, load_recipe
from lambench_core.data.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
SETS = REPO / "lambench_core/data/sets"


def shipped():
    """The shipped force-field sets (property sets are read by their tasks, not scored per frame)."""
    document = load_manifest()
    return document, [e for e in document.entries() if e.use == "force_field" and document.is_present(e)]


def test_every_domain_has_shipped_sets_of_twenty_frames_or_more():
    _, entries = shipped()
    by_domain = {}
    for entry in entries:
        by_domain.setdefault(entry.domain.value, set()).add(entry.set_name)
        assert entry.n_frames >= 20, entry.name
        assert entry.dummy_errors is not None
    assert len(by_domain["inorganic_materials"]) >= 4
    assert len(by_domain["catalysis"]) >= 2
    assert len(by_domain["molecules"]) >= 1
    levels = {e.level for e in entries if e.set_name == "molecules_small"}
    assert levels == {"pbe", "wb97"}


def test_periodic_sets_carry_virials():
    _, entries = shipped()
    for entry in entries:
        if entry.domain.value != "molecules":
            assert "virial" in entry.labels, entry.name


def test_every_shipped_set_has_a_recipe():
    document = load_manifest()
    for entry in (e for e in document.entries() if document.is_present(e)):
        recipe = load_recipe(entry.set_name)
        assert entry.level in recipe.references
        assert (RECIPES_DIR / f"{entry.set_name}.yaml").is_file()


def test_docs_list_every_set():
    document = load_manifest()
    assert (REPO / "docs/datasets.md").read_text() == render(document), "run: lambench data list --markdown > docs/datasets.md"


def rebuild_subset(recipe: str, level: str, frames: int, tmp_path: Path) -> Path:
    out = tmp_path / recipe
    done = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "data", "build", recipe, "--levels", level, "--frames", str(frames),
         "--out", str(out), "--cache", str(tmp_path / "cache"), "--workers", "2"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out / f"{level}.extxyz"


def assert_same_labels(rebuilt: Path, shipped_file: Path, frames: int, force_atol: float = 1e-4) -> None:
    fresh = read(rebuilt, index=":")
    stored = read(shipped_file, index=f":{frames}")
    assert len(fresh) == frames
    for new, old in zip(fresh, stored, strict=True):
        assert new.info["frame_id"] == old.info["frame_id"]
        np.testing.assert_allclose(new.positions, old.positions, atol=1e-7)
        assert abs(new.get_potential_energy() - old.get_potential_energy()) / len(new) < 1e-5
        np.testing.assert_allclose(new.get_forces(), old.get_forces(), atol=force_atol)


@pytest.mark.slow
def test_pyscf_recipe_reproduces_shipped_labels(tmp_path):
    rebuilt = rebuild_subset("molecules_small", "pbe", 2, tmp_path)
    assert_same_labels(rebuilt, SETS / "molecules_small/pbe.extxyz", 2)


@pytest.mark.slow
def test_quantum_espresso_recipe_reproduces_shipped_labels(tmp_path):
    rebuilt = rebuild_subset("si_bulk", "pbe", 2, tmp_path)
    # pw.x is not bit-reproducible run to run (timing-dependent FFT plans); at conv_thr 1e-9 Ry/atom
    # forces differed by up to 1.6e-4 eV/Å; the recipe now asks for 1e-10.
    assert_same_labels(rebuilt, SETS / "si_bulk/pbe.extxyz", 2, force_atol=3e-4)
