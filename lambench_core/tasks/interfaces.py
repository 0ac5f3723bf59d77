"""Defect, surface and interface energetics on LAMBench's data directories (single points, no relaxation).

Every task below reads LAMBench's own file layout, evaluates the model on the stored geometries and
compares an energy difference with the label. Energies are converted with ASE's CODATA constants:
1 eV/Å² = 16021.766 mJ/m² (`units._e · 10²³`); LAMBench writes 16021.766208 or 16021.76634.

`lambench_vacancy` — vacancy_pristine_structures.traj and vacancy_defect_structures.traj (aligned by
index) and vacancy_evf_label.npy (eV). The oxygen chemical potential is half the energy of an O2
molecule (bond `o2_bond_length` Å along z, centred in a periodic cube of edge `o2_box` Å, no spin,
not relaxed), and E_vf = E(defect) + n_O · E(O2)/2 − E(pristine), n_O the number of atoms removed.
A pair whose defect is not its pristine structure minus oxygen atoms fails (LAMBench does not check).
Metrics: MAE (scored) and RMSE in eV.

`lambench_surface` — exactly one *.json in the directory (LAMBench takes whichever glob finds first;
two are an error here): {"data": [{structure_slab, structure_bulk (pymatgen Structure dicts or their
string form), area_slab (Å²), cleavage_energy_DFT (eV/Å²)}]}. E_cleave = (E_slab − N_slab/N_bulk ·
E_bulk) / (2 · area_slab). Metrics: MAE (scored) and RMSE in meV/Å².

`lambench_interface` — structures.traj and metadata.csv (system_type pure|interface, task_name,
traj_index, energy_total in eV, area in Å², sub1_name, sub1_mult, sub2_name, sub2_mult). γ = (E_tot −
m1·E1 − m2·E2) / (2 · area) in mJ/m² (a periodic cell holds two interfaces), from the DFT energies of
the csv and from the model's energies of the same frames; each pure phase is evaluated once. An
interface row without substrate names, or naming a pure phase that is absent or listed twice, is a
failed item (LAMBench silently drops it). Metrics: MAE (scored) and RMSE in mJ/m².

`lambench_stacking_fault` — pairs <name>.traj / <name>.csv (same folder and stem) found recursively;
the csv has columns Displacement and Energy (mJ/m², relative to the curve's minimum), one row per
frame. The model's curve is (E − min E) / A in mJ/m², A = |a × b| of the first frame. Both curves are
interpolated with a PCHIP spline on `n_points` (200) equally spaced displacements spanning the data
(frames are sorted by displacement first). energy_mae: mean |Δy| on that grid (mJ/m²);
derivative_mae: mean |Δd| of the normalised derivative d = Δy · (n_points − 1) / max(y), each curve
divided by its own maximum (LAMBench's definition: a derivative per unit displacement when the
displacements span [0, 1]). A flat curve (max y ≤ 0, e.g. the dummy model's) has d = 0 — LAMBench
divides by zero there — which makes the dummy's derivative_mae the total variation of the normalised
label curve, ≈ 2 for a single hump: LAMBench's dummy value. Both metrics are means over systems,
unrounded (LAMBench rounds to 4 decimals). Pairs are matched by name, not by sorted position, and a
file without its partner is an input error.
"""

from __future__ import annotations

import ast
import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import DirectoryTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import ItemFailure, Timer, evaluate_items
from lambench_core.tasks.lambench_files import (
    NoParams,
    as_float,
    error_metrics,
    read_csv_rows,
    read_trajectory,
    require_files,
)
from lambench_core.tasks.structures import in_plane_area

EV_PER_A2_IN_MJ_PER_M2 = units._e * 1e23  # 1 eV/Å² = e J / 10⁻²⁰ m², in mJ/m²
MEV = 1000.0


# --- vacancy -------------------------------------------------------------------------------------------


class VacancyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    o2_bond_length: float = Field(default=1.23, gt=0.5, lt=3.0, description="Å, O2 bond along z (LAMBench: 1.23)")
    o2_box: float = Field(default=30.0, ge=5.0, le=200.0, description="Å, edge of the periodic cube holding O2")


