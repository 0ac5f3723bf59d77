"""lambench_pressure on EMT-relaxed cells: EMT recovers its own volumes; a wrong label's error is known."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.io import write
from ase.optimize import BFGS

from lambench_core.errors import InputError
from lambench_core.tasks.base import task_class
from lambench_core.tasks.pressure import LambenchPressureTask, PressureParams
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import model


def emt_relaxed_under(atoms: Atoms, pressure_gpa: float) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms, scalar_pressure=pressure_gpa * units.GPa), logfile=None).run(fmax=1e-6, steps=300)
    # Under P the enthalpy's cell force vanishes: the stress is −P (ASE's sign, tension positive).
    assert np.allclose(atoms.get_stress()[:3], -pressure_gpa * units.GPa, atol=1e-5)
    atoms.calc = None
    return atoms


@pytest.fixture(scope="module")
def relaxed() -> dict[tuple[str, int], Atoms]:
    structures = {"Cu": bulk("Cu", "fcc", a=3.6), "Al": bulk("Al", "fcc", a=4.05, cubic=True)}
    return {(name, p): emt_relaxed_under(atoms, p) for name, atoms in structures.items() for p in (25, 50)}


def per_atom(atoms: Atoms) -> float:
    return atoms.get_volume() / len(atoms)


def test_pressure_volumes_with_emt(tmp_path: Path, relaxed):
    wrong = relaxed["Cu", 25].copy()
    wrong.set_cell(wrong.cell * 1.05 ** (1 / 3), scale_atoms=True)  # a label 5% too large in volume
    overlapping = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]], cell=[3.0, 3.0, 3.0], pbc=True)
    write(tmp_path / "P025.traj", [relaxed["Cu", 25], relaxed["Al", 25], wrong, bulk("Si"), overlapping])
    write(tmp_path / "P050.traj", [relaxed["Cu", 50], relaxed["Al", 50]])
    (tmp_path / "notes.txt").write_text("not a pressure file")
    task = task_class("lambench_pressure")()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # EMT on overlapping atoms
        output = task.run(model("emt"), tmp_path, PressureParams(), task_context())
    assert output.n_items == 7
    issues = {issue.item: issue.kind for issue in output.issues}
    assert issues == {"P025:3:Si2": "skipped", "P025:4:Cu2": "failed"}
    records = {r["item"]: r for r in output.records}
    assert set(records) == {"P025:0:Cu", "P025:1:Al4", "P025:2:Cu", "P050:0:Cu", "P050:1:Al4"}
    for item, key in (("P025:0:Cu", ("Cu", 25)), ("P025:1:Al4", ("Al", 25)), ("P050:0:Cu", ("Cu", 50))):
        assert records[item]["pressure_GPa"] == key[1]
        assert records[item]["volume_ref"] == pytest.approx(per_atom(relaxed[key]), rel=1e-12)
        assert records[item]["volume"] == pytest.approx(per_atom(relaxed[key]), abs=2e-3)
    # Cu at 50 GPa is denser than at 25 GPa: the pressure was applied.
    assert per_atom(relaxed["Cu", 50]) < per_atom(relaxed["Cu", 25]) - 0.3
    # The wrong label relaxes back to EMT's volume at 25 GPa: its error is 5% of that volume.
    v25 = per_atom(relaxed["Cu", 25])
    assert records["P025:2:Cu"]["volume_ref"] - records["P025:2:Cu"]["volume"] == pytest.approx(0.05 * v25, abs=2e-3)
    assert output.metrics["volume_mae"].value == pytest.approx(0.05 * v25 / 5, abs=1e-3)
    assert output.metrics["volume_rmse"].value == pytest.approx(0.05 * v25 / np.sqrt(5), abs=1e-3)
    assert output.metrics["volume_mae"].unit == "Å³/atom"
    assert_summarizes(LambenchPressureTask, output, PressureParams())
    assert task.scored_metrics == ("volume_mae",) and task.dummy_values == {"volume_mae": 2.505}


def test_pressure_bad_input(tmp_path: Path):
    task = LambenchPressureTask()
    with pytest.raises(InputError, match="P025.traj"):
        task.run(model("emt"), tmp_path, PressureParams(), task_context())
    (tmp_path / "P075.traj").write_bytes(b"garbage")
    with pytest.raises(InputError, match="P075.traj"):
        task.run(model("emt"), tmp_path, PressureParams(), task_context())


def test_a_cell_collapsing_under_pressure_is_a_failed_item(tmp_path: Path, relaxed):
    # The dummy's stress is zero, so nothing resists the pressure and the cell collapses: the
    # relaxation's volume guard turns that into a failed item, not a scored volume.
    write(tmp_path / "P025.traj", [relaxed["Cu", 25]])
    output = LambenchPressureTask().run(model("dummy"), tmp_path, PressureParams(), task_context())
    assert output.n_items == 1 and not output.records
    (issue,) = output.issues
    assert issue.kind == "failed" and "volume" in issue.reason
    assert output.metrics["volume_mae"].value is None
    assert_summarizes(LambenchPressureTask, output, PressureParams())
