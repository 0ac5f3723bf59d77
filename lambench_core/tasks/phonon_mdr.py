"""Phonons of the MDR PBE database (Loew et al., arXiv:2412.16551) in LAMBench's layout.

Files: one phonopy file per material, `<mp_id>.yaml.bz2` or `<mp_id>.yaml` (only its unit cell,
supercell matrix and primitive matrix are read — the DFT forces in it are not used), and `pbe.csv`
with columns mp_id, max_freq (K), entropy (J/K/mol), free_energy (kJ/mol) and heat_capacity
(J/K/mol) at 300 K. Thermal properties are phonopy's: per mole of primitive cells.

Per material: the unit cell is relaxed with the model (tasks/relaxation.py: FIRE, FrechetCellFilter,
FixSymmetry, fmax 1e-3 eV/Å, 500 steps by default; a relaxation that raises or explodes fails the
item, hitting the step limit does not); phonopy builds the supercell and primitive cell from the
file's matrices with ASE's standard atomic masses and displaces atoms by `displacement` (0.01 Å,
± as phonopy decides, not only along axes); the model's forces on each displaced supercell, minus
their mean (drift), give force constants (finite differences, then phonopy's translational and
permutational symmetrization: phonons.produce_force_constants). Then Cv, S and F at 300 K on
`mesh` (default 100.0: phonopy's length-based automatic mesh, not Γ-centred, Γ's acoustic modes
included, all as phonopy's defaults), and the highest frequency over the q-points commensurate with
the supercell (exact for it, no interpolation), converted THz → K with h·10¹²/k_B = 47.99243 K/THz
from ASE's CODATA constants (LAMBench: 47.9924).

Items are the rows of pbe.csv (LAMBench's success rate is over those rows): a row without a
phonopy file is a failed item; a phonopy file without a row is an input error.
Metrics (scored; MAE over the scored materials): max_freq_mae (K), entropy_mae (J/K/mol),
free_energy_mae (kJ/mol), heat_capacity_mae (J/K/mol). Difference from LAMBench: it evaluates the
frequencies at `get_commensurate_points(supercell_matrix)`, points of the unit cell's reciprocal
lattice, but passes them to phonopy as coordinates of the primitive cell's; the two agree only when
the unit cell is primitive. Here the supercell matrix is first expressed in the primitive cell's
basis (P⁻¹·S), so the points are the supercell's commensurate points whatever the unit cell.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambench_core.categories import Category
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import DirectoryTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import ItemFailure, Timer, evaluate_items, mean_or_none
from lambench_core.tasks.lambench_files import as_float, read_csv_rows, require_files
from lambench_core.tasks.phonons import (
    commensurate_qpoints,
    distance_to_angstrom,
    model_forces,
    produce_force_constants,
    to_ase,
)
from lambench_core.tasks.relaxation import RelaxationParams, relax

if TYPE_CHECKING:
    from phonopy import Phonopy  # imported where a calculation runs (see phonons.py)

THZ_IN_K = units._hplanck * 1e12 / units._k  # h·(1 THz)/k_B = 47.99243 K
TEMPERATURE_K = 300.0  # the temperature of pbe.csv's labels
LABELS = ("max_freq", "entropy", "free_energy", "heat_capacity")
UNITS = {"max_freq": "K", "entropy": "J/K/mol", "free_energy": "kJ/mol", "heat_capacity": "J/K/mol"}
SUFFIXES = (".yaml.bz2", ".yaml")


class PhononMDRParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relaxation: RelaxationParams = Field(
        default=RelaxationParams(fmax=1e-3, steps=500, optimizer="FIRE", relax_cell=True, fix_symmetry=True),
        description="Relaxation of the unit cell before the phonon calculation",
    )
    displacement: float = Field(default=0.01, gt=0.0, le=0.2, description="Å, finite-difference displacement")
    mesh: float | list[int] = Field(
        default=100.0, description="q-mesh of Cv, S, F: phonopy's length (Å) or three mesh numbers"
    )

    @field_validator("mesh")
    @classmethod
    def _valid_mesh(cls, value: float | list[int]) -> float | list[int]:
        if isinstance(value, list):
            if len(value) != 3 or any(n < 1 for n in value):
                raise ValueError("mesh numbers must be three positive integers")
        elif value <= 0:
            raise ValueError("mesh length must be positive")
        return value


def material_id(path: Path) -> str:
    return path.name.split(".")[0]


def phonopy_files(root: Path) -> dict[str, Path]:
    """mp_id → its phonopy file; InputError when one id has two files."""
    found: dict[str, Path] = {}
    for suffix in SUFFIXES:
        for path in sorted(root.glob(f"*{suffix}")):
            if not path.is_file() or not path.name.endswith(suffix):
                continue
            mp_id = material_id(path)
            if mp_id in found:
                raise InputError(path, None, f"{found[mp_id].name} holds the same material {mp_id}")
            found[mp_id] = path
    return found


@dataclass(frozen=True)
class PhonopyInput:
    """What the task takes from a phonopy file: the unit cell (Å) and the two matrices."""

    unitcell: Atoms
    supercell_matrix: np.ndarray
    primitive_matrix: np.ndarray | Literal["auto"]


def read_phonopy_input(path: Path) -> PhonopyInput:
    from phonopy.interface.phonopy_yaml import read_phonopy_yaml  # phonopy: imported where it runs

    data = read_phonopy_yaml(path)
    if data.unitcell is None:
        raise ItemFailure(f"{path.name} has no unit_cell")
    if data.supercell_matrix is None:
        raise ItemFailure(f"{path.name} has no supercell_matrix")
    distance = distance_to_angstrom(data.calculator)
    primitive: np.ndarray | Literal["auto"] = data.primitive_matrix if data.primitive_matrix is not None else "auto"
    return PhonopyInput(
        unitcell=to_ase(data.unitcell, distance),
        supercell_matrix=np.asarray(data.supercell_matrix, dtype=int),
        primitive_matrix=primitive,
    )


def build_phonopy(atoms: Atoms, source: PhonopyInput, displacement: float) -> Phonopy:
    """A phonopy object on `atoms` (Å, ASE masses) with its displaced supercells generated."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unitcell = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.array(atoms.cell),
        scaled_positions=atoms.get_scaled_positions(),
        masses=atoms.get_masses(),
    )
    phonon = Phonopy(unitcell, supercell_matrix=source.supercell_matrix, primitive_matrix=source.primitive_matrix)
    phonon.generate_displacements(distance=displacement, is_diagonal=False)
    return phonon