def o2_molecule(bond_length: float, box: float) -> Atoms:
    centre = box / 2.0
    return Atoms(
        "O2",
        positions=[(centre, centre, centre - bond_length / 2.0), (centre, centre, centre + bond_length / 2.0)],
        cell=[box, box, box],
        pbc=True,
    )


def removed_oxygen(pristine: Atoms, defect: Atoms) -> int:
    """How many O atoms the defect lacks; ItemFailure unless it is the pristine structure minus oxygen."""
    before, after = Counter(pristine.get_chemical_symbols()), Counter(defect.get_chemical_symbols())
    removed, added = before - after, after - before
    if added or set(removed) != {"O"}:
        removed_text = ", ".join(f"{n}×{s}" for s, n in sorted(removed.items())) or "nothing"
        added_text = f" and adds {', '.join(f'{n}×{s}' for s, n in sorted(added.items()))}" if added else ""
        raise ItemFailure(f"the defect structure removes {removed_text}{added_text}: expected only oxygen removed")
    return removed["O"]


@register_task
class VacancyTask(DirectoryTask[VacancyParams]):
    name = "lambench_vacancy"
    category = Category.PROPERTY
    version = "1"
    Params = VacancyParams
    scored_metrics = ("mae",)
    FILES = ("vacancy_pristine_structures.traj", "vacancy_defect_structures.traj", "vacancy_evf_label.npy")
    # LAMBench's published vacancy MAE baseline (eV)
    dummy_values = {"mae": 4.381}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: VacancyParams) -> dict[str, Metric]:
        """MAE and RMSE of the vacancy formation energies over the scored pairs."""
        return error_metrics(records, "eV")

    def run(self, model: LoadedModel, root: Path, params: VacancyParams, context: TaskContext) -> TaskOutput:
        pristine_path, defect_path, label_path = require_files(root, self.FILES)
        pristine, defect = read_trajectory(pristine_path), read_trajectory(defect_path)
        try:
            labels = np.asarray(np.load(label_path, allow_pickle=False), dtype=float)
        except Exception as exc:
            raise InputError(label_path, None, f"unreadable labels ({type(exc).__name__}: {exc})") from None
        if labels.ndim != 1:
            raise InputError(label_path, None, f"expected a 1-D array of labels, got shape {labels.shape}")
        if not len(pristine) == len(defect) == len(labels):
            raise InputError(
                root,
                None,
                f"{len(pristine)} pristine structures, {len(defect)} defect structures and {len(labels)} labels: "
                "the three must be aligned",
            )
        timer = Timer()
        o2 = o2_molecule(params.o2_bond_length, params.o2_box)

        @functools.cache
        def oxygen_energy() -> float:
            return timer.energy(model, o2) / 2.0

        def evaluate(name: str, index: int) -> dict[str, Any]:
            n_oxygen = removed_oxygen(pristine[index], defect[index])
            reference = as_float(labels[index], "label")
            try:
                mu_oxygen = oxygen_energy()
            except ItemFailure as exc:
                raise ItemFailure(f"O2 reference: {exc}") from None
            e_defect = timer.energy(model, defect[index])
            e_pristine = timer.energy(model, pristine[index])
            return {
                "formula": pristine[index].get_chemical_formula(),
                "n_oxygen_removed": n_oxygen,
                "value": e_defect + n_oxygen * mu_oxygen - e_pristine,
                "reference": reference,
            }

        results = evaluate_items(
            model,
            [(str(i), i) for i in range(len(labels))],
            lambda i: [pristine[i], defect[i], o2],
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)


# --- surface -------------------------------------------------------------------------------------------


