"""Tasks get a TaskContext (the campaign's manifest and catalog, device, dtype, progress) and read only
the input they declare; nothing below the CLI loads the built-in manifest.

`task_context()` is the context the task tests run tasks with: the built-in manifest and catalog,
chosen here, above the library.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from lambench_core.campaign import CampaignContext, CampaignSpec, execute_job
from lambench_core.categories import Category
from lambench_core.data.labelling.generators import GeneratorSpec, generate
from lambench_core.data.manifest import BUILTIN_MANIFEST, load_datasets
from lambench_core.domains import Domain
from lambench_core.hashing import sha256_file
from lambench_core.models import ModelCatalog
from lambench_core.results.record import Status
from lambench_core.tasks.base import (
    _TASKS,
    DirectoryTask,
    FramesTask,
    ProgressCallback,
    StandaloneTask,
    TaskContext,
    TaskInput,
    no_progress,
    task_class,
)
from lambench_core.tasks.efficiency import EfficiencyParams, EfficiencySystem
from lambench_core.tasks.stability import MDStabilityParams, MDSystem
from lambench_core.tasks.suite import TaskInstance

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def _builtin_context() -> TaskContext:
    return TaskContext(manifest=load_datasets(BUILTIN_MANIFEST), catalog=ModelCatalog.load())


def task_context(progress: ProgressCallback = no_progress) -> TaskContext:
    """The built-in manifest and catalog, with `progress`."""
    return dataclasses.replace(_builtin_context(), progress=progress)


# --- the bug: a campaign's own manifest ----------------------------------------------------------


def campaign_manifest(tmp_path: Path) -> tuple[Path, str]:
    """A manifest whose cu_bulk_pbe differs from the built-in one in frame 0 (one atom fewer, its own
    id); returns the manifest and that frame's id."""
    builtin = load_datasets(BUILTIN_MANIFEST)
    entry = builtin.get("cu_bulk_pbe")
    frames = read(builtin.file_path(entry, entry.files[0]), index=":", format="extxyz")
    first = frames[0]
    results = first.calc.results
    changed = first[:-1]
    changed.info = {**first.info, "frame_id": "campaign-cu-000"}
    changed.calc = SinglePointCalculator(
        changed, energy=results["energy"] * 3 / 4, forces=results["forces"][:-1], stress=results.get("stress")
    )
    data = tmp_path / "cu_bulk_campaign.extxyz"
    write(data, [changed, *frames[1:]], format="extxyz")
    raw = entry.model_dump(mode="json", exclude_none=True)
    raw["files"] = [{"path": data.name, "sha256": sha256_file(data)}]
    raw.pop("certificate", None)  # other labels: the shipped set's certificate is not theirs
    manifest = tmp_path / "campaign.yaml"
    manifest.write_text(yaml.safe_dump({"datasets": [raw]}, sort_keys=False, allow_unicode=True))
    return manifest, "campaign-cu-000"


@pytest.mark.parametrize(
    ("task", "params", "atoms_key"),
    [
        (
            "md_stability",
            MDStabilityParams(systems=[MDSystem(dataset="cu_bulk_pbe", frame=0)], steps=20, log_interval=2),
            "n_atoms",
        ),
        (
            "efficiency",
            EfficiencyParams(
                systems=[EfficiencySystem(dataset="cu_bulk_pbe", geometry="bulk")],
                min_atoms=3,
                max_atoms=30,
                warmup=0,
                repeats=3,
            ),
            "unit_atoms",
        ),
    ],
)
def test_a_task_computes_on_the_campaign_manifest_its_key_names(tmp_path, task, params, atoms_key):
    """Before the fix, the named-frames lookup read the built-in manifest while the job's key hashed
    the campaign's: the result was keyed on one dataset and computed on another."""
    manifest, frame_id = campaign_manifest(tmp_path)
    spec = CampaignSpec(
        campaign_id="own-manifest", models=["dummy"], tasks=[], store=str(tmp_path / "store"), manifest=str(manifest)
    )
    context = CampaignContext(spec)
    card = context.catalog.get("dummy")
    instance = context.suite.get(task).model_copy(update={"params": params.model_dump(mode="json")})
    job = context.job_for(card, instance)
    builtin = CampaignContext(spec.model_copy(update={"manifest": str(BUILTIN_MANIFEST)}))
    assert job.key != builtin.job_for(card, instance).key  # the key hashes the campaign's cu_bulk_pbe

    result = execute_job(spec, job)

    assert result.status == Status.SUCCEEDED, result.error
    (record,) = result.records
    assert record["frame_id"] == frame_id and record[atoms_key] == 3  # the built-in frame 0 has 4 atoms


# --- the contract -------------------------------------------------------------------------------


def test_every_task_declares_its_input_through_its_base():
    task_class("force_field")  # registers the built-in tasks
    bases = {TaskInput.FRAMES: FramesTask, TaskInput.DIRECTORY: DirectoryTask, TaskInput.NONE: StandaloneTask}
    for name, task in _TASKS.items():
        assert issubclass(task, bases[task.needs]), name
    assert task_class("force_field").needs is TaskInput.FRAMES
    assert task_class("lambench_neb").needs is TaskInput.DIRECTORY
    assert {task_class(n).needs for n in ("efficiency", "md_stability", "s22", "eos_dcdft")} == {TaskInput.NONE}


def test_dummy_values_are_class_data():
    task_class("force_field")
    for name, task in _TASKS.items():
        assert not callable(task.dummy_values), name
        assert set(task.scored_metrics) <= set(task.dummy_values), name


def test_a_directory_task_without_a_dataset_fails_before_its_model_loads(tmp_path):
    spec = CampaignSpec(campaign_id="no-dir", models=["dummy"], tasks=[], store=str(tmp_path / "store"))
    context = CampaignContext(spec)
    card = context.catalog.get("dummy")
    instance = TaskInstance(
        name="lambench_neb", task="lambench_neb", category=Category.PROPERTY, domain=Domain.CATALYSIS, params={}
    )
    job = context.job_for(card, instance)
    result = execute_job(spec, job)
    assert result.status == Status.FAILED
    assert result.error == "task lambench_neb: reads a data directory, and names no dataset"
    assert result.provenance.weights_sha256 is None  # stopped before the model was loaded


def test_the_md_generator_uses_the_catalog_it_is_given():
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    spec = GeneratorSpec(generator="md", count=2, params={"driver": "emt", "interval": 2})
    frames = generate(spec, base, np.random.default_rng(0), catalog=ModelCatalog.load())
    assert len(frames) == 2 and not np.allclose(frames[0].positions, base.positions)
    with pytest.raises(ValueError, match="drives a model"):
        generate(spec, base, np.random.default_rng(0))


def test_the_library_below_the_cli_does_not_import_the_tasks_from_the_data_layer():
    code = (
        "import sys, lambench_core.data.normalization, lambench_core.data.labelling.generators;"
        "print(sorted(m for m in sys.modules if m.startswith('lambench_core.tasks')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
