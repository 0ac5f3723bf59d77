"""LAMBench NEB task (OC20NEB-OOD layout) checked against EMT energies computed directly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc100
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from lambench_core.errors import InputError
from lambench_core.tasks.neb import NEBParams, NEBTask
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import emt_energy, model


def hop_path(adsorbate: str, height: float, n_frames: int = 10) -> list[Atoms]:
    """An adatom hopping across a Cu(100) hollow-to-hollow path, with made-up stored DFT energies
    peaking at frame 6 (not the middle frame, where the model's energy peaks)."""
    slab = fcc100("Cu", size=(2, 2, 3), a=3.6, vacuum=6.0)
    add_adsorbate(slab, adsorbate, height, "hollow")
    slab.pbc = True  # as OC20's structures: periodic, with vacuum along z
    step = slab.cell[0] / 2
    stored = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.4, 0.2, -0.1]
    frames = []
    for k in range(n_frames):
        image = slab.copy()
        image.positions[-1] += step * k / (n_frames - 1)
        image.positions[-1, 2] -= 0.2 * np.sin(np.pi * k / (n_frames - 1))
        image.calc = SinglePointCalculator(image, energy=stored[k])
        frames.append(image)
    return frames


def model_barriers(frames: list[Atoms]) -> tuple[float, float]:
    e_is, e_ts, e_fs = emt_energy(frames[0]), emt_energy(frames[6]), emt_energy(frames[-1])
    return e_ts - e_is, e_fs - e_is


# reaction → (adsorbate, height, offset of the Ea label from the model's Ea, of the dE label)
REACTIONS = {
    "desorption_0": ("H", 1.0, 0.05, 0.2),
    "dissociation_0": ("O", 1.2, -0.3, -0.1),
    "transfer_0": ("H", 1.3, 0.02, 0.0),
    "transfer_1": ("N", 1.1, 0.25, 0.3),
}


def neb_directory(root: Path, reactions: dict) -> dict[str, tuple[float, float, float, float]]:
    """Writes the trajectories and label.csv; returns name → (Ea, dE, Ea label, dE label)."""
    values = {}
    for name, (adsorbate, height, ea_offset, de_offset) in reactions.items():
        frames = hop_path(adsorbate, height)
        write(root / f"{name}.traj", frames)
        ea, de = model_barriers(frames)
        values[name] = (ea, de, ea + ea_offset, de + de_offset)
    with (root / "label.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["traj", "Ea", "dE"])
        for name in sorted(values, reverse=True):
            writer.writerow([name, values[name][2], values[name][3]])
    return values


def test_neb_barriers_and_failure_percentages(tmp_path):
    values = neb_directory(tmp_path, REACTIONS)
    # an unknown reaction type: a failed item with its reason
    write(tmp_path / "rotation_0.traj", hop_path("H", 1.0))
    with (tmp_path / "label.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow(["rotation_0", 0.5, 0.0])
    output = NEBTask().run(model("emt"), tmp_path, NEBParams(), task_context())
    assert output.n_items == 5
    assert [r["item"] for r in output.records] == sorted(REACTIONS)
    for record in output.records:
        ea, de, ea_label, de_label = values[record["item"]]
        assert record["ts_index"] == 6
        assert record["ea"] == pytest.approx(ea, abs=1e-9)
        assert record["de"] == pytest.approx(de, abs=1e-9)
        assert (record["ea_ref"], record["de_ref"]) == pytest.approx((ea_label, de_label), abs=1e-12)
    metrics = {name: metric.value for name, metric in output.metrics.items()}
    assert metrics["ea_mae"] == pytest.approx(np.mean([0.05, 0.3, 0.02, 0.25]), abs=1e-9)
    assert metrics["de_mae"] == pytest.approx(np.mean([0.2, 0.1, 0.0, 0.3]), abs=1e-9)
    assert metrics["ea_fail_pct_desorption"] == 0.0
    assert metrics["ea_fail_pct_dissociation"] == 100.0
    assert metrics["ea_fail_pct_transfer"] == 50.0
    assert output.metrics["ea_fail_pct_transfer"].unit == "%"
    assert_summarizes(NEBTask, output, NEBParams())
    (issue,) = output.issues
    assert issue.item == "rotation_0" and issue.kind == "failed" and "unknown reaction type 'rotation'" in issue.reason


def test_a_type_without_reactions_has_no_percentage(tmp_path):
    neb_directory(tmp_path, {"transfer_0": REACTIONS["transfer_0"]})
    output = NEBTask().run(model("emt"), tmp_path, NEBParams(fail_threshold_eV=0.01), task_context())
    assert output.metrics["ea_fail_pct_transfer"].value == 100.0
    assert output.metrics["ea_fail_pct_desorption"].value is None
    assert output.metrics["ea_fail_pct_dissociation"].value is None
    assert_summarizes(NEBTask, output, NEBParams(fail_threshold_eV=0.01))


def test_neb_missing_files_are_named(tmp_path):
    neb_directory(tmp_path, {"transfer_0": REACTIONS["transfer_0"], "desorption_0": REACTIONS["desorption_0"]})
    (tmp_path / "desorption_0.traj").unlink()
    with pytest.raises(InputError, match="desorption_0.traj"):
        NEBTask().run(model("emt"), tmp_path, NEBParams(), task_context())
    (tmp_path / "label.csv").write_text("traj,Ea\ntransfer_0,0.1\n")
    with pytest.raises(InputError, match="dE"):
        NEBTask().run(model("emt"), tmp_path, NEBParams(), task_context())
    (tmp_path / "label.csv").unlink()
    with pytest.raises(InputError, match="label.csv"):
        NEBTask().run(model("emt"), tmp_path, NEBParams(), task_context())