def structure_to_atoms(value: Any) -> Atoms:
    """A pymatgen Structure given as its dict, or as that dict's JSON / Python-literal text."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = ast.literal_eval(value)
    if not isinstance(value, dict):
        raise ItemFailure(f"expected a pymatgen Structure dict, got {type(value).__name__}")
    atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(value))
    atoms.calc = None
    return atoms


class SurfaceItem:
    def __init__(self, entry: Any) -> None:
        self.entry = entry

    def field(self, key: str) -> Any:
        if not isinstance(self.entry, dict):
            raise ItemFailure(f"entry is a {type(self.entry).__name__}, not an object")
        if key not in self.entry:
            raise ItemFailure(f"entry lacks {key!r}")
        return self.entry[key]

    @functools.cached_property
    def structures(self) -> tuple[Atoms, Atoms]:
        return structure_to_atoms(self.field("structure_slab")), structure_to_atoms(self.field("structure_bulk"))


@register_task
class SurfaceTask(DirectoryTask[NoParams]):
    name = "lambench_surface"
    category = Category.PROPERTY
    version = "1"
    Params = NoParams
    scored_metrics = ("mae",)
    # LAMBench's published surface MAE baseline (meV/Å²)
    dummy_values = {"mae": 101.22517626586762}

    @staticmethod
    def read_entries(root: Path) -> tuple[Path, list[Any]]:
        if not root.is_dir():
            raise InputError(root, None, "data directory not found")
        found = sorted(root.glob("*.json"))
        if not found:
            raise InputError(root, None, "missing file(s): *.json (one file of surfaces expected)")
        if len(found) > 1:
            names = ", ".join(path.name for path in found)
            raise InputError(root, None, f"more than one *.json ({names}): keep exactly one file of surfaces")
        path = found[0]
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, None, f"unreadable JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise InputError(path, "data", "expected an object whose 'data' is a list of surfaces")
        return path, document["data"]

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: NoParams) -> dict[str, Metric]:
        """MAE and RMSE of the cleavage energies over the scored surfaces."""
        return error_metrics(records, "meV/Å²")

    def run(self, model: LoadedModel, root: Path, params: NoParams, context: TaskContext) -> TaskOutput:
        _, entries = self.read_entries(root)
        timer = Timer()

        def evaluate(name: str, item: SurfaceItem) -> dict[str, Any]:
            slab, bulk = item.structures
            area = as_float(item.field("area_slab"), "area_slab")
            if area <= 0:
                raise ItemFailure(f"area_slab must be positive, got {area}")
            reference = as_float(item.field("cleavage_energy_DFT"), "cleavage_energy_DFT") * MEV
            e_slab, e_bulk = timer.energy(model, slab), timer.energy(model, bulk)
            ratio = len(slab) / len(bulk)
            return {
                "formula_slab": slab.get_chemical_formula(),
                "n_slab": len(slab),
                "n_bulk": len(bulk),
                "value": (e_slab - ratio * e_bulk) / (2.0 * area) * MEV,
                "reference": reference,
            }

        results = evaluate_items(
            model,
            [(str(i), SurfaceItem(entry)) for i, entry in enumerate(entries)],
            lambda item: list(item.structures),
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)


# --- interface -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceRow:
    name: str
    row: dict[str, str]


@register_task
class InterfaceTask(DirectoryTask[NoParams]):
    name = "lambench_interface"
    category = Category.PROPERTY
    version = "1"
    Params = NoParams
    scored_metrics = ("mae",)
    COLUMNS = (
        "system_type",
        "task_name",
        "traj_index",
        "energy_total",
        "area",
        "sub1_name",
        "sub1_mult",
        "sub2_name",
        "sub2_mult",
    )
    # LAMBench's published interface MAE baseline (mJ/m²)
    dummy_values = {"mae": 2060.4102820362823}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: NoParams) -> dict[str, Metric]:
        """MAE and RMSE of the interface energies over the scored interfaces."""
        return error_metrics(records, "mJ/m²")

    def run(self, model: LoadedModel, root: Path, params: NoParams, context: TaskContext) -> TaskOutput:
        traj_path, csv_path = require_files(root, ("structures.traj", "metadata.csv"))
        rows = read_csv_rows(csv_path, self.COLUMNS)
        kinds = {row["system_type"].lower() for row in rows}
        if kinds - {"pure", "interface"}:
            raise InputError(csv_path, "system_type", f"unknown value(s) {sorted(kinds - {'pure', 'interface'})}")
        pure: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            if row["system_type"].lower() == "pure":
                pure.setdefault(row["task_name"], []).append(row)
        interfaces = [row for row in rows if row["system_type"].lower() == "interface"]
        from ase.io import Trajectory  # ase.io pulls in scipy: imported where it is used, not at every step's start

        try:
            trajectory = Trajectory(str(traj_path), "r")
            n_frames = len(trajectory)
        except Exception as exc:
            raise InputError(traj_path, None, f"unreadable trajectory ({type(exc).__name__}: {exc})") from None
        timer = Timer()
        model_energies: dict[int, float | ItemFailure] = {}

        @functools.cache
        def frame(index: int) -> Atoms:
            atoms = trajectory[index]
            atoms.calc = None
            return atoms

        def frame_index(row: dict[str, str]) -> int:
            try:
                index = int(row["traj_index"])
            except ValueError:
                message = f"traj_index of {row['task_name']!r} is not an integer: {row['traj_index']!r}"
                raise ItemFailure(message) from None
            if not 0 <= index < n_frames:
                raise ItemFailure(f"traj_index {index} of {row['task_name']!r} is outside structures.traj")
            return index

        def pure_row(row: dict[str, str], which: str) -> dict[str, str]:
            name = row[f"{which}_name"]
            if not name:
                raise ItemFailure(f"interface row has no {which}_name")
            matches = pure.get(name, [])
            if len(matches) != 1:
                problem = "is not a pure row" if not matches else f"names {len(matches)} pure rows"
                raise ItemFailure(f"{which}_name {name!r} {problem}")
            return matches[0]

        def model_energy(index: int) -> float:
            if index not in model_energies:
                try:
                    model_energies[index] = timer.energy(model, frame(index))
                except ItemFailure as exc:
                    model_energies[index] = exc
            value = model_energies[index]
            if isinstance(value, ItemFailure):
                raise ItemFailure(f"frame {index}: {value}")
            return value

        def structures(item: InterfaceRow) -> list[Atoms]:
            parts = [item.row, pure_row(item.row, "sub1"), pure_row(item.row, "sub2")]
            return [frame(frame_index(part)) for part in parts]

        def evaluate(name: str, item: InterfaceRow) -> dict[str, Any]:
            row, sub1, sub2 = item.row, pure_row(item.row, "sub1"), pure_row(item.row, "sub2")
            area = as_float(row["area"], "area")
            if area <= 0:
                raise ItemFailure(f"area must be positive, got {area}")
            m1, m2 = as_float(row["sub1_mult"], "sub1_mult"), as_float(row["sub2_mult"], "sub2_mult")
            dft = [
                as_float(part["energy_total"], f"energy_total of {part['task_name']!r}") for part in (row, sub1, sub2)
            ]
            predicted = [model_energy(frame_index(part)) for part in (row, sub1, sub2)]

            def gamma(e_total: float, e1: float, e2: float) -> float:
                return (e_total - m1 * e1 - m2 * e2) / (2.0 * area) * EV_PER_A2_IN_MJ_PER_M2

            return {
                "sub1": sub1["task_name"],
                "sub2": sub2["task_name"],
                "value": gamma(*predicted),
                "reference": gamma(*dft),
            }

        try:
            results = evaluate_items(
                model,
                [(row["task_name"], InterfaceRow(row["task_name"], row)) for row in interfaces],
                structures,
                evaluate,
                context.progress,
            )
        finally:
            trajectory.close()
        return self.output(params, results, compute_seconds=timer.seconds)


# --- stacking fault ------------------------------------------------------------------------------------


class StackingFaultParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_points: int = Field(default=200, ge=3, le=100_000, description="PCHIP grid points over the displacement range")


def stacking_fault_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(name, traj, csv) for every <name>.traj with its <name>.csv in the same folder, sorted by name."""
    if not root.is_dir():
        raise InputError(root, None, "data directory not found")
    trajs = {path.with_suffix(""): path for path in root.rglob("*.traj") if path.is_file()}
    tables = {path.with_suffix(""): path for path in root.rglob("*.csv") if path.is_file()}
    for stem, path in sorted({**tables, **trajs}.items()):
        if stem not in trajs or stem not in tables:
            partner = path.with_suffix(".csv" if path.suffix == ".traj" else ".traj")
            raise InputError(path, None, f"no matching {partner.name} beside it (pairs are matched by name)")
    if not trajs:
        raise InputError(root, None, "missing file(s): no <name>.traj / <name>.csv pairs found")
    return [(stem.relative_to(root).as_posix(), trajs[stem], tables[stem]) for stem in sorted(trajs)]


