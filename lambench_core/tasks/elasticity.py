"""Elastic constants from stresses of strained cells: the shipped cubic set and LAMBench's elastic set.

The fit (pure functions, GPa): for each Voigt strain component j, applied at several magnitudes to
an unstrained cell, the slope of every Voigt stress σ_i against the strain is C_ij — a least-squares
line through the strained cells' stresses and the unstrained cell's own stress (so a residual
stress at zero strain shifts the line, not the slope). Stresses carry ASE's sign (tension
positive), so σ = C ε; shear strains are engineering strains γ = 2ε. Strained cells are
`apply_strain(cell, voigt_strain_matrix(j, magnitude))`: deformation gradient F = 1 + ε (symmetric).
The Voigt–Reuss–Hill moduli come from the symmetric part of a full 6×6 tensor, Reuss through the
compliance S = C⁻¹ (Voigt notation with engineering shear):
    K_V = [(C11+C22+C33) + 2(C12+C23+C13)] / 9,  G_V = [(C11+C22+C33) − (C12+C23+C13) + 3(C44+C55+C66)] / 15,
    1/K_R = (S11+S22+S33) + 2(S12+S23+S13),      15/G_R = 4(S11+S22+S33) − 4(S12+S23+S13) + 3(S44+S55+S66),
    K_VRH = (K_V + K_R)/2, G_VRH = (G_V + G_R)/2.
A tensor that is zero everywhere (a model whose stress does not depend on strain, like the dummy)
has moduli 0; any other singular tensor has no Reuss bound and its item fails.

Tasks (property tasks, inorganic materials; a model that predicts no stress skips every item):

- `elastic_cubic` reads the shipped set lambench_core/data/sets/elastic_cubic (recipe
  data/recipes/elastic_cubic.yaml, Quantum ESPRESSO PBE stresses): one-atom fcc cells whose frames
  carry `system`, `strain_component` (−1 for the unstrained cell, Voigt 0 = xx, 3 = yz) and `strain`
  in their info. The reference constants are fitted from the frames' stresses (σ = −virial/V). The
  model relaxes the unstrained cell (cell and positions, FIRE, FrechetCellFilter), the same strains
  are applied to its relaxed cell, and its single-point stresses are fitted the same way. From the
  columns of components 0 and 3 only: C11 = C_11, C12 = (C_21 + C_31)/2, C44 = C_44, and K, G are the
  VRH moduli of the cubic tensor built from them. Scored: k_vrh_mae and g_vrh_mae (GPa); C11, C12
  and C44 MAEs are reported. One item per system.

- `lambench_elastic` reads LAMBench's elastic.json (a list of {poscar, G_VRH, K_VRH}, GPa; Materials
  Project elastic tensors of de Jong et al., Sci. Data 2, 150009 (2015)) from the data directory.
  Per entry: relax with FIRE + FrechetCellFilter, no symmetry constraint, fmax 1e-3 eV/Å, 500 steps
  (the step limit is not a failure); strain the relaxed cell along all 6 Voigt components — normal
  strains linspace(−0.01, 0.01, 4), shear tensor strains ε_ij = linspace(−0.06, 0.06, 4), i.e.
  engineering γ = ±0.04, ±0.12, the magnitudes pymatgen's DeformedStructureSet gives LAMBench —
  single-point stresses without ion relaxation, the fit above including the relaxed cell's stress,
  then VRH. Scored: g_vrh_mae and k_vrh_mae (GPa), LAMBench's MAE_G_VRH and MAE_K_VRH, with its
  dummy values. Entries that fail (unreadable POSCAR, failed relaxation, singular tensor) are
  failed items; the harness turns them into the success rate (scored ÷ attempted), which LAMBench
  uses as this task's penalty.

How `lambench_elastic` differs from LAMBench (pymatgen through matcalc): pymatgen deforms with an
upper-triangular F whose Green–Lagrange strain is the nominal one and fits against that strain;
here F = 1 + ε and the fit is against ε. The two differ at second order in the strain, which the
symmetric ± magnitudes largely cancel. pymatgen's fit is C[strain, stress] (the transpose of C_ij
here) and its VRH uses that raw, slightly asymmetric matrix; here the symmetric part is used. An
exploding relaxation (|F| > 10⁴ eV/Å, a threefold volume change, non-finite forces) fails the item,
where LAMBench would fit whatever came out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.data.labelling.generators import apply_strain, voigt_strain_matrix
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model
from lambench_core.results.record import Metric
from lambench_core.tasks.base import DirectoryTask, FramesTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import DEFAULT_PADDING, ItemFailure, Timer, evaluate_items, mean_or_none
from lambench_core.tasks.relaxation import RelaxationParams, relax

VOIGT_INDEX = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
UNSTRAINED = -1
# |C_ij| below this (GPa) everywhere: a tensor that is zero, not one that is merely small.
ZERO_STIFFNESS_GPA = 1e-9
# A stiffness tensor this ill-conditioned has no meaningful compliance (Reuss bound).
SINGULAR_CONDITION = 1e12
NO_STRESS_REASON = "model predicts no stress"


# --- the fit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrainedStress:
    """One strained cell's stress: Voigt component (0–5), strain magnitude (engineering for shear)
    and the 3×3 stress (eV/Å³, ASE's sign, tension positive)."""

    component: int
    strain: float
    stress: np.ndarray


def voigt_stress(stress: np.ndarray) -> np.ndarray:
    """(σxx, σyy, σzz, σyz, σxz, σxy) from a 3×3 tensor or a Voigt 6-vector."""
    array = np.asarray(stress, dtype=float)
    if array.shape == (6,):
        return array.copy()
    if array.shape != (3, 3):
        raise ValueError(f"a stress is a 3×3 tensor or a Voigt 6-vector, not shape {array.shape}")
    return np.array([array[i, j] for i, j in VOIGT_INDEX])


def fit_stiffness(eq_stress: np.ndarray, samples: Sequence[StrainedStress]) -> np.ndarray:
    """The 6×6 Voigt stiffness C (GPa), C[i, j] = dσ_i/dε_j, by a least-squares line per strain
    component through the unstrained stress (at zero strain) and the strained stresses. Columns of
    components without samples are NaN."""
    eq = voigt_stress(eq_stress)
    by_component: dict[int, list[StrainedStress]] = {}
    for sample in samples:
        if not 0 <= sample.component < 6:
            raise ValueError(f"Voigt strain components are 0–5, not {sample.component}")
        if sample.strain == 0.0:
            raise ValueError(f"component {sample.component}: a strained cell needs a non-zero strain")
        by_component.setdefault(sample.component, []).append(sample)
    stiffness = np.full((6, 6), np.nan)
    for component, points in by_component.items():
        strains = np.array([0.0, *(p.strain for p in points)])
        stresses = np.array([eq, *(voigt_stress(p.stress) for p in points)])
        if not np.all(np.isfinite(stresses)):
            raise ItemFailure(f"non-finite stress for strain component {component}")
        slope = np.polyfit(strains, stresses, 1)[0]
        stiffness[:, component] = slope / units.GPa
    return stiffness


@dataclass(frozen=True)
class CubicConstants:
    c11: float
    c12: float
    c44: float

    def tensor(self) -> np.ndarray:
        stiffness = np.zeros((6, 6))
        stiffness[:3, :3] = self.c12
        stiffness[[0, 1, 2], [0, 1, 2]] = self.c11
        stiffness[[3, 4, 5], [3, 4, 5]] = self.c44
        return stiffness


def cubic_constants(stiffness: np.ndarray) -> CubicConstants:
    """C11, C12, C44 from the columns of components 0 (ε_xx) and 3 (γ_yz) of a fitted tensor."""
    c = np.asarray(stiffness, dtype=float)
    needed = [c[0, 0], c[1, 0], c[2, 0], c[3, 3]]
    if not np.all(np.isfinite(needed)):
        raise ValueError("cubic constants need the fitted columns of strain components 0 and 3")
    return CubicConstants(c11=float(c[0, 0]), c12=float((c[1, 0] + c[2, 0]) / 2.0), c44=float(c[3, 3]))


@dataclass(frozen=True)
class VRHModuli:
    """Voigt, Reuss and Hill bulk (K) and shear (G) moduli, in the tensor's unit (GPa here)."""

    k_voigt: float
    k_reuss: float
    g_voigt: float
    g_reuss: float

    @property
    def k_vrh(self) -> float:
        return (self.k_voigt + self.k_reuss) / 2.0

    @property
    def g_vrh(self) -> float:
        return (self.g_voigt + self.g_reuss) / 2.0


def vrh_moduli(stiffness: np.ndarray) -> VRHModuli:
    """VRH moduli of the symmetric part of a full 6×6 Voigt stiffness tensor."""
    c = np.asarray(stiffness, dtype=float)
    if c.shape != (6, 6) or not np.all(np.isfinite(c)):
        raise ItemFailure("VRH moduli need a finite, full 6×6 stiffness tensor")
    c = (c + c.T) / 2.0
    if np.all(np.abs(c) < ZERO_STIFFNESS_GPA):
        return VRHModuli(0.0, 0.0, 0.0, 0.0)
    if np.linalg.cond(c) > SINGULAR_CONDITION:
        raise ItemFailure("the stiffness tensor is singular: no Reuss bound")
    s = np.linalg.inv(c)
    diagonal, off_diagonal, shear = np.trace(c[:3, :3]), c[0, 1] + c[1, 2] + c[0, 2], np.trace(c[3:, 3:])
    k_voigt = (diagonal + 2.0 * off_diagonal) / 9.0
    g_voigt = (diagonal - off_diagonal + 3.0 * shear) / 15.0
    s_diagonal, s_off_diagonal, s_shear = np.trace(s[:3, :3]), s[0, 1] + s[1, 2] + s[0, 2], np.trace(s[3:, 3:])
    k_reuss = 1.0 / (s_diagonal + 2.0 * s_off_diagonal)
    g_reuss = 15.0 / (4.0 * s_diagonal - 4.0 * s_off_diagonal + 3.0 * s_shear)
    moduli = VRHModuli(float(k_voigt), float(k_reuss), float(g_voigt), float(g_reuss))
    if not all(np.isfinite([moduli.k_vrh, moduli.g_vrh])):
        raise ItemFailure("non-finite VRH moduli")
    return moduli


# --- the model side -----------------------------------------------------------------------------


def model_stress(model: LoadedModel, atoms: Atoms, timer: Timer) -> np.ndarray:
    """The model's 3×3 stress (eV/Å³, ASE's sign), timed into `timer`; ItemFailure if non-finite."""
    prepared = prepare_for_model(model.card, atoms, DEFAULT_PADDING)
    prepared.calc = model.calculator
    start = time.perf_counter()
    try:
        stress = np.array(prepared.get_stress(voigt=False), dtype=float)
    finally:
        timer.seconds += time.perf_counter() - start
    if stress.shape != (3, 3) or not np.all(np.isfinite(stress)):
        raise ItemFailure("non-finite or misshapen stress predicted")
    return stress


def model_stiffness(
    model: LoadedModel, relaxed: Atoms, strains: Sequence[tuple[int, float]], timer: Timer
) -> np.ndarray:
    """The model's stiffness (GPa) at its relaxed cell: single-point stresses of the cell strained
    by each (component, magnitude), fitted with the relaxed cell's own stress."""
    eq_stress = model_stress(model, relaxed, timer)
    samples = []
    for component, magnitude in strains:
        strained = apply_strain(relaxed, voigt_strain_matrix(component, magnitude))
        samples.append(StrainedStress(component, magnitude, model_stress(model, strained, timer)))
    return fit_stiffness(eq_stress, samples)


def relaxation_params(fmax: float, steps: int, pressure_GPa: float = 0.0) -> RelaxationParams:
    """Cell and positions, FIRE, FrechetCellFilter, no symmetry constraint (LAMBench's settings)."""
    return RelaxationParams(
        fmax=fmax, steps=steps, optimizer="FIRE", relax_cell=True, fix_symmetry=False, pressure_GPa=pressure_GPa
    )


def _mae(records: list[dict[str, Any]], key: str) -> float | None:
    return mean_or_none(abs(r[key] - r[f"{key}_ref"]) for r in records)


# --- elastic_cubic ------------------------------------------------------------------------------


class ElasticCubicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systems: list[str] | None = Field(default=None, description="A subset of the dataset's systems")
    fmax: float = Field(default=1e-3, gt=0.0, le=1.0, description="eV/Å, relaxation of the unstrained cell")
    steps: int = Field(default=500, ge=0, le=100_000)


@dataclass
class CubicSystem:
    """One system of the cubic set: its unstrained frame, the strains applied, reference stresses."""

    unstrained: Frame
    strained: list[Frame]

    def strains(self) -> list[tuple[int, float]]:
        return [(int(f.atoms.info["strain_component"]), float(f.atoms.info["strain"])) for f in self.strained]


def frame_stress(frame: Frame) -> np.ndarray:
    """A frame's reference stress (eV/Å³, ASE's sign) from its virial: σ = −W/V."""
    assert frame.virial is not None
    return -np.asarray(frame.virial, dtype=float) / frame.atoms.get_volume()


def cubic_systems(frames: list[Frame], source: str) -> dict[str, CubicSystem]:
    """Group the frames by system and check they hold what the cubic fit needs."""
    unstrained: dict[str, list[Frame]] = {}
    strained: dict[str, list[Frame]] = {}
    for frame in frames:
        info = frame.atoms.info
        for key in ("system", "strain_component", "strain"):
            if key not in info:
                raise InputError(source, f"frame {frame.frame_id}: info.{key}", "missing")
        if frame.virial is None or not frame.periodic:
            raise InputError(source, f"frame {frame.frame_id}: virial", "a periodic frame with a virial is needed")
        component, strain = int(info["strain_component"]), float(info["strain"])
        system = str(info["system"])
        if component == UNSTRAINED:
            unstrained.setdefault(system, []).append(frame)
        elif 0 <= component < 6 and strain != 0.0:
            strained.setdefault(system, []).append(frame)
        else:
            raise InputError(
                source, f"frame {frame.frame_id}: info.strain_component", f"{component} with strain {strain}"
            )
    systems: dict[str, CubicSystem] = {}
    for system in sorted(set(unstrained) | set(strained)):
        if len(unstrained.get(system, [])) != 1:
            raise InputError(source, f"system {system}", "needs exactly one unstrained frame (strain_component −1)")
        found = CubicSystem(unstrained[system][0], strained.get(system, []))
        missing = {0, 3} - {component for component, _ in found.strains()}
        if missing:
            raise InputError(source, f"system {system}", f"no strained frames of component(s) {sorted(missing)}")
        systems[system] = found
    if not systems:
        raise InputError(source, None, "holds no frames")
    return systems


def reference_constants(system: CubicSystem) -> tuple[CubicConstants, VRHModuli]:
    samples = [
        StrainedStress(int(f.atoms.info["strain_component"]), float(f.atoms.info["strain"]), frame_stress(f))
        for f in system.strained
    ]
    constants = cubic_constants(fit_stiffness(frame_stress(system.unstrained), samples))
    return constants, vrh_moduli(constants.tensor())


@register_task
class ElasticCubicTask(FramesTask[ElasticCubicParams]):
    name = "elastic_cubic"
    category = Category.PROPERTY
    version = "1"
    Params = ElasticCubicParams
    scored_metrics = ("k_vrh_mae", "g_vrh_mae")
    # The dummy model's stresses are zero, so all its moduli are 0 and its errors are the mean
    # |K_VRH| and |G_VRH| of the reference (GPa) in elastic_cubic_pbe; tests/core/test_elasticity.py
    # re-derives them from the shipped file.
    DUMMY_K_GPA: ClassVar[float] = 194.70336255451377
    DUMMY_G_GPA: ClassVar[float] = 96.59714487324713
    dummy_values = {"k_vrh_mae": DUMMY_K_GPA, "g_vrh_mae": DUMMY_G_GPA}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: ElasticCubicParams) -> dict[str, Metric]:
        """MAE of the moduli and cubic constants over the scored systems."""
        keys = ("k_vrh", "g_vrh", "c11", "c12", "c44")
        return {f"{key}_mae": Metric(value=_mae(records, key), unit="GPa") for key in keys}

    def run(
        self, model: LoadedModel, frames: list[Frame], params: ElasticCubicParams, context: TaskContext
    ) -> TaskOutput:
        source = f"the dataset of task {self.name}"
        systems = cubic_systems(frames, source)
        if params.systems is not None:
            unknown = sorted(set(params.systems) - set(systems))
            if unknown:
                raise InputError(source, "params.systems", f"unknown system(s) {', '.join(unknown)}")
            systems = {name: systems[name] for name in params.systems}
        references: dict[str, tuple[CubicConstants, VRHModuli]] = {}
        for name, system in systems.items():
            try:
                references[name] = reference_constants(system)
            except (ValueError, ItemFailure) as exc:
                message = f"reference stresses give no elastic constants: {exc}"
                raise InputError(source, f"system {name}", message) from None
        if not model.card.capabilities.stress:
            return self.all_skipped(params, list(systems), NO_STRESS_REASON)
        timer = Timer()
        relax_params = relaxation_params(params.fmax, params.steps)

        def evaluate(name: str, system: CubicSystem) -> dict[str, Any]:
            relaxed = relax(model, system.unstrained.atoms, relax_params, timer)
            constants = cubic_constants(model_stiffness(model, relaxed.atoms, system.strains(), timer))
            moduli = vrh_moduli(constants.tensor())
            reference, reference_moduli = references[name]
            n_atoms = len(relaxed.atoms)
            return {
                "c11": constants.c11,
                "c12": constants.c12,
                "c44": constants.c44,
                "k_vrh": moduli.k_vrh,
                "g_vrh": moduli.g_vrh,
                "c11_ref": reference.c11,
                "c12_ref": reference.c12,
                "c44_ref": reference.c44,
                "k_vrh_ref": reference_moduli.k_vrh,
                "g_vrh_ref": reference_moduli.g_vrh,
                "volume": relaxed.atoms.get_volume() / n_atoms,
                "volume_ref": system.unstrained.atoms.get_volume() / n_atoms,
                "relax_converged": relaxed.converged,
                "relax_steps": relaxed.steps,
            }

        results = evaluate_items(
            model, list(systems.items()), lambda system: [system.unstrained.atoms], evaluate, context.progress
        )
        return self.output(params, results, compute_seconds=timer.seconds)


