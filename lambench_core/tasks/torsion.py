"""Torsion profiles: relative conformer energies along dihedral scans, and their barriers.

Every scan (a fragment's conformers along one dihedral) is shifted to its own minimum, for the
reference and the model separately, so only the shape of the profile counts. In kcal/mol:

- profile_mae / profile_rmse: over every conformer of every scored scan, pooled;
- barrier_mae: over scans, of |ΔB| with B = max − min of a profile;
- n_barrier_above_1: the number of scored scans with |ΔB| > 1 kcal/mol (a count, not a fraction).

Two tasks use the same scoring (`score_torsion_profiles`):

`torsion_scans` reads lambench's own shipped set (lambench_core/data/sets/torsion_scans/<level>.extxyz,
recipe torsion_scans.yaml): rigid scans of butane, butadiene, acetamide and acetic acid. Frames carry
`system` and `dihedral_deg` in their info, and the reference energy in eV; one item per system, its
conformers sorted by dihedral.

`lambench_torsionnet` reads LAMBench's TorsionNet500 directory (CCSD(T)/CBS labels): one
sub-directory per fragment in deepmd/raw layout — type.raw, type_map.raw, coord.raw (Å), box.raw or
an empty `nopbc` file, energy.raw (kcal/mol, relative to the profile minimum). The plain-text files
are read here with numpy; dpdata is not needed. One item per fragment; a fragment with an unreadable
file or a failing conformer is one failed item.

Differences from LAMBench (lambench/tasks/calculator/torsionnet):
- eV → kcal/mol uses ASE's units (1 eV = 23.06055 kcal/mol), not LAMBench's 23.0609 (2·10⁻⁵ relative).
- profile_rmse is the RMSE pooled over all conformers; LAMBench averages per-conformer-index RMSEs
  (sklearn's multioutput mean). The MAEs agree whenever every fragment has the same number of conformers.
- A failing fragment is recorded and the others are scored (LAMBench's run stops at the first exception).
  n_barrier_above_1 counts scored fragments only, so it is read together with the success rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms, units
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import DirectoryTask, FramesTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import ItemFailure, Timer, evaluate_items

KCAL_PER_MOL = units.kcal / units.mol  # eV
BARRIER_THRESHOLD = 1.0  # kcal/mol


@dataclass(frozen=True)
class TorsionScores:
    """Scores of a set of torsion profiles, in kcal/mol (n_barrier_above_1: a count)."""

    profile_mae: float | None
    profile_rmse: float | None
    barrier_mae: float | None
    n_barrier_above_1: int | None

    def metrics(self) -> dict[str, Metric]:
        return {
            "profile_mae": Metric(value=self.profile_mae, unit="kcal/mol"),
            "profile_rmse": Metric(value=self.profile_rmse, unit="kcal/mol"),
            "barrier_mae": Metric(value=self.barrier_mae, unit="kcal/mol"),
            "n_barrier_above_1": Metric(
                value=None if self.n_barrier_above_1 is None else float(self.n_barrier_above_1), unit="count"
            ),
        }


def relative_profile(energies: ArrayLike) -> np.ndarray:
    """A profile shifted to its own minimum."""
    values = np.asarray(energies, float).ravel()
    if values.size == 0:
        raise ValueError("a torsion profile needs at least one conformer")
    if not np.all(np.isfinite(values)):
        raise ValueError("a torsion profile has a non-finite energy")
    return values - values.min()


def score_torsion_profiles(
    reference: Sequence[ArrayLike], predicted: Sequence[ArrayLike], threshold: float = BARRIER_THRESHOLD
) -> TorsionScores:
    """Score per-fragment energy profiles (kcal/mol, any common offset): each profile is shifted to its
    own minimum; MAE and RMSE pooled over all conformers, barrier (max − min) MAE over fragments, and
    the number of fragments whose |barrier error| exceeds `threshold`. No fragment: all None."""
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference profiles but {len(predicted)} predicted ones")
    if not reference:
        return TorsionScores(None, None, None, None)
    deviations: list[np.ndarray] = []
    barrier_errors: list[float] = []
    for index, (ref, pred) in enumerate(zip(reference, predicted, strict=True)):
        ref_rel, pred_rel = relative_profile(ref), relative_profile(pred)
        if ref_rel.shape != pred_rel.shape:
            raise ValueError(f"profile {index}: {ref_rel.size} reference energies but {pred_rel.size} predicted")
        deviations.append(pred_rel - ref_rel)
        barrier_errors.append(float(pred_rel.max() - ref_rel.max()))
    every = np.concatenate(deviations)
    barriers = np.abs(np.asarray(barrier_errors))
    return TorsionScores(
        profile_mae=float(np.mean(np.abs(every))),
        profile_rmse=float(np.sqrt(np.mean(every**2))),
        barrier_mae=float(np.mean(barriers)),
        n_barrier_above_1=int(np.count_nonzero(barriers > threshold)),
    )


def profile_record(reference: ArrayLike, predicted: ArrayLike) -> dict[str, Any]:
    """One scan's record: both profiles relative to their minima and the barriers, in kcal/mol."""
    ref_rel, pred_rel = relative_profile(reference), relative_profile(predicted)
    return {
        "reference": ref_rel.tolist(),
        "predicted": pred_rel.tolist(),
        "barrier_ref": float(ref_rel.max()),
        "barrier": float(pred_rel.max()),
        "barrier_error": float(pred_rel.max() - ref_rel.max()),
        "profile_mae": float(np.mean(np.abs(pred_rel - ref_rel))),
    }


