"""Bad input: each case stops early with one line naming the file and the field, or is skipped (or
failed) per structure with its reason and counted. Complements test_model_cards.py, test_datasets.py,
test_fetch.py (archives escaping their target), test_force_field_task.py and test_cli.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.calculators.emt import EMT

from lambench_core.data.checksums import path_sha256
from lambench_core.data.frames import Frame
from lambench_core.data.loaders import load_frames
from lambench_core.data.manifest import load_manifest
from lambench_core.domains import Domain
from lambench_core.errors import InputError, WeightsUnavailableError
from lambench_core.models import ModelCatalog, load_card, load_model
from lambench_core.models.registry import known_families
from lambench_core.tasks.base import _TASKS, task_class
from lambench_core.tasks.force_field import ForceFieldParams, ForceFieldTask
from tests.core.test_datasets import copper_frames, make_set
from tests.core.test_task_context import task_context
from workflows.cli import main

CARD = """\
name: my-model
family: emt
version: "1"
description: test
licence: MIT
level_of_theory: PBE
elements: [H, C, N, O, Cu]
image: img
"""


def write_card(directory: Path, text: str, name: str = "card.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def one_line_error(caught: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- Model cards -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a model card must be a YAML mapping"),
        ("just a string\n", "a model card must be a YAML mapping"),
        ("name: [unclosed\n", "not valid YAML (ParserError)"),
        (CARD.replace("[H, C, N, O, Cu]", "H"), "elements: Input should be a valid list"),
        (CARD.replace('"1"', "1.5"), "version: Input should be a valid string"),
        (CARD + "options: 3\n", "options: Input should be a valid dictionary"),
        (CARD + "capabilities: {stress: maybe}\n", "capabilities.stress: Input should be a valid boolean"),
        (CARD + "capabilities: {fly: true}\n", "capabilities.fly: Extra inputs are not permitted"),
        (CARD.replace("licence: MIT\n", ""), "licence: Field required"),
        (
            CARD + "weights: {location: 'file:///w.bin', size_bytes: lots}\n",
            "weights.size_bytes: Input should be a valid integer",
        ),
        (
            CARD + f"weights: {{location: 'file:///w.bin', sha256: '{'G' * 64}'}}\n",
            "weights.sha256: Value error, must be 64 lowercase hexadecimal characters",
        ),
    ],
)
def test_malformed_card_is_one_line_naming_file_and_field(tmp_path, text, expected):
    path = write_card(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_card(path)
    assert one_line_error(caught).startswith(f"{path}: {expected}")


def test_unknown_family_stops_the_campaign_naming_the_card_file(tmp_path, capsys):
    """Before the fix in ModelCatalog.select, the campaign planned and ran, failing every job."""
    cards = tmp_path / "cards"
    path = write_card(cards, CARD.replace("family: emt", "family: nosuchfamily"))
    code = main(
        ["run", "--models", "my-model", "--tasks", "s22", "--cards", str(cards), "--workdir", str(tmp_path / "work")]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    families = ", ".join(known_families())
    assert line == f"lambench: error: {path}: family: unknown model family 'nosuchfamily' (known: {families})"
    assert not (tmp_path / "work" / "runs").exists()  # stopped before anything ran


def test_a_broken_card_in_a_cards_directory_stops_the_cli_with_one_line(tmp_path, capsys):
    cards = tmp_path / "cards"
    path = write_card(cards, CARD.replace("[H, C, N, O, Cu]", "H"), "broken.yaml")
    code = main(
        ["run", "--models", "dummy", "--tasks", "s22", "--cards", str(cards), "--workdir", str(tmp_path / "work")]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == [f"lambench: error: {path}: elements: Input should be a valid list"]


def test_local_weights_file_missing(tmp_path):
    weights = tmp_path / "gone.json"
    card = load_card(
        write_card(
            tmp_path,
            CARD.replace("family: emt", "family: dummy")
            + f"weights: {{location: 'file://{weights}', sha256: '{'0' * 64}'}}\n",
        )
    )
    with pytest.raises(WeightsUnavailableError) as caught:
        load_model(card, Domain.MOLECULES, "cpu")
    assert one_line_error(caught) == f"model my-model: weights not found at {weights}; they come from file://{weights}"


# --- Dataset manifests -------------------------------------------------------------------------


def edit_entry(manifest: Path, **changes) -> Path:
    raw = yaml.safe_load(manifest.read_text())
    entry = raw["datasets"][0]
    for key, value in changes.items():
        if value is None:
            entry.pop(key)
        else:
            entry[key] = value
    manifest.write_text(yaml.safe_dump(raw))
    return manifest


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"files": [{"path": "cu.extxyz", "sha256": "xyz"}]},
            "datasets[cu_emt].files.0.sha256: Value error, must be 64 lowercase hexadecimal characters",
        ),
        (
            {"files": [{"path": "cu.extxyz", "sha256": "A" * 64}]},
            "datasets[cu_emt].files.0.sha256: Value error, must be 64 lowercase hexadecimal characters",
        ),
        ({"files": [{"sha256": "0" * 64}]}, "datasets[cu_emt].files.0.path: Field required"),
        ({"source": None}, "datasets[cu_emt].source: Field required"),
        ({"licence": None}, "datasets[cu_emt].licence: Field required"),
        ({"level_of_theory": None}, "datasets[cu_emt].level_of_theory: Field required"),
        ({"format": None}, "datasets[cu_emt].format: Field required"),
        ({"colour": "blue"}, "datasets[cu_emt].colour: Extra inputs are not permitted"),
        ({"n_frames": "many"}, "datasets[cu_emt].n_frames: Input should be a valid integer"),
        ({"labels": []}, "datasets[cu_emt]: Value error, a force-field set names its labels"),
    ],
)
def test_malformed_manifest_entry_is_one_line_naming_file_and_field(tmp_path, changes, expected):
    manifest = edit_entry(make_set(tmp_path), **changes)
    with pytest.raises(InputError) as caught:
        load_manifest(manifest)
    assert one_line_error(caught).startswith(f"{manifest}: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n", "(top level): Input should be a valid dictionary"),
        ("datasets: {}\n", "datasets: Input should be a valid list"),
        ("colour: 1\n", "colour: Extra inputs are not permitted"),
        ("datasets: [unclosed\n", "not valid YAML (ParserError)"),
    ],
)
def test_manifest_that_is_not_a_manifest(tmp_path, text, expected):
    manifest = tmp_path / "datasets.yaml"
    manifest.write_text(text)
    with pytest.raises(InputError) as caught:
        load_manifest(manifest)
    assert one_line_error(caught).startswith(f"{manifest}: {expected}")


def test_manifest_not_found(tmp_path):
    with pytest.raises(InputError) as caught:
        load_manifest(tmp_path / "nope.yaml")
    assert one_line_error(caught) == f"{tmp_path / 'nope.yaml'}: dataset manifest not found"


def test_duplicate_dataset_name(tmp_path):
    manifest = make_set(tmp_path)
    raw = yaml.safe_load(manifest.read_text())
    raw["datasets"].append(raw["datasets"][0])
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as caught:
        load_manifest(manifest)
    assert one_line_error(caught) == f"{manifest}: datasets.1.name: duplicate dataset 'cu_emt'"


# --- Data files (consistent checksums, inconsistent content) -----------------------------------


def repinned(manifest: Path) -> Path:
    """Re-pin the files' checksums, so the loader reads what the checksum would otherwise refuse."""
    raw = yaml.safe_load(manifest.read_text())
    for entry in raw["datasets"]:
        for dataset_file in entry["files"]:
            dataset_file["sha256"] = path_sha256(manifest.parent / dataset_file["path"])
    manifest.write_text(yaml.safe_dump(raw))
    return manifest