def normalised_derivative(y: np.ndarray) -> np.ndarray:
    """Δy · (N − 1) / max(y) on an N-point grid; a curve that never rises above 0 is flat: d = 0."""
    top = float(np.max(y))
    if top <= 0.0:
        return np.zeros(len(y) - 1)
    return np.diff(y) * (len(y) - 1) / top


def compare_curves(
    displacement: np.ndarray, reference: np.ndarray, predicted: np.ndarray, n_points: int
) -> tuple[float, float]:
    """(energy MAE, normalised-derivative MAE) of two curves sampled at the same displacements."""
    from scipy.interpolate import PchipInterpolator

    grid = np.linspace(displacement.min(), displacement.max(), n_points)
    y_ref = PchipInterpolator(displacement, reference)(grid)
    y_pred = PchipInterpolator(displacement, predicted)(grid)
    energy_mae = float(np.mean(np.abs(y_ref - y_pred)))
    derivative_mae = float(np.mean(np.abs(normalised_derivative(y_ref) - normalised_derivative(y_pred))))
    return energy_mae, derivative_mae


@register_task
class StackingFaultTask(DirectoryTask[StackingFaultParams]):
    name = "lambench_stacking_fault"
    category = Category.PROPERTY
    version = "1"
    Params = StackingFaultParams
    scored_metrics = ("energy_mae", "derivative_mae")
    # LAMBench's published baselines
    dummy_values = {"energy_mae": 1544.8257, "derivative_mae": 2.0}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: StackingFaultParams) -> dict[str, Metric]:
        """Means over the scored curves of their energy and normalised-derivative MAEs."""

        def mean(key: str) -> float | None:
            return float(np.mean([r[key] for r in records])) if records else None

        return {
            "energy_mae": Metric(value=mean("energy_mae"), unit="mJ/m²"),
            "derivative_mae": Metric(value=mean("derivative_mae"), unit="1/displacement"),
        }

    def run(self, model: LoadedModel, root: Path, params: StackingFaultParams, context: TaskContext) -> TaskOutput:
        pairs = stacking_fault_pairs(root)
        timer = Timer()

        @functools.cache
        def frames(path: Path) -> list[Atoms]:
            try:
                return read_trajectory(path)
            except InputError as exc:
                raise ItemFailure(str(exc)) from None

        def evaluate(name: str, pair: tuple[Path, Path]) -> dict[str, Any]:
            traj_path, csv_path = pair
            images = frames(traj_path)
            try:
                rows = read_csv_rows(csv_path, ("Displacement", "Energy"))
            except InputError as exc:
                raise ItemFailure(str(exc)) from None
            if len(rows) != len(images):
                raise ItemFailure(f"{csv_path.name} has {len(rows)} rows for {len(images)} frames")
            if len(images) < 2:
                raise ItemFailure("a curve needs at least two frames")
            displacement = np.array([as_float(r["Displacement"], "Displacement") for r in rows])
            reference = np.array([as_float(r["Energy"], "Energy") for r in rows])
            if len(np.unique(displacement)) != len(displacement):
                raise ItemFailure("repeated displacement values")
            area = in_plane_area(images[0])
            if area <= 0:
                raise ItemFailure("the first frame's a × b area is zero")
            energies = np.array([timer.energy(model, image) for image in images])
            predicted = (energies - energies.min()) / area * EV_PER_A2_IN_MJ_PER_M2
            order = np.argsort(displacement)
            energy_mae, derivative_mae = compare_curves(
                displacement[order], reference[order], predicted[order], params.n_points
            )
            return {
                "displacement": displacement.tolist(),
                "energy": predicted.tolist(),
                "energy_ref": reference.tolist(),
                "area": area,
                "energy_mae": energy_mae,
                "derivative_mae": derivative_mae,
            }

        results = evaluate_items(
            model,
            [(name, (traj_path, csv_path)) for name, traj_path, csv_path in pairs],
            lambda pair: frames(pair[0]),
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)