def phonon_properties(phonon: Phonopy, mesh: float | list[int]) -> dict[str, float]:
    """max_freq (K) at the commensurate q-points and Cv, S, F at 300 K, per mole of primitive cells."""
    phonon.run_qpoints(commensurate_qpoints(phonon))
    assert phonon.qpoints is not None  # set by run_qpoints
    max_freq = float(np.max(phonon.qpoints.frequencies)) * THZ_IN_K
    phonon.run_mesh(mesh)
    with warnings.catch_warnings():
        # phonopy ≥ 4 warns, once per material, that Γ's near-zero acoustic modes enter the sums
        # (≈ 1e-5 eV per cell here); they do, as in LAMBench's phonopy defaults.
        warnings.filterwarnings("ignore", message=r".*acoustic mode\(s\) at Gamma", category=UserWarning)
        phonon.run_thermal_properties(temperatures=[TEMPERATURE_K])
    thermal = phonon.thermal_properties
    # Set by run_thermal_properties.
    assert thermal is not None and thermal.heat_capacity is not None
    assert thermal.entropy is not None and thermal.free_energy is not None
    return {
        "max_freq": max_freq,
        "entropy": float(thermal.entropy[0]),
        "free_energy": float(thermal.free_energy[0]),
        "heat_capacity": float(thermal.heat_capacity[0]),
    }