def scores_of_records(records: list[dict[str, Any]]) -> TorsionScores:
    return score_torsion_profiles([r["reference"] for r in records], [r["predicted"] for r in records])


def predicted_profile(model: LoadedModel, conformers: Sequence[Atoms], timer: Timer) -> np.ndarray:
    """The model's energies of a scan's conformers, kcal/mol."""
    return np.array([timer.energy(model, atoms) for atoms in conformers]) / KCAL_PER_MOL


# --------------------------------------------------------------------------------------------------
# torsion_scans: lambench's shipped rigid scans


class TorsionScanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systems: list[str] | None = Field(
        default=None, description="A subset of the scans (butane, butadiene, acetamide, acetic-acid)"
    )


@dataclass
class Scan:
    dihedrals: list[float]
    frames: list[Frame]


def group_scans(frames: list[Frame]) -> dict[str, Scan]:
    """Frames grouped by info['system'], each scan sorted by info['dihedral_deg']."""
    grouped: dict[str, list[tuple[float, Frame]]] = {}
    for frame in frames:
        for key in ("system", "dihedral_deg"):
            if key not in frame.atoms.info:
                raise InputError(
                    frame.frame_id, key, "a torsion-scan frame needs info['system'] and info['dihedral_deg']"
                )
        try:
            dihedral = float(frame.atoms.info["dihedral_deg"])
        except (TypeError, ValueError):
            raise InputError(frame.frame_id, "dihedral_deg", "not a number") from None
        grouped.setdefault(str(frame.atoms.info["system"]), []).append((dihedral, frame))
    scans = {}
    for system, members in grouped.items():
        members.sort(key=lambda pair: pair[0])
        scans[system] = Scan(dihedrals=[d for d, _ in members], frames=[f for _, f in members])
    return scans


@register_task
class TorsionScanTask(FramesTask[TorsionScanParams]):
    name = "torsion_scans"
    category = Category.PROPERTY
    version = "1"
    Params = TorsionScanParams
    scored_metrics = ("profile_mae", "barrier_mae")

    # The dummy model's errors on the shipped pbe set (kcal/mol). All conformers of a scan share a
    # composition, so the dummy's profile is flat: its profile MAE is the mean reference energy above
    # each scan's minimum, its barrier MAE the mean reference barrier. The PBE set is the default
    # level's; tests/core/test_torsion.py recomputes both from lambench_core/data/sets/torsion_scans/pbe.extxyz.
    DUMMY_PROFILE_MAE: ClassVar[float] = 5.964658090247602
    DUMMY_BARRIER_MAE: ClassVar[float] = 12.856884809072653
    dummy_values = {"profile_mae": DUMMY_PROFILE_MAE, "barrier_mae": DUMMY_BARRIER_MAE}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: TorsionScanParams) -> dict[str, Metric]:
        """Torsion scores of the scored scans (n_barrier_above_1 counts the records given)."""
        return scores_of_records(records).metrics()

    def run(
        self, model: LoadedModel, frames: list[Frame], params: TorsionScanParams, context: TaskContext
    ) -> TaskOutput:
        scans = group_scans(frames)
        if not scans:
            raise InputError("torsion_scans", None, "the dataset has no frames")
        names = params.systems or sorted(scans)
        unknown = [name for name in names if name not in scans]
        if unknown:
            raise InputError(
                "torsion_scans", "systems", f"unknown scan(s) {', '.join(unknown)} (known: {', '.join(sorted(scans))})"
            )
        timer = Timer()

        def evaluate(name: str, scan: Scan) -> dict[str, Any]:
            if len(scan.frames) < 2:
                raise ItemFailure("a scan needs at least two conformers")
            missing = [f.frame_id for f in scan.frames if f.energy is None]
            if missing:
                raise ItemFailure(f"no reference energy for {', '.join(missing)}")
            reference = np.array([f.energy for f in scan.frames], float) / KCAL_PER_MOL
            predicted = predicted_profile(model, [f.atoms for f in scan.frames], timer)
            return {"dihedral_deg": scan.dihedrals, **profile_record(reference, predicted)}

        results = evaluate_items(
            model,
            [(name, scans[name]) for name in names],
            lambda s: [f.atoms for f in s.frames],
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)