# --- lambench_elastic ---------------------------------------------------------------------------


ELASTIC_FILE = "elastic.json"
ID_KEYS = ("material_id", "mp_id", "task_id")


class LambenchElasticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fmax: float = Field(default=1e-3, gt=0.0, le=1.0, description="eV/Å")
    steps: int = Field(default=500, ge=0, le=100_000)
    normal_strains: list[float] = Field(
        default_factory=lambda: np.linspace(-0.01, 0.01, 4).tolist(), min_length=1, description="ε_xx, ε_yy, ε_zz"
    )
    shear_strains: list[float] = Field(
        default_factory=lambda: np.linspace(-0.06, 0.06, 4).tolist(),
        min_length=1,
        description="Tensor shear strains ε_ij (as pymatgen); the engineering strain applied is γ = 2ε_ij",
    )

    @field_validator("normal_strains", "shear_strains")
    @classmethod
    def _nonzero(cls, values: list[float]) -> list[float]:
        if any(v == 0.0 for v in values):
            raise ValueError("the unstrained cell is always included: strains must be non-zero")
        return values

    def strains(self) -> list[tuple[int, float]]:
        """(Voigt component, engineering strain) of every strained cell."""
        normal = [(component, m) for component in (0, 1, 2) for m in self.normal_strains]
        shear = [(component, 2.0 * m) for component in (3, 4, 5) for m in self.shear_strains]
        return normal + shear


