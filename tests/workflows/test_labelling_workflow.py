"""The labelling workflow as `lambench data build` runs it: a dflow DAG with a real reference code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from lambench_core.data.labelling.recipe import LabelCache, frame_key, generate_frames, load_recipe
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_manifest
from tests.reliability.test_dag_inputs import HOSTILE_NAME

REPO = Path(__file__).resolve().parents[2]

RECIPE = {
    "name": "tiny_h2",
    "domain": "molecules",
    "description": "H2 and H3+ test frames",
    "seed": 7,
    "chunk_size": 1,
    "systems": [
        {"name": "h2", "structure": {"builder": "molecule", "args": {"name": "H2"}},
         "generators": [{"generator": "rattle", "count": 2, "params": {"sigma": [0.02, 0.05]}},
                        {"generator": "stretch", "count": 1, "params": {"anchor": 0, "moving": 1, "distance": [1.4, 1.4]}}]},
    ],
    "references": {
        "lda": {"code": "pyscf", "settings": {"xc": "LDA", "basis": "sto-3g", "density_fitting": False, "auxbasis": None}},
    },
}


def build(recipe: Path, out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", "data", "build", str(recipe), "--out", str(out), "--cache", str(cache), *extra],
        capture_output=True, text=True, timeout=600, cwd=out.parent, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny_h2.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def test_generation_is_deterministic(recipe_file):
    recipe = load_recipe(str(recipe_file))
    first, second = generate_frames(recipe), generate_frames(recipe)
    assert [a.info["frame_id"] for a in first] == ["h2-rattle-000", "h2-rattle-001", "h2-stretch-000"]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert first[2].get_distance(0, 1) == pytest.approx(1.4)


def test_build_labels_assembles_and_reruns_only_what_is_missing(recipe_file, tmp_path):
    out, cache = tmp_path / "tiny_h2", tmp_path / "cache"
    first = build(recipe_file, out, cache)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "0 already in the cache" in first.stdout and "3 labelling step(s)" in first.stdout
    frames = read(out / "lda.extxyz", index=":")
    assert len(frames) == 3 and all(np.isfinite(a.get_potential_energy()) for a in frames)

    # The entry is a valid manifest entry whose checksum verifies and whose dummy errors are set.
    manifest = tmp_path / "datasets.yaml"
    manifest.write_text(yaml.safe_dump({"include": ["tiny_h2/*.entry.yaml"]}))
    document = load_manifest(manifest)
    entry = document.get("tiny_h2_lda")
    assert entry.group == "tiny_h2" and entry.level == "lda" and entry.dummy_errors is not None
    loaded, _ = load_frames(document, entry)
    assert [f.frame_id for f in loaded] == ["h2-rattle-000", "h2-rattle-001", "h2-stretch-000"]
    provenance = (out / "provenance_lda.json").read_text()
    assert '"xc": "LDA"' in provenance and "pyscf" in provenance

    again = build(recipe_file, out, cache)
    assert again.returncode == 0 and "3 already in the cache" in again.stdout and "0 labelling step(s)" in again.stdout

    recipe = load_recipe(str(recipe_file))
    lost = frame_key(recipe.references["lda"], generate_frames(recipe)[1])
    (cache / f"{lost}.json").unlink()
    third = build(recipe_file, out, cache)
    assert third.returncode == 0 and "2 already in the cache" in third.stdout and "1 labelling step(s)" in third.stdout
    assert LabelCache(cache).get(lost) is not None


def test_a_build_whose_every_path_is_hostile_labels_and_executes_nothing(recipe_file, tmp_path):
    """The plan file's path is the only parameter of every labelling step, encoded; the steps'
    temporary directories (under the work directory) are data in their scripts too."""
    hostile = tmp_path / HOSTILE_NAME
    hostile.mkdir()
    out, cache = hostile / "tiny_h2", hostile / "cache"
    done = build(recipe_file, out, cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(read(out / "lda.extxyz", index=":")) == 3
    assert not list(tmp_path.rglob("PWNED")) and not (REPO / "PWNED").exists()
    scripts = list(hostile.rglob("script"))
    assert len(scripts) >= 5 and not any("O'Brien" in path.read_text() for path in scripts)


def test_unknown_recipe_and_bad_recipe(tmp_path):
    done = subprocess.run([sys.executable, "-m", "workflows.cli", "data", "build", "nosuch"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "recipe not found" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**RECIPE, "seed": "x"}))
    done = subprocess.run([sys.executable, "-m", "workflows.cli", "data", "build", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and f"{bad}: seed" in done.stderr