def load_error(manifest: Path) -> str:
    document = load_manifest(manifest)
    with pytest.raises(InputError) as caught:
        load_frames(document, document.get("cu_emt"))
    return one_line_error(caught)


def rewrite(path: Path, edit) -> None:
    path.write_text("\n".join(edit(line) for line in path.read_text().splitlines()) + "\n")


def test_extxyz_truncated_mid_frame(tmp_path):
    """Before the fix in load_frames, ASE's XYZError escaped with a traceback."""
    manifest = make_set(tmp_path)
    data = tmp_path / "cu.extxyz"
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:-3]))
    assert load_error(repinned(manifest)) == (
        f"{manifest}: datasets[cu_emt].files.0: {data} cannot be read as extxyz: "
        "XYZError: ase.io.extxyz: Frame has 5 atoms, expected 8"
    )


def test_extxyz_truncated_without_repinning_is_a_checksum_error(tmp_path):
    manifest = make_set(tmp_path)
    data = tmp_path / "cu.extxyz"
    data.write_bytes(data.read_bytes()[:-100])
    assert re.fullmatch(
        rf"{re.escape(str(manifest))}: datasets\[cu_emt\]\.files\.0\.sha256: {re.escape(str(data))} has sha256 "
        r"[0-9a-f]{64}, the manifest pins [0-9a-f]{64}",
        load_error(manifest),
    )