@dataclass(frozen=True)
class ElasticEntry:
    index: int
    poscar: str
    g_vrh: float
    k_vrh: float


def elastic_file(root: Path) -> Path:
    if root.is_file():
        return root
    return root / ELASTIC_FILE


def read_elastic_entries(path: Path) -> list[tuple[str, ElasticEntry]]:
    """(item name, entry) of every element of LAMBench's elastic.json, checked before any model call."""
    if not path.is_file():
        raise InputError(path, None, "missing (LAMBench's elastic set is one JSON file, elastic.json)")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not JSON: {exc}") from None
    if not isinstance(raw, list) or not raw:
        raise InputError(path, None, "must be a non-empty list of {poscar, G_VRH, K_VRH} objects")
    entries = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InputError(path, f"[{index}]", "is not an object")
        if not isinstance(entry.get("poscar"), str):
            raise InputError(path, f"[{index}].poscar", "missing or not a string")
        labels = {}
        for key in ("G_VRH", "K_VRH"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise InputError(path, f"[{index}].{key}", f"missing or not a finite number (GPa): {value!r}")
            labels[key] = float(value)
        identifier = next((str(entry[k]) for k in ID_KEYS if entry.get(k) not in (None, "")), None)
        name = identifier or f"entry_{index:04d}"
        entries.append((name, ElasticEntry(index, entry["poscar"], labels["G_VRH"], labels["K_VRH"])))
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        entries = [(f"{index:04d}:{name}", entry) for index, (name, entry) in enumerate(entries)]
    return entries


def read_poscar(text: str) -> Atoms:
    from ase.io import read  # ase.io pulls in scipy: imported where it is used, not at every step's start

    atoms = read(StringIO(text), format="vasp")
    assert isinstance(atoms, Atoms)
    if len(atoms) == 0 or not atoms.cell.volume > 0:
        raise ValueError("the POSCAR holds no atoms or no cell")
    atoms.pbc = True
    return atoms


@register_task
class LambenchElasticTask(DirectoryTask[LambenchElasticParams]):
    name = "lambench_elastic"
    category = Category.PROPERTY
    version = "1"
    Params = LambenchElasticParams
    scored_metrics = ("g_vrh_mae", "k_vrh_mae")
    # LAMBench's normalisation constants for MAE_G_VRH and MAE_K_VRH (GPa).
    dummy_values = {"g_vrh_mae": 67.5431, "k_vrh_mae": 136.2597}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: LambenchElasticParams) -> dict[str, Metric]:
        """MAE of G_VRH and K_VRH over the scored materials."""
        return {f"{key}_mae": Metric(value=_mae(records, key), unit="GPa") for key in ("g_vrh", "k_vrh")}

    def run(self, model: LoadedModel, root: Path, params: LambenchElasticParams, context: TaskContext) -> TaskOutput:
        entries = read_elastic_entries(elastic_file(root))
        if not model.card.capabilities.stress:
            return self.all_skipped(params, [name for name, _ in entries], NO_STRESS_REASON)
        timer = Timer()
        relax_params = relaxation_params(params.fmax, params.steps)
        strains = params.strains()

        def evaluate(name: str, entry: ElasticEntry) -> dict[str, Any]:
            relaxed = relax(model, read_poscar(entry.poscar), relax_params, timer)
            moduli = vrh_moduli(model_stiffness(model, relaxed.atoms, strains, timer))
            return {
                "index": entry.index,
                "formula": relaxed.atoms.get_chemical_formula(),
                "n_atoms": len(relaxed.atoms),
                "volume": relaxed.atoms.get_volume() / len(relaxed.atoms),
                "k_vrh": moduli.k_vrh,
                "g_vrh": moduli.g_vrh,
                "k_vrh_ref": entry.k_vrh,
                "g_vrh_ref": entry.g_vrh,
                "relax_converged": relaxed.converged,
                "relax_steps": relaxed.steps,
            }

        results = evaluate_items(model, entries, lambda entry: [read_poscar(entry.poscar)], evaluate, context.progress)
        return self.output(params, results, compute_seconds=timer.seconds)
