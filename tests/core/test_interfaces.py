"""LAMBench vacancy, surface, interface and stacking-fault tasks, checked against plain EMT computations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc100, fcc111
from ase.io import write
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.interpolate import PchipInterpolator

from lambench_core.errors import InputError
from lambench_core.tasks.interfaces import (
    InterfaceTask,
    NoParams,
    StackingFaultParams,
    StackingFaultTask,
    SurfaceTask,
    VacancyParams,
    VacancyTask,
)
from tests.core.test_task_context import task_context
from tests.core.test_task_summaries import assert_summarizes
from tests.support.helpers import emt_energy, model

MJ_PER_M2 = 16021.766  # 1 eV/Å² in mJ/m², to 8 digits


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# --- vacancy -----------------------------------------------------------------------------------------


def cu_oxide() -> Atoms:
    """Cu8 with two O in octahedral sites: an arbitrary periodic host for oxygen vacancies."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    atoms += Atoms("O2", positions=[(1.85, 1.85, 1.85), (5.55, 1.85, 1.85)])
    return atoms


def vacancy_directory(root: Path) -> tuple[list[Atoms], list[Atoms], np.ndarray]:
    host = cu_oxide()
    one_o = host.copy()
    del one_o[9]
    no_o = host.copy()
    del no_o[[8, 9]]
    one_cu = host.copy()
    del one_cu[0]  # removes a Cu: not an oxygen vacancy
    pristine = [host, host, host]
    defect = [one_o, no_o, one_cu]
    labels = np.array([1.5, 4.0, 2.0])
    write(root / "vacancy_pristine_structures.traj", pristine)
    write(root / "vacancy_defect_structures.traj", defect)
    np.save(root / "vacancy_evf_label.npy", labels)
    return pristine, defect, labels


def test_vacancy_formation_energy_against_direct_emt(tmp_path):
    pristine, defect, labels = vacancy_directory(tmp_path)
    output = VacancyTask().run(model("emt"), tmp_path, VacancyParams(), task_context())
    o2 = Atoms("O2", positions=[(15, 15, 15 - 0.615), (15, 15, 15 + 0.615)], cell=[30, 30, 30], pbc=True)
    mu_o = emt_energy(o2) / 2
    expected = [emt_energy(defect[i]) + n * mu_o - emt_energy(pristine[i]) for i, n in ((0, 1), (1, 2))]
    assert output.n_items == 3
    assert [r["item"] for r in output.records] == ["0", "1"]
    assert [r["n_oxygen_removed"] for r in output.records] == [1, 2]
    assert [r["value"] for r in output.records] == pytest.approx(expected, abs=1e-9)
    errors = np.array(expected) - labels[:2]
    assert output.metrics["mae"].value == pytest.approx(np.mean(np.abs(errors)), abs=1e-9)
    assert output.metrics["rmse"].value == pytest.approx(np.sqrt(np.mean(errors**2)), abs=1e-9)
    assert output.metrics["mae"].unit == "eV"
    assert_summarizes(VacancyTask, output, VacancyParams())
    (issue,) = output.issues
    assert issue.item == "2" and issue.kind == "failed" and "expected only oxygen removed" in issue.reason


def test_vacancy_o2_bond_length_is_a_parameter(tmp_path):
    pristine, defect, _ = vacancy_directory(tmp_path)
    output = VacancyTask().run(model("emt"), tmp_path, VacancyParams(o2_bond_length=1.3), task_context())
    o2 = Atoms("O2", positions=[(15, 15, 14.35), (15, 15, 15.65)], cell=[30, 30, 30], pbc=True)
    expected = emt_energy(defect[0]) + emt_energy(o2) / 2 - emt_energy(pristine[0])
    assert output.records[0]["value"] == pytest.approx(expected, abs=1e-9)


