"""Sanity checks of a model's calculator, run by a model developer before a campaign.

A campaign scores what a calculator returns without asking whether it is physically consistent:
forces that are not the gradient of the energy, a stress of the wrong sign or an energy that moves
with the origin silently produce bad scores (or unstable MD) hours later. These checks catch such
bugs in seconds on three small structures — a molecule, a bulk cell and a slab — picked from a pool
so that they lie within the card's elements.

`check_calculator` works on any ASE calculator (tests hand it broken ones); `check_model` loads a
card's calculator first. Each check is one function in `CHECKS` and yields one `CheckResult` row
per structure; a check that raises fails its row instead of stopping the others.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import voigt_6_to_full_3x3_stress

from lambench_core.domains import Domain
from lambench_core.errors import LambenchError
from lambench_core.models.card import Capabilities, ModelCard, RunLimits
from lambench_core.models.loading import load_model

Kind = Literal["molecule", "bulk", "slab"]
KINDS: tuple[Kind, ...] = ("molecule", "bulk", "slab")
SEED = 20250101


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    INFO = "INFO"  # a measurement that never fails (time per call)


@dataclass(frozen=True)
class CheckResult:
    check: str
    structure: str
    status: Status
    value: str = ""
    tolerance: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CheckTolerances:
    """Finite-difference steps and the largest deviations accepted.

    The steps balance truncation error (∝ step²) against rounding error (∝ ε·|E|/step): float32
    energies carry ~1e-6 relative rounding, so float32 needs larger steps and looser bounds. Energy
    bounds are per atom, so they do not grow with the structure.
    """

    force_step: float  # Å, atom displacement of the force finite differences
    strain_step: float  # dimensionless strain of the stress finite differences
    force_fd: float  # eV/Å, |F − (−∇E)|
    stress_fd: float  # eV/Å³, |σ − (1/V) ∂E/∂ε|
    energy: float  # eV/atom, invariance, extensivity and determinism
    force: float  # eV/Å, invariance, extensivity and determinism
    stress: float  # eV/Å³, invariance, extensivity and determinism
    fd_atoms: int = 3  # atoms displaced (one Cartesian component each) by the force check
    timing_calls: int = 3

    @classmethod
    def for_dtype(cls, dtype: str) -> CheckTolerances:
        if dtype == "float64":
            return cls(
                force_step=1e-4, strain_step=1e-5, force_fd=1e-4, stress_fd=1e-5,
                energy=1e-6, force=1e-5, stress=1e-6,
            )  # fmt: skip
        if dtype == "float32":
            return cls(
                force_step=2e-3, strain_step=1e-3, force_fd=2e-2, stress_fd=1e-3,
                energy=1e-4, force=2e-3, stress=1e-4,
            )  # fmt: skip
        raise ValueError(f"no tolerances for dtype {dtype!r} (float32 or float64)")


@dataclass(frozen=True)
class ModelTraits:
    """What the checks need to know of a card: which structures it accepts and what it predicts."""

    elements: frozenset[str] | None  # None: any element
    capabilities: Capabilities = field(default_factory=Capabilities)
    dtype: str = "float64"
    limits: RunLimits | None = None  # structures a campaign would skip are not checked either

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelTraits:
        return cls(
            elements=card.supported_elements(), capabilities=card.capabilities, dtype=card.dtype, limits=card.limits
        )


# ----------------------------------------------------------------------------------------------
# Structures


@dataclass(frozen=True)
class Candidate:
    kind: Kind
    label: str
    build: Callable[[], Atoms]


def _strained(atoms: Atoms) -> Atoms:
    # A sheared cell has nonzero off-diagonal stress, so a sign or Voigt-order error shows in every
    # component rather than hiding in components that are zero by symmetry.
    strain = np.array([[0.010, 0.006, -0.004], [0.006, -0.008, 0.005], [-0.004, 0.005, 0.004]])
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
    return atoms


def _slab(atoms: Atoms) -> Atoms:
    atoms.pbc = (True, True, False)
    return atoms


def _ase_build(name: str) -> Callable[..., Atoms]:
    """An ase.build function, imported when a candidate is built: ase.build pulls in scipy, most of a
    second that every `lambench` command would pay where its parser imports this module."""
    import ase.build

    builder: Callable[..., Atoms] = getattr(ase.build, name)
    return builder


# Order is preference: the first candidate of each kind within the card's elements is checked.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("molecule", "CH3CH2OH", lambda: _ase_build("molecule")("CH3CH2OH")),
    Candidate("molecule", "H2O", lambda: _ase_build("molecule")("H2O")),
    Candidate("molecule", "CH4", lambda: _ase_build("molecule")("CH4")),
    Candidate("molecule", "NH3", lambda: _ase_build("molecule")("NH3")),
    Candidate("bulk", "Si diamond", lambda: _strained(_ase_build("bulk")("Si", "diamond", a=5.43))),
    Candidate("bulk", "Cu fcc", lambda: _strained(_ase_build("bulk")("Cu", "fcc", a=3.61, cubic=True))),
    Candidate("bulk", "Al fcc", lambda: _strained(_ase_build("bulk")("Al", "fcc", a=4.05, cubic=True))),
    Candidate("bulk", "NaCl rocksalt", lambda: _strained(_ase_build("bulk")("NaCl", "rocksalt", a=5.64))),
    Candidate("slab", "Cu(111)", lambda: _slab(_ase_build("fcc111")("Cu", size=(2, 2, 2), vacuum=6.0))),
    Candidate("slab", "Al(111)", lambda: _slab(_ase_build("fcc111")("Al", size=(2, 2, 2), vacuum=6.0))),
    Candidate("slab", "Si(100)", lambda: _slab(_ase_build("diamond100")("Si", size=(1, 1, 4), vacuum=6.0))),
)

RATTLE = {"molecule": 0.03, "bulk": 0.05, "slab": 0.05}  # Å; nonzero forces on every atom


@dataclass(frozen=True)
class Structure:
    kind: Kind
    label: str
    atoms: Atoms

    @property
    def name(self) -> str:
        return f"{self.label} {self.kind}, {len(self.atoms)} atoms"


def pick_structures(traits: ModelTraits) -> tuple[list[Structure], list[CheckResult]]:
    """One rattled structure per kind within the card's elements, and a SKIP row for each kind without."""
    chosen: list[Structure] = []
    skipped: list[CheckResult] = []
    for kind in KINDS:
        if kind == "molecule" and traits.capabilities.requires_pbc:
            skipped.append(CheckResult("all", kind, Status.SKIP, reason="the card requires PBC"))
            continue
        pool = [candidate for candidate in CANDIDATES if candidate.kind == kind]
        fits = [candidate for candidate in pool if _within(candidate.build(), traits.elements)]
        if not fits:
            tried = ", ".join(candidate.label for candidate in pool)
            skipped.append(CheckResult("all", kind, Status.SKIP, reason=f"none within the card's elements ({tried})"))
            continue
        atoms = fits[0].build()
        if kind == "slab" and traits.capabilities.requires_pbc:
            atoms.pbc = True  # the vacuum (12 Å) is wider than any model's cutoff
        excluded = traits.limits.excludes(atoms) if traits.limits is not None else None
        if excluded:
            skipped.append(CheckResult("all", kind, Status.SKIP, reason=f"the card's limits: {excluded}"))
            continue
        atoms.rattle(RATTLE[kind], seed=SEED)
        chosen.append(Structure(kind, fits[0].label, atoms))
    return chosen, skipped


