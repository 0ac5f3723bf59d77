"""Molecular property tasks on LAMBench's data directories: Wiggle150, PLF547 and BH876.

All are single points (no relaxation) scored in kcal/mol. Model energies (eV) are converted with
ASE's units — 1 eV = 1/(units.kcal/units.mol) = 23.06055 kcal/mol and 1 Hartree = units.Hartree/(
units.kcal/units.mol) = 627.5095 kcal/mol — where LAMBench writes 23.0609 or 23.06092234465 and
627.50947406 (differences of ≤ 2·10⁻⁵ relative). Charge and spin stored in `atoms.info` stay there,
for models that read them; models without charge/spin input see the neutral structure.

`lambench_wiggle150` — Wiggle150.traj: 153 frames, 3 molecules × blocks of `block_size` (51): the first
frame of a block is the reference conformer, the other 50 are strained; stored energies in kcal/mol.
E_rel(i) = E(i) − E(reference); MAE and RMSE over conformers. One item per strained conformer (150);
a failing reference fails every conformer of its block. (LAMBench drops a block whose reference fails
and turns every metric into NaN when a conformer fails; here they are failed items.)

`lambench_binding` — PLF547: active_site.traj, drug.traj, combined.traj (aligned by index) and
labels.npy (kcal/mol). BE = E(combined) − E(active site) − E(drug), no counterpoise; MAE and RMSE.
One item per complex.

`lambench_rxn_barrier` — BH876: BH876.traj (one frame per species), lookup_table.csv (column ID; row i
is frame i), stoichiometry.csv (columns Stoichiometry "coef,ID,coef,ID,…" and Reference in Hartree).
ΔE = Σ coef·E(species); MAE and RMSE. One item per reaction (row); each species is computed once
and reused; a failing species fails every reaction that needs it. Items are named by the `Reaction`
column when the file has one, else by row number.
"""

from __future__ import annotations

from collections.abc import Callable
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
from lambench_core.tasks.lambench_files import NoParams, error_metrics, read_csv_rows, read_trajectory, require_files

KCAL_PER_MOL = units.kcal / units.mol  # eV
HARTREE_IN_KCAL = units.Hartree / KCAL_PER_MOL


def stored_energy(atoms: Atoms) -> float:
    """The energy stored with a frame (its SinglePointCalculator); ItemFailure if none or not finite."""
    try:
        energy = float(atoms.get_potential_energy())
    except Exception as exc:
        raise ItemFailure(f"the frame has no stored energy ({type(exc).__name__})") from None
    if not np.isfinite(energy):
        raise ItemFailure("the stored energy is not finite")
    return energy


def bare(atoms: Atoms) -> Atoms:
    """A copy without the stored calculator (info, charge and spin included, are kept)."""
    copy = atoms.copy()
    copy.calc = None
    return copy