def test_vacancy_missing_or_misaligned_files(tmp_path):
    vacancy_directory(tmp_path)
    np.save(tmp_path / "vacancy_evf_label.npy", np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="aligned"):
        VacancyTask().run(model("emt"), tmp_path, VacancyParams(), task_context())
    (tmp_path / "vacancy_evf_label.npy").unlink()
    with pytest.raises(InputError, match="vacancy_evf_label.npy"):
        VacancyTask().run(model("emt"), tmp_path, VacancyParams(), task_context())


# --- surface -----------------------------------------------------------------------------------------


def surface_entries() -> tuple[list[dict], list[tuple[Atoms, Atoms, float]]]:
    slab = fcc111("Cu", size=(1, 1, 5), a=3.6, vacuum=7.5, periodic=True)
    bulk_cell = fcc111("Cu", size=(1, 1, 3), a=3.6, periodic=True)
    slab100 = fcc100("Ni", size=(1, 1, 4), a=3.52, vacuum=6.0, periodic=True)
    bulk100 = bulk("Ni", "fcc", a=3.52)
    area111 = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
    area100 = float(np.linalg.norm(np.cross(slab100.cell[0], slab100.cell[1])))

    def as_dict(atoms: Atoms) -> dict:
        return json.loads(AseAtomsAdaptor.get_structure(atoms).to_json())

    entries = [
        {
            "structure_slab": as_dict(slab),
            "structure_bulk": as_dict(bulk_cell),
            "area_slab": area111,
            "cleavage_energy_DFT": 0.08,
        },
        {  # structures as strings, as the real file may hold them
            "structure_slab": json.dumps(as_dict(slab100)),
            "structure_bulk": str(as_dict(bulk100)),
            "area_slab": area100,
            "cleavage_energy_DFT": 0.15,
        },
        {  # no area_slab
            "structure_slab": as_dict(slab),
            "structure_bulk": as_dict(bulk_cell),
            "cleavage_energy_DFT": 0.1,
        },
    ]
    return entries, [(slab, bulk_cell, area111), (slab100, bulk100, area100)]


def test_surface_cleavage_energy_against_direct_emt(tmp_path):
    entries, systems = surface_entries()
    (tmp_path / "surfaces.json").write_text(json.dumps({"data": entries}))
    output = SurfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())
    expected = [
        (emt_energy(slab) - len(slab) / len(bulk_cell) * emt_energy(bulk_cell)) / (2 * area) * 1000
        for slab, bulk_cell, area in systems
    ]
    references = [80.0, 150.0]
    assert output.n_items == 3
    assert [r["item"] for r in output.records] == ["0", "1"]
    assert [r["value"] for r in output.records] == pytest.approx(expected, abs=1e-7)
    assert [r["reference"] for r in output.records] == pytest.approx(references)
    errors = np.array(expected) - references
    assert output.metrics["mae"].value == pytest.approx(np.mean(np.abs(errors)), abs=1e-7)
    assert output.metrics["rmse"].value == pytest.approx(np.sqrt(np.mean(errors**2)), abs=1e-7)
    assert output.metrics["mae"].unit == "meV/Å²"
    assert_summarizes(SurfaceTask, output, NoParams())
    (issue,) = output.issues
    assert issue.item == "2" and issue.kind == "failed" and "area_slab" in issue.reason


def test_surface_needs_exactly_one_json(tmp_path):
    with pytest.raises(InputError, match=r"\*\.json"):
        SurfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())
    (tmp_path / "a.json").write_text(json.dumps({"data": []}))
    (tmp_path / "b.json").write_text(json.dumps({"data": []}))
    with pytest.raises(InputError, match="a.json, b.json"):
        SurfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())
    (tmp_path / "b.json").unlink()
    (tmp_path / "a.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="data"):
        SurfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())


# --- interface ---------------------------------------------------------------------------------------

COLUMNS = [
    "task_name",
    "system_type",
    "traj_index",
    "energy_total",
    "area",
    "sub1_name",
    "sub1_mult",
    "sub2_name",
    "sub2_mult",
]