def _within(atoms: Atoms, elements: frozenset[str] | None) -> bool:
    return elements is None or set(atoms.get_chemical_symbols()) <= elements


# ----------------------------------------------------------------------------------------------
# Evaluation


class BadOutput(ValueError):
    """The calculator returned something of the wrong shape, type or value."""


@dataclass(frozen=True)
class Evaluation:
    energy: float
    forces: np.ndarray | None  # (n, 3)
    stress: np.ndarray | None  # (3, 3), ASE's sign
    description: str  # what the calculator returned, as the shapes row shows it


def _energy(value: object) -> tuple[float, str]:
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind != "f":
        raise BadOutput(f"energy is {type(value).__name__} of shape {array.shape}, expected a float scalar")
    if not np.isfinite(array):
        raise BadOutput(f"energy is {float(array)}")
    return float(array), f"E {array.dtype}"


def _forces(value: object, n_atoms: int) -> tuple[np.ndarray, str]:
    array = np.asarray(value)
    if array.shape != (n_atoms, 3) or array.dtype.kind != "f":
        raise BadOutput(f"forces have shape {array.shape} and dtype {array.dtype}, expected ({n_atoms}, 3) floats")
    if not np.isfinite(array).all():
        raise BadOutput("forces are not all finite")
    return array.astype(np.float64), f"F {array.shape} {array.dtype}"