# --------------------------------------------------------------------------------------------------
# lambench_torsionnet: LAMBench's TorsionNet500 (deepmd/raw sub-directories)


class TorsionNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_fragments: int | None = Field(default=None, gt=0, description="Score only the first N fragments (sorted)")


@dataclass
class Fragment:
    conformers: list[Atoms]
    energies: np.ndarray  # kcal/mol


def _raw(path: Path, dtype: type = float) -> np.ndarray:
    if not path.is_file():
        raise ItemFailure(f"{path.name} is missing")
    try:
        return np.loadtxt(path, dtype=dtype, ndmin=2)
    except ValueError as exc:
        raise ItemFailure(f"{path.name} is unreadable: {exc}") from None


def read_deepmd_raw(directory: Path) -> Fragment:
    """One fragment in deepmd/raw layout; any problem is an ItemFailure naming the file."""
    types = _raw(directory / "type.raw", int).ravel()
    type_map_path = directory / "type_map.raw"
    if not type_map_path.is_file():
        raise ItemFailure("type_map.raw is missing")
    type_map = type_map_path.read_text().split()
    if types.size == 0 or types.min() < 0 or types.max() >= len(type_map):
        raise ItemFailure(f"type.raw has types outside type_map.raw's {len(type_map)} elements")
    symbols = [type_map[t] for t in types]
    coords = _raw(directory / "coord.raw")
    energies = _raw(directory / "energy.raw").ravel()
    n_atoms = types.size
    if coords.shape[1] != 3 * n_atoms:
        raise ItemFailure(f"coord.raw has {coords.shape[1]} values per frame, expected {3 * n_atoms}")
    if energies.size != coords.shape[0]:
        raise ItemFailure(f"energy.raw has {energies.size} values for {coords.shape[0]} frames in coord.raw")
    if (directory / "nopbc").exists():
        cells = [None] * coords.shape[0]
    else:
        boxes = _raw(directory / "box.raw")
        if boxes.shape != (coords.shape[0], 9):
            raise ItemFailure(f"box.raw has shape {boxes.shape}, expected ({coords.shape[0]}, 9)")
        cells = [box.reshape(3, 3) for box in boxes]
    conformers = []
    for positions, cell in zip(coords, cells, strict=True):
        try:
            atoms = Atoms(symbols=symbols, positions=positions.reshape(n_atoms, 3))
        except KeyError as exc:
            raise ItemFailure(f"type_map.raw has an unknown element {exc}") from None
        if cell is not None:
            atoms.set_cell(cell)
            atoms.pbc = True
        conformers.append(atoms)
    return Fragment(conformers=conformers, energies=energies)


@register_task
class TorsionNetTask(DirectoryTask[TorsionNetParams]):
    name = "lambench_torsionnet"
    category = Category.PROPERTY
    version = "1"
    Params = TorsionNetParams
    scored_metrics = ("profile_mae", "barrier_mae", "n_barrier_above_1")
    # LAMBench's published torsionnet baselines: MAE, MAEB, NABH_h.
    dummy_values = {"profile_mae": 2.4939, "barrier_mae": 5.8176, "n_barrier_above_1": 493.0}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: TorsionNetParams) -> dict[str, Metric]:
        """Torsion scores of the scored fragments (n_barrier_above_1 counts the records given)."""
        return scores_of_records(records).metrics()

    def run(self, model: LoadedModel, root: Path, params: TorsionNetParams, context: TaskContext) -> TaskOutput:
        if not root.is_dir():
            raise InputError(root, None, "the TorsionNet500 directory does not exist")
        directories = sorted(p for p in root.iterdir() if p.is_dir())
        if not directories:
            raise InputError(root, None, "no fragment sub-directories (deepmd/raw) found")
        if params.max_fragments:
            directories = directories[: params.max_fragments]
        fragments: dict[str, Fragment | Exception] = {}
        for directory in directories:
            try:
                fragments[directory.name] = read_deepmd_raw(directory)
            except Exception as exc:  # a bad fragment is that fragment's failure
                fragments[directory.name] = exc

        def structures(entry: Fragment | Exception) -> list[Atoms]:
            if isinstance(entry, Exception):
                raise entry
            return entry.conformers

        timer = Timer()

        def evaluate(name: str, entry: Fragment | Exception) -> dict[str, Any]:
            assert isinstance(entry, Fragment)
            if len(entry.conformers) < 2:
                raise ItemFailure("a scan needs at least two conformers")
            predicted = predicted_profile(model, entry.conformers, timer)
            return profile_record(entry.energies, predicted)

        results = evaluate_items(model, list(fragments.items()), structures, evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)