class Cached:
    """Each key's value computed once; a failure is remembered and raised again for every later use."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute
        self._done: dict[Any, Any] = {}

    def __call__(self, key: Any) -> Any:
        if key not in self._done:
            try:
                self._done[key] = self._compute(key)
            except Exception as exc:
                self._done[key] = exc
        value = self._done[key]
        if isinstance(value, Exception):
            raise value
        return value


# --------------------------------------------------------------------------------------------------
# Wiggle150


class Wiggle150Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    block_size: int = Field(default=51, ge=2, description="Frames per molecule: one reference, then its conformers")
    file: str = Field(default="Wiggle150.traj", description="The trajectory, relative to the data directory")


@dataclass(frozen=True)
class Conformer:
    block: int
    reference: Atoms
    conformer: Atoms


@register_task
class Wiggle150Task(DirectoryTask[Wiggle150Params]):
    name = "lambench_wiggle150"
    category = Category.PROPERTY
    version = "1"
    Params = Wiggle150Params
    scored_metrics = ("mae",)
    # LAMBench's published wiggle150 MAE baseline
    dummy_values = {"mae": 105.0576}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: Wiggle150Params) -> dict[str, Metric]:
        """MAE and RMSE over the scored conformers of their energy relative to their molecule's
        reference conformer (one record per conformer, not per molecule)."""
        return error_metrics(records, "kcal/mol", predicted="predicted")

    def run(self, model: LoadedModel, root: Path, params: Wiggle150Params, context: TaskContext) -> TaskOutput:
        (path,) = require_files(root, [params.file])
        frames = read_trajectory(path)
        if not frames or len(frames) % params.block_size:
            raise InputError(
                path, "frames", f"{len(frames)} frames is not a whole number of blocks of {params.block_size}"
            )
        timer = Timer()
        reference_energy = Cached(lambda block: self._pair(model, frames[block * params.block_size], timer))
        items: list[tuple[str, Conformer]] = []
        for block in range(len(frames) // params.block_size):
            start = block * params.block_size
            for index in range(1, params.block_size):
                conformer = Conformer(block, bare(frames[start]), frames[start + index])
                items.append((f"block{block}/conformer{index:02d}", conformer))

        def evaluate(name: str, item: Conformer) -> dict[str, Any]:
            try:
                ref_label, ref_pred = reference_energy(item.block)
            except Exception as exc:
                raise ItemFailure(f"the block's reference conformer failed: {exc}") from None
            label, pred = self._pair(model, item.conformer, timer)
            # Conformers share their molecule's reference: the bootstrap draws a molecule's together.
            return {"reference": label - ref_label, "predicted": pred - ref_pred, "cluster": f"block{item.block}"}

        results = evaluate_items(model, items, lambda c: [c.reference, bare(c.conformer)], evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)

    @staticmethod
    def _pair(model: LoadedModel, frame: Atoms, timer: Timer) -> tuple[float, float]:
        """(stored energy, kcal/mol; model energy, kcal/mol) of one frame."""
        label = stored_energy(frame)
        return label, timer.energy(model, bare(frame)) / KCAL_PER_MOL


# --------------------------------------------------------------------------------------------------
# PLF547 protein–ligand binding


BINDING_FILES = ("active_site.traj", "drug.traj", "combined.traj")


@dataclass(frozen=True)
class Complex:
    site: Atoms
    drug: Atoms
    combined: Atoms
    label: float


@register_task
class BindingTask(DirectoryTask[NoParams]):
    name = "lambench_binding"
    category = Category.PROPERTY
    version = "1"
    Params = NoParams
    scored_metrics = ("mae",)
    # LAMBench's published binding_energy MAE baseline
    dummy_values = {"mae": 8.098}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: NoParams) -> dict[str, Metric]:
        """MAE and RMSE of the binding energies over the scored records."""
        return error_metrics(records, "kcal/mol", predicted="predicted")

    def run(self, model: LoadedModel, root: Path, params: NoParams, context: TaskContext) -> TaskOutput:
        *paths, labels_path = require_files(root, [*BINDING_FILES, "labels.npy"])
        site, drug, combined = (read_trajectory(path) for path in paths)
        try:
            labels = np.asarray(np.load(labels_path, allow_pickle=False), float)
        except Exception as exc:
            raise InputError(labels_path, None, f"unreadable ({type(exc).__name__}: {exc})") from None
        if labels.ndim != 1:
            raise InputError(labels_path, None, f"expected a 1-D array, got shape {labels.shape}")
        for path, frames in zip(paths, (site, drug, combined), strict=True):
            if len(frames) != labels.size:
                raise InputError(path, "frames", f"{len(frames)} frames for {labels.size} labels in labels.npy")
        width = len(str(labels.size - 1)) if labels.size else 1
        items = [
            (f"complex{i:0{width}d}", Complex(bare(site[i]), bare(drug[i]), bare(combined[i]), float(labels[i])))
            for i in range(labels.size)
        ]
        timer = Timer()

        def evaluate(name: str, item: Complex) -> dict[str, Any]:
            if not np.isfinite(item.label):
                raise ItemFailure("the label is not finite")
            energies = [timer.energy(model, atoms) for atoms in (item.combined, item.site, item.drug)]
            binding = (energies[0] - energies[1] - energies[2]) / KCAL_PER_MOL
            return {"reference": item.label, "predicted": binding}

        results = evaluate_items(model, items, lambda c: [c.combined, c.site, c.drug], evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)


# --------------------------------------------------------------------------------------------------
# BH876 reaction barriers


@dataclass(frozen=True)
class Reaction:
    terms: list[tuple[float, str]] | None  # None: the row could not be parsed (see problem)
    reference: float  # kcal/mol
    problem: str | None = None


def parse_reaction(row: dict[str, str], known: set[str]) -> Reaction:
    try:
        reference = float(row["Reference"]) * HARTREE_IN_KCAL
    except (TypeError, ValueError):
        return Reaction(None, float("nan"), f"Reference {row['Reference']!r} is not a number")
    if not np.isfinite(reference):
        return Reaction(None, reference, f"Reference {row['Reference']!r} is not finite")
    fields = [part.strip() for part in (row["Stoichiometry"] or "").split(",")]
    if len(fields) < 2 or len(fields) % 2:
        return Reaction(None, reference, f"Stoichiometry {row['Stoichiometry']!r} is not coef,ID pairs")
    terms = []
    for coefficient, species in zip(fields[::2], fields[1::2], strict=True):
        try:
            value = float(coefficient)
        except ValueError:
            return Reaction(None, reference, f"coefficient {coefficient!r} is not a number")
        if species not in known:
            return Reaction(None, reference, f"species {species!r} is not in lookup_table.csv")
        terms.append((value, species))
    return Reaction(terms, reference)


@register_task
class ReactionBarrierTask(DirectoryTask[NoParams]):
    name = "lambench_rxn_barrier"
    category = Category.PROPERTY
    version = "1"
    Params = NoParams
    scored_metrics = ("mae",)
    # LAMBench's published rxn_barrier MAE baseline
    dummy_values = {"mae": 20.975}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: NoParams) -> dict[str, Metric]:
        """MAE and RMSE of the reaction energies and barriers over the scored records."""
        return error_metrics(records, "kcal/mol", predicted="predicted")

    def run(self, model: LoadedModel, root: Path, params: NoParams, context: TaskContext) -> TaskOutput:
        traj_path, lookup_path, stoichiometry_path = require_files(
            root, ["BH876.traj", "lookup_table.csv", "stoichiometry.csv"]
        )
        frames = read_trajectory(traj_path)
        lookup = read_csv_rows(lookup_path, ("ID",))
        rows = read_csv_rows(stoichiometry_path, ("Stoichiometry", "Reference"))
        if len(lookup) != len(frames):
            raise InputError(lookup_path, "ID", f"{len(lookup)} rows for {len(frames)} frames in {traj_path.name}")
        species: dict[str, Atoms] = {}
        for index, row in enumerate(lookup):
            name = (row["ID"] or "").strip()
            if name in species:
                raise InputError(lookup_path, "ID", f"species {name!r} appears twice")
            species[name] = bare(frames[index])
        names = [(row.get("Reaction") or "").strip() or f"reaction{i:04d}" for i, row in enumerate(rows)]
        if len(set(names)) != len(names):
            names = [f"reaction{i:04d}" for i in range(len(rows))]
        items = [(name, parse_reaction(row, set(species))) for name, row in zip(names, rows, strict=True)]
        timer = Timer()
        energy = Cached(lambda name: timer.energy(model, species[name]))

        def structures(reaction: Reaction) -> list[Atoms]:
            if reaction.terms is None:
                raise ItemFailure(reaction.problem or "unreadable row")
            return [species[name] for _, name in reaction.terms]

        def evaluate(name: str, reaction: Reaction) -> dict[str, Any]:
            assert reaction.terms is not None
            total = 0.0
            for coefficient, species_name in reaction.terms:
                try:
                    total += coefficient * energy(species_name)
                except Exception as exc:
                    raise ItemFailure(f"species {species_name}: {type(exc).__name__}: {exc}") from None
            return {
                "stoichiometry": [[c, s] for c, s in reaction.terms],
                "reference": reaction.reference,
                "predicted": total / KCAL_PER_MOL,
            }

        results = evaluate_items(model, items, structures, evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)