@register_task
class PhononMDRTask(DirectoryTask[PhononMDRParams]):
    name = "lambench_phonon_mdr"
    category = Category.PROPERTY
    version = "1"
    Params = PhononMDRParams
    scored_metrics = tuple(f"{label}_mae" for label in LABELS)
    # LAMBench's published phonon_mdr baselines.
    dummy_values = {"max_freq_mae": 1188.3, "entropy_mae": 764.8, "free_energy_mae": 125.1, "heat_capacity_mae": 547.4}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: PhononMDRParams) -> dict[str, Metric]:
        """MAE of each label (max_freq, entropy, free_energy, heat_capacity) over the scored materials."""
        return {
            f"{label}_mae": Metric(
                value=mean_or_none(abs(r[label] - r[f"{label}_ref"]) for r in records), unit=UNITS[label]
            )
            for label in LABELS
        }

    def run(self, model: LoadedModel, root: Path, params: PhononMDRParams, context: TaskContext) -> TaskOutput:
        (label_path,) = require_files(root, ("pbe.csv",))
        rows = read_csv_rows(label_path, ("mp_id", *LABELS))
        ids = [row["mp_id"] for row in rows]
        if any(not mp_id for mp_id in ids):
            raise InputError(label_path, "mp_id", "empty material id")
        duplicates = sorted({mp_id for mp_id in ids if ids.count(mp_id) > 1})
        if duplicates:
            raise InputError(label_path, "mp_id", f"listed more than once: {', '.join(duplicates[:5])}")
        files = phonopy_files(root)
        unlabelled = sorted(set(files) - set(ids))
        if unlabelled:
            raise InputError(
                files[unlabelled[0]],
                "mp_id",
                f"no row of {label_path.name} for {', '.join(unlabelled[:5])}"
                + (f" and {len(unlabelled) - 5} more" if len(unlabelled) > 5 else ""),
            )
        timer = Timer()

        @functools.cache
        def source(mp_id: str) -> PhonopyInput:
            if mp_id not in files:
                raise ItemFailure(f"no phonopy file ({mp_id}.yaml.bz2 or {mp_id}.yaml)")
            try:
                return read_phonopy_input(files[mp_id])
            except ItemFailure:
                raise
            except Exception as exc:
                raise ItemFailure(f"unreadable {files[mp_id].name}: {type(exc).__name__}: {exc}") from None

        def evaluate(mp_id: str, row: dict[str, str]) -> dict[str, Any]:
            references = {label: as_float(row[label], label) for label in LABELS}
            given = source(mp_id)
            relaxed = relax(model, given.unitcell, params.relaxation, timer)
            phonon = build_phonopy(relaxed.atoms, given, params.displacement)
            forces = []
            assert phonon.supercells_with_displacements is not None  # set by generate_displacements
            for supercell in phonon.supercells_with_displacements:
                force = model_forces(model, to_ase(supercell, 1.0), timer)
                forces.append(force - force.mean(axis=0))
            produce_force_constants(phonon, forces)
            predicted = phonon_properties(phonon, params.mesh)
            for label, value in predicted.items():
                if not np.isfinite(value):
                    raise ItemFailure(f"non-finite {label}")
            return {
                "formula": relaxed.atoms.get_chemical_formula(),
                "n_atoms_primitive": len(phonon.primitive),
                "n_supercells": len(forces),
                "relaxation_converged": relaxed.converged,
                "relaxation_steps": relaxed.steps,
                "volume_per_atom": float(relaxed.atoms.get_volume() / len(relaxed.atoms)),
                **{label: predicted[label] for label in LABELS},
                **{f"{label}_ref": references[label] for label in LABELS},
            }

        results = evaluate_items(
            model,
            [(row["mp_id"], row) for row in sorted(rows, key=lambda r: r["mp_id"])],
            lambda row: [source(row["mp_id"]).unitcell],
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)