def interface_directory(root: Path) -> list[Atoms]:
    a = 3.6
    cu = bulk("Cu", "fcc", a=a, cubic=True)
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    strained_ni = ni.copy()
    strained_ni.set_cell([a, a, 3.52], scale_atoms=True)
    stack = cu.repeat((1, 1, 2))
    top = strained_ni.repeat((1, 1, 2))
    top.positions[:, 2] += stack.cell[2, 2]
    stack += top
    stack.set_cell([a, a, 2 * a + 2 * 3.52])
    frames = [cu, ni, stack, stack]
    write(root / "structures.traj", frames)
    write_csv(
        root / "metadata.csv",
        COLUMNS,
        [
            ["Cu_bulk", "pure", 0, -14.9, "", "", "", "", ""],
            ["Ni_bulk", "pure", 1, -21.8, "", "", "", "", ""],
            ["Cu_Ni_100", "interface", 2, -73.1, a * a, "Cu_bulk", 2, "Ni_bulk", 2],
            ["Cu_Ag_100", "interface", 3, -70.0, a * a, "Cu_bulk", 2, "Ag_bulk", 2],  # Ag_bulk is no pure row
        ],
    )
    return frames


def test_interface_energy_against_direct_emt(tmp_path):
    cu, ni, stack, _ = interface_directory(tmp_path)
    output = InterfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())
    area = 3.6 * 3.6
    expected = (emt_energy(stack) - 2 * emt_energy(cu) - 2 * emt_energy(ni)) / (2 * area) * MJ_PER_M2
    reference = (-73.1 - 2 * -14.9 - 2 * -21.8) / (2 * area) * MJ_PER_M2
    assert output.n_items == 2
    (record,) = output.records
    assert record["item"] == "Cu_Ni_100"
    assert record["value"] == pytest.approx(expected, rel=1e-6)
    assert record["reference"] == pytest.approx(reference, rel=1e-6)
    assert output.metrics["mae"].value == pytest.approx(abs(expected - reference), rel=1e-6)
    assert output.metrics["rmse"].value == pytest.approx(abs(expected - reference), rel=1e-6)
    assert output.metrics["mae"].unit == "mJ/m²"
    assert_summarizes(InterfaceTask, output, NoParams())
    (issue,) = output.issues
    assert issue.item == "Cu_Ag_100" and issue.kind == "failed" and "Ag_bulk" in issue.reason


def test_interface_missing_file_or_column(tmp_path):
    interface_directory(tmp_path)
    rows = list(csv.DictReader((tmp_path / "metadata.csv").open()))
    write_csv(
        tmp_path / "metadata.csv",
        [c for c in COLUMNS if c != "sub2_mult"],
        [[row[c] for c in COLUMNS if c != "sub2_mult"] for row in rows],
    )
    with pytest.raises(InputError, match="sub2_mult"):
        InterfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())
    (tmp_path / "structures.traj").unlink()
    with pytest.raises(InputError, match="structures.traj"):
        InterfaceTask().run(model("emt"), tmp_path, NoParams(), task_context())


# --- stacking fault ----------------------------------------------------------------------------------


def sliding_path(element: str, a: float, n_frames: int = 10) -> tuple[list[Atoms], np.ndarray]:
    """The top half of a periodic fcc(111) stack slid by x·a1, x in [0, 1]: one full period."""
    base = fcc111(element, size=(1, 1, 6), a=a, periodic=True)
    top = base.positions[:, 2] > base.positions[:, 2].mean()
    shifts = np.linspace(0.0, 1.0, n_frames)
    frames = []
    for x in shifts:
        image = base.copy()
        image.positions[top] += x * base.cell[0]
        frames.append(image)
    return frames, shifts


def normalised_derivative(y: np.ndarray) -> np.ndarray:
    if y.max() <= 0:
        return np.zeros(len(y) - 1)
    return (y[1:] - y[:-1]) * (len(y) - 1) / y.max()


