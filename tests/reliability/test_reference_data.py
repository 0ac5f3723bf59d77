"""Reference data checked where it is loaded: frames that scoring cannot survive (non-finite labels,
positions or cells, frames with no atoms, two frames under one id) stop with one line naming the
manifest, the file and the frame/field; a label set of a group that is missing is an error naming
the level and the file, never a silent fallback to another level of theory; a manifest entry whose
file is missing names the file instead of making its task vanish."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from lambench_core.campaign import CampaignContext, CampaignSpec, execute_job, plan_campaign
from lambench_core.data.checksums import path_sha256
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_datasets, load_manifest
from lambench_core.errors import InputError
from lambench_core.results import ResultStore, Status
from lambench_core.tasks.suite import TaskSuite
from tests.core.test_datasets import copper_frames, make_set
from workflows.cli import main

FINITE = "(positions, cell and labels must be finite numbers)"


def one_line(caught: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def load_error(manifest: Path, name: str = "cu_emt") -> str:
    document = load_manifest(manifest)
    with pytest.raises(InputError) as caught:
        load_frames(document, document.get(name))
    return one_line(caught)


# --- Frames: one line naming the manifest, the file, the frame and the field -------------------


def _nan_energy(frames):
    frames[2].calc.results["energy"] = float("nan")


def _inf_force(frames):
    frames[1].calc.results["forces"][3, 1] = np.inf


def _nan_position(frames):
    frames[0].positions[5, 2] = np.nan


def _inf_stress(frames):
    frames[3].calc.results["stress"][0] = np.inf


def _no_atoms(frames):
    empty = Atoms(cell=frames[0].cell, pbc=True)
    empty.calc = SinglePointCalculator(empty, energy=0.0, forces=np.zeros((0, 3)), stress=np.zeros(6))
    empty.info["frame_id"] = "cu-empty"
    frames.append(empty)


def _duplicate_id(frames):
    frames[3].info["frame_id"] = "cu-1"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_nan_energy, f"frame cu-2: energy is nan {FINITE}"),
        (_inf_force, f"frame cu-1: forces[3, 1] is inf {FINITE}"),
        (_nan_position, f"frame cu-0: positions[5, 2] is nan {FINITE}"),
        (_inf_stress, f"frame cu-3: virial[0, 0] is -inf {FINITE}"),
        (_no_atoms, "frame cu-empty: has no atoms"),
        (_duplicate_id, "frame cu-1: duplicate frame id (it appears earlier in the same file); frame ids must be unique"),
    ],
    ids=["nan-energy", "inf-force", "nan-position", "inf-stress", "no-atoms", "duplicate-id"],
)
def test_a_frame_scoring_cannot_survive_is_one_line_naming_file_frame_and_field(tmp_path, edit, expected):
    """Before: the frame was scored (NaN metrics: the set showed as missing) or, for a duplicate id,
    its records were resampled as one (the interval narrowed)."""
    frames = copper_frames()
    edit(frames)
    manifest = make_set(tmp_path, frames=frames)
    assert load_error(manifest) == f"{manifest}: datasets[cu_emt].files.0: {tmp_path / 'cu.extxyz'}: {expected}"


@pytest.mark.parametrize(
    ("array", "row", "field"),
    [("energy.npy", (1,), "energy"), ("force.npy", (2, 5), "forces[1, 2]"), ("coord.npy", (0, 4), "positions[1, 1]")],
)
def test_non_finite_values_in_a_deepmd_set_name_the_system_frame_and_field(tmp_path, array, row, field):
    manifest = make_set(tmp_path, "deepmd/npy")
    path = tmp_path / "cu_npy" / "set.000" / array
    values = np.load(path)
    values[row] = np.nan
    np.save(path, values)
    _repin(manifest)
    message = load_error(manifest)
    assert message == (
        f"{manifest}: datasets[cu_emt].files.0: {tmp_path / 'cu_npy'}: frame cu_emt:cu_npy:{row[0]}: "
        f"{field} is nan {FINITE}"
    )


def test_one_frame_id_in_two_files_names_both(tmp_path):
    manifest = make_set(tmp_path)
    shutil.copy(tmp_path / "cu.extxyz", tmp_path / "again.extxyz")
    raw = yaml.safe_load(manifest.read_text())
    entry = raw["datasets"][0]
    entry["files"].append({"path": "again.extxyz", "sha256": path_sha256(tmp_path / "again.extxyz")})
    entry["n_frames"] = 8
    manifest.write_text(yaml.safe_dump(raw))
    assert load_error(manifest) == (
        f"{manifest}: datasets[cu_emt].files.1: {tmp_path / 'again.extxyz'}: frame cu-0: "
        "duplicate frame id (it appears in files.0 too); frame ids must be unique"
    )


def test_every_shipped_set_loads_with_unique_ids_and_finite_values():
    """The check found two pairs of sic_bulk frames under one id (Si and C vacancies, numbered by
    generator); the recipe now numbers each generator kind through its system."""
    document = load_manifest()
    for entry in document.entries():
        if document.is_present(entry) and entry.format != "directory":
            frames, _ = load_frames(document, entry)
            assert len({frame.frame_id for frame in frames}) == len(frames), entry.name


def test_a_bad_set_fails_only_its_own_jobs_with_the_line_and_the_rest_is_scored(tmp_path):
    frames = copper_frames()
    _nan_energy(frames)
    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    bad = make_set(tmp_path / "bad", frames=frames, name="cu_bad")
    good = make_set(tmp_path / "good")
    raw = yaml.safe_load(good.read_text())
    entry = yaml.safe_load(bad.read_text())["datasets"][0]
    entry["files"][0]["path"] = str(tmp_path / "bad" / "cu.extxyz")
    raw["datasets"].append(entry)
    good.write_text(yaml.safe_dump(raw))
    store = ResultStore.open(tmp_path / "store")
    spec = CampaignSpec(
        campaign_id="t", models=["emt"], tasks=["force_field/cu_emt", "force_field/cu_bad"],
        store=str(tmp_path / "store"), manifest=str(good),
    )
    plan = plan_campaign(spec, store)
    results = {job.instance.name: execute_job(spec, job) for job in plan.to_run}
    failed = results["force_field/cu_bad"]
    assert failed.status == Status.FAILED and failed.error == (
        f"{good}: datasets[cu_bad].files.0: {tmp_path / 'bad' / 'cu.extxyz'}: frame cu-2: energy is nan {FINITE}"
    )
    assert results["force_field/cu_emt"].status == Status.SUCCEEDED
    for result in results.values():
        store.put(result)
    again = plan_campaign(spec, store)  # the scored job is kept; only the bad set's job runs again
    assert [job.instance.name for job in again.to_run] == ["force_field/cu_bad"]


# --- Label sets of a group, and files a manifest lists ------------------------------------------

WB97_CARD = """\
name: emt-wb97
family: emt
version: "1"
description: an EMT stand-in trained at another level of theory
licence: MIT
level_of_theory: wB97
levels: {inorganic_materials: wb97}
elements: [Cu]
image: img
"""


def two_level_group(tmp_path: Path, wb97: str = "present") -> Path:
    """A group `cu` with a pbe and a wb97 label set; the wb97 one present, its file deleted, or never
    fetched (no files, a download URL)."""
    manifest = make_set(tmp_path, name="cu_pbe", group="cu", level="pbe")
    raw = yaml.safe_load(manifest.read_text())
    other = dict(raw["datasets"][0], name="cu_wb97", level="wb97")
    shutil.copy(tmp_path / "cu.extxyz", tmp_path / "cu_wb97.extxyz")
    other["files"] = [{"path": "cu_wb97.extxyz", "sha256": path_sha256(tmp_path / "cu_wb97.extxyz")}]
    if wb97 == "deleted":
        (tmp_path / "cu_wb97.extxyz").unlink()
    elif wb97 == "never fetched":
        other["files"] = []
        other["download_url"] = "https://example.org/cu_wb97.tar.gz"
    raw["datasets"].append(other)
    manifest.write_text(yaml.safe_dump(raw))
    return manifest


def wb97_spec(tmp_path: Path, manifest: Path, models=("emt-wb97",)) -> CampaignSpec:
    cards = tmp_path / "cards"
    cards.mkdir(exist_ok=True)
    (cards / "emt-wb97.yaml").write_text(WB97_CARD)
    return CampaignSpec(
        campaign_id="t", models=list(models), tasks=["force_field/cu"], store=str(tmp_path / "store"),
        manifest=str(manifest), cards_dirs=[str(cards)],
    )


def test_a_present_group_scores_each_model_on_its_own_level(tmp_path):
    spec = wb97_spec(tmp_path, two_level_group(tmp_path), models=("emt", "emt-wb97"))
    plan = plan_campaign(spec, ResultStore.open(spec.store))
    assert {job.model: job.dataset for job in plan.to_run} == {"emt": "cu_pbe", "emt-wb97": "cu_wb97"}


@pytest.mark.parametrize(
    ("wb97", "field", "reason"),
    [
        ("deleted", "datasets[cu_wb97].files.0.path", "{path} does not exist"),
        ("never fetched", "datasets[cu_wb97].files", "not on this machine; run `lambench data fetch cu_wb97`"),
    ],
)
def test_a_missing_label_set_of_a_group_is_an_error_naming_level_and_file_not_a_fallback(tmp_path, wb97, field, reason):
    """Before: the wb97 model was scored on the pbe labels, silently."""
    manifest = two_level_group(tmp_path, wb97)
    spec = wb97_spec(tmp_path, manifest)
    expected = (
        f"{manifest}: {field}: the wb97 label set of cu is missing: "
        + reason.format(path=tmp_path / "cu_wb97.extxyz")
        + " (a model at level wb97 is scored on it, never on another level of theory instead)"
    )
    with pytest.raises(InputError) as caught:
        plan_campaign(spec, ResultStore.open(spec.store))
    assert one_line(caught) == expected
    # Models at the level that is here are planned and scored as before.
    plan = plan_campaign(spec.model_copy(update={"models": ["emt"]}), ResultStore.open(spec.store))
    assert [job.dataset for job in plan.to_run] == ["cu_pbe"]


def test_the_cli_stops_with_one_line_before_anything_runs(tmp_path, capsys):
    manifest = two_level_group(tmp_path, "deleted")
    spec = wb97_spec(tmp_path, manifest)
    code = main([
        "run", "--models", "emt-wb97", "--tasks", "force_field/cu", "--cards", spec.cards_dirs[0],
        "--manifest", str(manifest), "--workdir", str(tmp_path / "work"), "--bootstrap", "0",
    ])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"lambench: error: {manifest}: datasets[cu_wb97].files.0.path: the wb97 label set of cu")
    assert str(tmp_path / "cu_wb97.extxyz") in line
    assert not list((tmp_path / "work").rglob("results/*.json"))  # stopped before anything ran


def test_a_manifest_entry_whose_file_is_missing_keeps_its_task_and_names_the_file(tmp_path):
    """Before: the set was 'not on this machine', its task vanished from the suite, and asking for it
    said `unknown task`."""
    manifest = make_set(tmp_path)
    (tmp_path / "cu.extxyz").unlink()
    document = load_datasets(manifest)
    assert "force_field/cu_emt" in TaskSuite.default(document).names()
    spec = CampaignSpec(
        campaign_id="t", models=["emt"], tasks=["force_field/cu_emt"], store=str(tmp_path / "store"),
        manifest=str(manifest),
    )
    with pytest.raises(InputError) as caught:
        plan_campaign(spec, ResultStore.open(spec.store))
    assert one_line(caught) == (
        f"{manifest}: datasets[cu_emt].files.0.path: the pbe label set of cu_emt is missing: "
        f"{tmp_path / 'cu.extxyz'} does not exist (a model at level pbe is scored on it, never on another "
        "level of theory instead)"
    )
    # A set that was never fetched stays out of the suite, as before (nothing was meant to be here).
    raw = yaml.safe_load(manifest.read_text())
    raw["datasets"][0]["files"] = []
    raw["datasets"][0]["download_url"] = "https://example.org/cu.tar.gz"
    manifest.write_text(yaml.safe_dump(raw))
    assert "force_field/cu_emt" not in CampaignContext(spec).suite.names()


def test_a_model_at_a_level_the_group_lacks_falls_back_to_pbe_and_a_missing_pbe_is_named(tmp_path):
    """A level the group has no label set for is scored on PBE (documented); if the PBE set itself
    is missing, that is named too."""
    manifest = two_level_group(tmp_path)
    card = WB97_CARD.replace("emt-wb97", "emt-r2scan").replace("wb97}", "r2scan}")
    spec = wb97_spec(tmp_path, manifest, models=("emt-r2scan",))
    (Path(spec.cards_dirs[0]) / "emt-r2scan.yaml").write_text(card)
    (job,) = plan_campaign(spec, ResultStore.open(spec.store)).to_run
    assert job.dataset == "cu_pbe"
    (tmp_path / "cu.extxyz").unlink()
    with pytest.raises(InputError) as caught:
        plan_campaign(spec, ResultStore.open(spec.store))
    assert one_line(caught).startswith(
        f"{manifest}: datasets[cu_pbe].files.0.path: the pbe label set of cu is missing: {tmp_path / 'cu.extxyz'} "
        "does not exist (a model at level r2scan is scored on it"
    )


def _repin(manifest: Path) -> None:
    raw = yaml.safe_load(manifest.read_text())
    for entry in raw["datasets"]:
        for dataset_file in entry["files"]:
            dataset_file["sha256"] = path_sha256(manifest.parent / dataset_file["path"])
    manifest.write_text(yaml.safe_dump(raw))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: x\n\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 8)"),
        (b"name: [unclosed\n", "not valid YAML"),
    ],
)
def test_an_included_entry_that_is_not_utf8_or_yaml_names_its_own_file(tmp_path, content, expected):
    entries = tmp_path / "sets"
    entries.mkdir()
    (entries / "bad.entry.yaml").write_bytes(content)
    manifest = tmp_path / "datasets.yaml"
    manifest.write_text(yaml.safe_dump({"include": ["sets/*.entry.yaml"]}))
    with pytest.raises(InputError) as raised:
        load_manifest(manifest)
    assert str(entries / "bad.entry.yaml") in str(raised.value) and expected in str(raised.value)