def _stress(value: object) -> tuple[np.ndarray, str]:
    array = np.asarray(value)
    if array.shape not in ((6,), (3, 3)) or array.dtype.kind != "f":
        raise BadOutput(f"stress has shape {array.shape} and dtype {array.dtype}, expected (6,) or (3, 3) floats")
    if not np.isfinite(array).all():
        raise BadOutput("stress is not all finite")
    full = voigt_6_to_full_3x3_stress(array) if array.shape == (6,) else array
    return np.asarray(full, dtype=np.float64), f"σ {array.shape} {array.dtype}"


@dataclass
class Probe:
    """One structure under test, with the calculator's first answer for it kept as the reference."""

    structure: Structure
    calculator: Calculator
    traits: ModelTraits
    tolerances: CheckTolerances
    _reference: Evaluation | None = None

    @property
    def atoms(self) -> Atoms:
        return self.structure.atoms

    @property
    def wants_forces(self) -> bool:
        return self.traits.capabilities.forces

    def wants_stress(self, atoms: Atoms | None = None) -> bool:
        atoms = self.atoms if atoms is None else atoms
        return self.traits.capabilities.stress and bool(atoms.pbc.all())

    def evaluate(self, atoms: Atoms) -> Evaluation:
        atoms = atoms.copy()
        atoms.calc = self.calculator
        # ASE calculators return cached results for an unchanged structure; determinism and timing
        # need a real recomputation every time.
        self.calculator.reset()
        energy, description = _energy(self.calculator.get_potential_energy(atoms))
        parts = [description]
        forces = stress = None
        if self.wants_forces:
            forces, description = _forces(self.calculator.get_forces(atoms), len(atoms))
            parts.append(description)
        if self.wants_stress(atoms):
            stress, description = _stress(self.calculator.get_stress(atoms))
            parts.append(description)
        return Evaluation(energy, forces, stress, "; ".join(parts))

    def energy(self, atoms: Atoms) -> float:
        atoms = atoms.copy()
        atoms.calc = self.calculator
        self.calculator.reset()
        return _energy(self.calculator.get_potential_energy(atoms))[0]

    @property
    def reference(self) -> Evaluation:
        if self._reference is None:
            self._reference = self.evaluate(self.atoms)
        return self._reference


class Skip(Exception):
    """A check that does not apply to this model or structure; the message is the reason."""


# ----------------------------------------------------------------------------------------------
# Checks: each returns (value, tolerance, failure reason or "") for one structure.

Outcome = tuple[str, str, str]


@dataclass(frozen=True)
class Deviation:
    """Largest deviations of one evaluation from what it should be, against their tolerances."""

    energy: float | None = None  # eV/atom
    forces: float | None = None  # eV/Å
    stress: float | None = None  # eV/Å³

    def outcome(self, tolerances: CheckTolerances) -> Outcome:
        rows = [
            ("ΔE", self.energy, tolerances.energy, "eV/atom"),
            ("ΔF", self.forces, tolerances.force, "eV/Å"),
            ("Δσ", self.stress, tolerances.stress, "eV/Å³"),
        ]
        present = [(label, value, bound, unit) for label, value, bound, unit in rows if value is not None]
        value = "; ".join(f"{label} {value:.1e} {unit}" for label, value, _, unit in present)
        tolerance = "; ".join(f"{bound:.0e} {unit}" for _, _, bound, unit in present)
        over = [f"{label} {value:.2e} > {bound:.0e} {unit}" for label, value, bound, unit in present if value > bound]
        return value, tolerance, "; ".join(over)