def stacking_directory(root: Path) -> dict[str, tuple[list[Atoms], np.ndarray, np.ndarray]]:
    systems = {}
    for name, element, a, height in (("Cu/Cu_111", "Cu", 3.6, 150.0), ("Al_111", "Al", 4.05, 90.0)):
        frames, shifts = sliding_path(element, a)
        label = height * np.sin(np.pi * shifts) ** 2
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        # frames and rows stored in reverse order: the task sorts by displacement, frames following rows
        write(root / f"{name}.traj", frames[::-1])
        write_csv(root / f"{name}.csv", ["Displacement", "Energy"], [[s, e] for s, e in zip(shifts, label)][::-1])
        systems[name] = (frames, shifts, label)
    # a pair whose table has too few rows: a failed item
    frames, _ = sliding_path("Ni", 3.52)
    (root / "bad").mkdir()
    write(root / "bad" / "Ni_111.traj", frames)
    write_csv(root / "bad" / "Ni_111.csv", ["Displacement", "Energy"], [[0.0, 0.0], [1.0, 0.0]])
    return systems


def expected_curve_errors(frames, shifts, label, energies, n_points=200):
    area = np.linalg.norm(np.cross(frames[0].cell[0], frames[0].cell[1]))
    predicted = (energies - energies.min()) / area * MJ_PER_M2
    grid = np.linspace(0.0, 1.0, n_points)
    y_label = PchipInterpolator(shifts, label)(grid)
    y_pred = PchipInterpolator(shifts, predicted)(grid)
    return (
        float(np.mean(np.abs(y_label - y_pred))),
        float(np.mean(np.abs(normalised_derivative(y_label) - normalised_derivative(y_pred)))),
    )


def test_stacking_fault_curves_against_direct_emt(tmp_path):
    systems = stacking_directory(tmp_path)
    output = StackingFaultTask().run(model("emt"), tmp_path, StackingFaultParams(), task_context())
    assert output.n_items == 3
    assert [r["item"] for r in output.records] == ["Al_111", "Cu/Cu_111"]
    expected = {}
    for name, (frames, shifts, label) in systems.items():
        energies = np.array([emt_energy(f) for f in frames])
        expected[name] = expected_curve_errors(frames, shifts, label, energies)
    for record in output.records:
        assert (record["energy_mae"], record["derivative_mae"]) == pytest.approx(expected[record["item"]], rel=1e-6)
    assert output.metrics["energy_mae"].value == pytest.approx(np.mean([e[0] for e in expected.values()]), rel=1e-6)
    assert output.metrics["derivative_mae"].value == pytest.approx(np.mean([e[1] for e in expected.values()]), rel=1e-6)
    assert output.metrics["energy_mae"].unit == "mJ/m²"
    assert_summarizes(StackingFaultTask, output, StackingFaultParams())
    (issue,) = output.issues
    assert issue.item == "bad/Ni_111" and issue.kind == "failed" and "2 rows for 10 frames" in issue.reason


def test_stacking_fault_dummy_has_flat_curves(tmp_path):
    """Composition-only energies are flat: the errors are the label curve's mean and its total variation
    (≈ 2 for one hump, LAMBench's dummy value)."""
    systems = stacking_directory(tmp_path)
    output = StackingFaultTask().run(model("dummy"), tmp_path, StackingFaultParams(n_points=101), task_context())
    for record in output.records:
        frames, shifts, label = systems[record["item"]]
        energy_mae, derivative_mae = expected_curve_errors(frames, shifts, label, np.zeros(len(frames)), 101)
        assert record["energy_mae"] == pytest.approx(energy_mae, rel=1e-9)
        assert record["derivative_mae"] == pytest.approx(derivative_mae, rel=1e-9)
        assert derivative_mae == pytest.approx(2.0, abs=0.01)


def test_stacking_fault_unpaired_file_is_named(tmp_path):
    stacking_directory(tmp_path)
    write_csv(tmp_path / "Cu" / "orphan.csv", ["Displacement", "Energy"], [[0.0, 0.0]])
    with pytest.raises(InputError, match="orphan.csv"):
        StackingFaultTask().run(model("emt"), tmp_path, StackingFaultParams(), task_context())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="pairs"):
        StackingFaultTask().run(model("emt"), empty, StackingFaultParams(), task_context())