def test_extxyz_forces_of_the_wrong_shape(tmp_path):
    manifest = make_set(tmp_path)

    def two_components(line: str) -> str:
        if "Properties=" in line:
            return line.replace("forces:R:3", "forces:R:2")
        return " ".join(line.split()[:-1]) if line.startswith("Cu") else line

    rewrite(tmp_path / "cu.extxyz", two_components)
    assert load_error(repinned(manifest)) == (
        f"{manifest}: datasets[cu_emt].files: frame cu-0: forces have shape (8, 2), expected (8, 3)"
    )


def test_label_promised_by_the_manifest_but_absent_from_the_file(tmp_path):
    manifest = make_set(tmp_path)

    def no_forces(line: str) -> str:
        if "Properties=" in line:
            return line.replace(":forces:R:3", "")
        return " ".join(line.split()[:4]) if line.startswith("Cu") else line

    rewrite(tmp_path / "cu.extxyz", no_forces)
    assert load_error(repinned(manifest)) == f"{manifest}: datasets[cu_emt].labels: frame cu-0 lacks forces"


def test_empty_extxyz_set(tmp_path):
    manifest = make_set(tmp_path)
    (tmp_path / "cu.extxyz").write_text("")
    assert load_error(repinned(manifest)) == f"{manifest}: datasets[cu_emt].files: the files hold no frames"


def test_deepmd_set_with_no_frames(tmp_path):
    manifest = make_set(tmp_path, "deepmd/npy")
    for array in (tmp_path / "cu_npy" / "set.000").iterdir():
        np.save(array, np.load(array)[:0])
    assert load_error(repinned(manifest)) == (
        f"{manifest}: datasets[cu_emt].files.0: {tmp_path / 'cu_npy'} cannot be read as deepmd/npy: "
        "ValueError: cannot reshape array of size 0 into shape (0,newaxis,3)"
    )


def test_deepmd_label_array_missing(tmp_path):
    manifest = make_set(tmp_path, "deepmd/npy")
    (tmp_path / "cu_npy" / "set.000" / "energy.npy").unlink()
    assert load_error(repinned(manifest)) == (
        f"{manifest}: datasets[cu_emt].files.0: {tmp_path / 'cu_npy'} cannot be read as deepmd/npy: "
        "DataError: energies not found in data"
    )


@pytest.mark.parametrize(
    ("array", "cut", "reason"),
    [
        ("force.npy", lambda a: a[:, :-3], "ValueError: cannot reshape array of size 84 into shape (4,8,3)"),
        ("coord.npy", lambda a: a[:, :12], "DataError: Shape of coords is (4, 4, 3), but expected (4, 8, 3)"),
    ],
)
def test_deepmd_arrays_of_inconsistent_shapes(tmp_path, array, cut, reason):
    manifest = make_set(tmp_path, "deepmd/npy")
    path = tmp_path / "cu_npy" / "set.000" / array
    np.save(path, cut(np.load(path)))
    assert load_error(repinned(manifest)) == (
        f"{manifest}: datasets[cu_emt].files.0: {tmp_path / 'cu_npy'} cannot be read as deepmd/npy: {reason}"
    )


@pytest.mark.parametrize("with_stress", [True, False])
def test_periodic_frame_with_a_zero_volume_cell_is_refused(tmp_path, with_stress):
    """Before the fix: with stress, ASE's bare ValueError; without, the crystal scored as a molecule."""
    frames = copper_frames()
    frames[1].set_cell(np.zeros((3, 3)))
    frames[1].pbc = True
    labels = ["energy", "forces", "virial"] if with_stress else ["energy", "forces"]
    if not with_stress:
        for atoms in frames:
            atoms.calc.results.pop("stress")
    manifest = make_set(tmp_path, frames=frames, labels=labels)
    assert load_error(manifest) == (
        f"{manifest}: datasets[cu_emt].files: frame cu-1: periodic cell (pbc [True, True, True]) has zero volume"
    )