def _deviation(
    other: Evaluation,
    energy: float,
    forces: np.ndarray | None,
    stress: np.ndarray | None,
    n_atoms: int,
) -> Deviation:
    def worst(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
        return None if a is None or b is None else float(np.abs(a - b).max())

    return Deviation(
        energy=abs(other.energy - energy) / n_atoms,
        forces=worst(other.forces, forces),
        stress=worst(other.stress, stress),
    )


def check_shapes(probe: Probe) -> Outcome:
    return probe.reference.description, "finite floats", ""


def check_force_gradient(probe: Probe) -> Outcome:
    if not probe.wants_forces:
        raise Skip("the card declares no forces")
    step = probe.tolerances.force_step
    forces = probe.reference.forces
    assert forces is not None
    # A few atoms spread over the structure, a different Cartesian component each.
    atoms_picked = np.unique(np.linspace(0, len(probe.atoms) - 1, probe.tolerances.fd_atoms).round().astype(int))
    worst, where = 0.0, ""
    for count, index in enumerate(atoms_picked):
        component = count % 3
        energies = []
        for sign in (1.0, -1.0):
            displaced = probe.atoms.copy()
            displaced.positions[index, component] += sign * step
            energies.append(probe.energy(displaced))
        numeric = -(energies[0] - energies[1]) / (2 * step)
        deviation = abs(forces[index, component] - numeric)
        if deviation >= worst:
            axis = "xyz"[component]
            worst, where = (
                deviation,
                f"atom {index} {axis}: F {forces[index, component]:.4f}, −dE/d{axis} {numeric:.4f}",
            )
    bound = probe.tolerances.force_fd
    value = f"max |ΔF| {worst:.1e} eV/Å; {len(atoms_picked)} components"
    return value, f"{bound:.0e} eV/Å; step {step:.0e} Å", where if worst > bound else ""


VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
VOIGT_NAMES = ("xx", "yy", "zz", "yz", "xz", "xy")


def check_stress_strain(probe: Probe) -> Outcome:
    if not probe.traits.capabilities.stress:
        raise Skip("the card declares no stress")
    if not probe.wants_stress():
        raise Skip("not periodic in 3 dimensions")
    step = probe.tolerances.strain_step
    stress = probe.reference.stress
    assert stress is not None
    volume = probe.atoms.cell.volume
    worst, where = 0.0, ""
    for voigt, (i, j) in enumerate(VOIGT_PAIRS):
        energies = []
        for sign in (1.0, -1.0):
            # A symmetric strain with ε_ij = ε_ji = h/2 off the diagonal changes E by σ_ij·V·h, like
            # ε_ii = h on it, so every Voigt component is the same central difference.
            strain = np.zeros((3, 3))
            strain[i, j] += sign * step / (1 if i == j else 2)
            strain[j, i] = strain[i, j]
            strained = probe.atoms.copy()
            strained.set_cell(probe.atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
            energies.append(probe.energy(strained))
        numeric = (energies[0] - energies[1]) / (2 * step * volume)
        deviation = abs(stress[i, j] - numeric)
        if deviation >= worst:
            worst, where = deviation, f"{VOIGT_NAMES[voigt]}: σ {stress[i, j]:.2e}, (1/V)dE/dε {numeric:.2e}"
    bound = probe.tolerances.stress_fd
    value = f"max |Δσ| {worst:.1e} eV/Å³; 6 components"
    return value, f"{bound:.0e} eV/Å³; strain {step:.0e}", where if worst > bound else ""


def check_translation(probe: Probe) -> Outcome:
    moved = probe.atoms.copy()
    moved.translate([0.37, -0.21, 0.43])
    reference = probe.reference
    result = probe.evaluate(moved)
    return _deviation(result, reference.energy, reference.forces, reference.stress, len(moved)).outcome(
        probe.tolerances
    )


def rotation_matrix(axis: Sequence[float], degrees: float) -> np.ndarray:
    unit = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -unit[2], unit[1]], [unit[2], 0, -unit[0]], [-unit[1], unit[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def check_rotation(probe: Probe) -> Outcome:
    rotation = rotation_matrix([1.0, 2.0, 3.0], 37.0)
    rotated = probe.atoms.copy()
    center = rotated.get_center_of_mass()
    rotated.positions = (rotated.positions - center) @ rotation.T + center
    # A periodic structure is the same crystal only if its lattice turns with it.
    rotated.set_cell(rotated.cell[:] @ rotation.T, scale_atoms=False)
    reference = probe.reference
    forces = None if reference.forces is None else reference.forces @ rotation.T
    stress = None if reference.stress is None else rotation @ reference.stress @ rotation.T
    result = probe.evaluate(rotated)
    return _deviation(result, reference.energy, forces, stress, len(rotated)).outcome(probe.tolerances)


def check_permutation(probe: Probe) -> Outcome:
    order = np.random.default_rng(SEED).permutation(len(probe.atoms))
    reference = probe.reference
    forces = None if reference.forces is None else reference.forces[order]
    result = probe.evaluate(probe.atoms[order])
    return _deviation(result, reference.energy, forces, reference.stress, len(order)).outcome(probe.tolerances)


def check_extensivity(probe: Probe) -> Outcome:
    supercell = probe.atoms.repeat(2)
    reference = probe.reference
    # `repeat` lays out the eight copies one after the other, so the forces are the tiled ones.
    forces = None if reference.forces is None else np.tile(reference.forces, (8, 1))
    result = probe.evaluate(supercell)
    return _deviation(result, 8 * reference.energy, forces, reference.stress, len(supercell)).outcome(probe.tolerances)


def check_determinism(probe: Probe) -> Outcome:
    reference = probe.reference
    again = probe.evaluate(probe.atoms)
    deviation = _deviation(again, reference.energy, reference.forces, reference.stress, len(probe.atoms))
    value, tolerance, failure = deviation.outcome(probe.tolerances)
    identical = again.energy == reference.energy and all(
        (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
        for a, b in ((again.forces, reference.forces), (again.stress, reference.stress))
    )
    return ("identical" if identical else value), tolerance, failure


def check_timing(probe: Probe) -> Outcome:
    probe.reference  # noqa: B018 - the first call (warm-up, compilation) is not timed
    times = []
    for _ in range(probe.tolerances.timing_calls):
        start = time.perf_counter()
        probe.evaluate(probe.atoms)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return f"{median * 1e3:.1f} ms median of {len(times)} ({median * 1e3 / len(probe.atoms):.2f} ms/atom)", "", ""


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Probe], Outcome]
    kinds: tuple[Kind, ...] = KINDS
    informational: bool = False


CHECKS: tuple[Check, ...] = (
    Check("shapes and dtypes", check_shapes),
    Check("forces = −∇E (finite diff.)", check_force_gradient),
    Check("stress = (1/V)∂E/∂ε (finite diff.)", check_stress_strain),
    Check("translation invariance", check_translation),
    Check("rotation equivariance", check_rotation),
    Check("permutation equivariance", check_permutation),
    Check("extensivity (2×2×2 supercell)", check_extensivity, kinds=("bulk",)),
    Check("determinism", check_determinism),
    Check("time per call", check_timing, informational=True),
)


def run_check(check: Check, probe: Probe) -> CheckResult:
    name = probe.structure.name
    try:
        value, tolerance, failure = check.run(probe)
    except Skip as reason:
        return CheckResult(check.name, name, Status.SKIP, reason=str(reason))
    except Exception as exc:  # a broken calculator fails its row, never the whole report
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return CheckResult(check.name, name, Status.FAIL, reason=f"{type(exc).__name__}: {message}"[:160])
    if check.informational:
        return CheckResult(check.name, name, Status.INFO, value, tolerance)
    return CheckResult(check.name, name, Status.FAIL if failure else Status.PASS, value, tolerance, failure)


def check_calculator(
    calculator: Calculator,
    traits: ModelTraits,
    tolerances: CheckTolerances | None = None,
    checks: Sequence[Check] = CHECKS,
) -> list[CheckResult]:
    """Every check on every structure picked for `traits`, structure by structure, then the skipped kinds."""
    tolerances = tolerances or CheckTolerances.for_dtype(traits.dtype)
    if not traits.capabilities.energy:
        return [CheckResult("all", "all", Status.SKIP, reason="the card declares no energy")]
    structures, skipped = pick_structures(traits)
    probes = [Probe(structure, calculator, traits, tolerances) for structure in structures]
    results = [run_check(check, probe) for probe in probes for check in checks if probe.structure.kind in check.kinds]
    return results + skipped


def check_model(
    card: ModelCard, device: str = "auto", tolerances: CheckTolerances | None = None, domain: Domain | None = None
) -> list[CheckResult]:
    """The checks on the card's model, with the head of `domain` (default: the first domain the card
    names a head for, since a multi-head model has no head-less default)."""
    if domain is None and card.heads:
        domain = next(iter(card.heads))
    try:
        model = load_model(card, domain=domain, device=device)
    except LambenchError:  # bad input (card, weights, package): the CLI's one-line error
        raise
    except Exception as exc:  # the model's own code failed to build it: one row, not a traceback
        reason = f"{type(exc).__name__}: {exc}"
        return [CheckResult("load", "all", Status.FAIL, reason=reason)]
    return check_calculator(model.calculator, ModelTraits.from_card(card), tolerances)


def failed(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [result for result in results if result.status is Status.FAIL]


__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "CheckTolerances",
    "ModelTraits",
    "Status",
    "check_calculator",
    "check_model",
    "failed",
]