def test_flat_periodic_cell_is_refused(tmp_path):
    frames = copper_frames()
    frames[0].cell[2] = frames[0].cell[0] + frames[0].cell[1]  # three vectors in one plane
    manifest = make_set(tmp_path, frames=frames, labels=["energy", "forces"])
    assert load_error(manifest).endswith("frame cu-0: periodic cell (pbc [True, True, True]) has zero volume")


# --- Per-structure problems in a task: skipped or failed, with the reason, and counted ----------


def emt_model():
    return load_model(ModelCatalog.load().get("emt"), Domain.INORGANIC_MATERIALS, "cpu")


def labelled(atoms: Atoms, frame_id: str) -> Frame:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return Frame(frame_id, atoms, atoms.get_potential_energy(), atoms.get_forces(), None)


@pytest.mark.parametrize("periodic", [False, True])
def test_overlapping_atoms_fail_that_frame_with_the_pair_named(periodic):
    """Before the fix in _predict, the model was called and the frame scored as a number."""
    good = labelled(copper_frames(1)[0], "good")
    if periodic:
        bad_atoms = copper_frames(1)[0]
        bad_atoms.positions[3] = bad_atoms.positions[2] + bad_atoms.cell[0]  # the same site, one image over
    else:
        bad_atoms = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5, 0, 0]])
    bad = Frame("bad", bad_atoms, -1.0, np.zeros((len(bad_atoms), 3)), None)
    output = ForceFieldTask().run(emt_model(), [good, bad, good], ForceFieldParams(), task_context())
    (issue,) = output.issues
    pair = "2 and 3" if periodic else "1 and 2"
    assert (issue.item, issue.kind, issue.reason) == (
        "bad",
        "failed",
        f"FrameFailure: atoms {pair} overlap (0.000 Å apart)",
    )
    assert output.n_items == 3 and output.n_scored == 2 and len(output.records) == 2


def test_unsupported_elements_are_skipped_per_structure_and_counted():
    frames = [
        labelled(copper_frames(1)[0], "cu"),
        Frame("lif", Atoms("LiF", positions=[[0, 0, 0], [1.6, 0, 0]]), -1.0, np.zeros((2, 3)), None),
    ]
    output = ForceFieldTask().run(emt_model(), frames, ForceFieldParams(), task_context())
    (issue,) = output.issues
    assert (issue.item, issue.kind, issue.reason) == ("lif", "skipped", "model lacks element(s) F, Li")
    assert output.n_items == 2 and output.n_scored == 1


# --- Absurd parameter values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"vacuum_padding": 1e6}, "vacuum_padding", "Input should be less than or equal to 100"),
        ({"vacuum_padding": 0}, "vacuum_padding", "Input should be greater than 0"),
        ({"max_frames": -3}, "max_frames", "Input should be greater than 0"),
        ({"vacuum_padding": "wide"}, "vacuum_padding", "Input should be a valid number"),
    ],
)
def test_absurd_force_field_params_name_the_field(params, field, message):
    with pytest.raises(ValueError) as caught:
        ForceFieldParams.model_validate(params)
    assert f"\n{field}\n  {message}" in str(caught.value)


def test_every_task_refuses_an_unknown_parameter():
    task_class("force_field")  # registers the built-in tasks
    for name, task in sorted(_TASKS.items()):
        with pytest.raises(ValueError) as caught:
            task.Params.model_validate({"colour": "blue"})
        assert "\ncolour\n  Extra inputs are not permitted" in str(caught.value), name


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--workers", "0"], "lambench: error: --workers must be ≥ 1 and --timeout > 0"),
        (["--timeout", "-5"], "lambench: error: --workers must be ≥ 1 and --timeout > 0"),
    ],
)
def test_absurd_run_options_are_one_line(tmp_path, capsys, argv, expected):
    assert main(["run", "--models", "dummy", "--tasks", "s22", "--workdir", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [expected]


def test_negative_bootstrap_is_one_line(tmp_path, capsys):
    code = main(["run", "--models", "dummy", "--tasks", "s22", "--workdir", str(tmp_path), "--bootstrap", "-1"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == ["lambench: error: --bootstrap must be ≥ 0 (0: no intervals)"]


def test_absurd_confidence_is_one_line(tmp_path, capsys):
    assert main(["aggregate", str(tmp_path / "t.json"), "--confidence", "2"]) == 2
    assert capsys.readouterr().err.strip() == "lambench: error: --confidence must lie between 0 and 1"
