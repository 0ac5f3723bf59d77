"""Convergence certificates: each shipped label set proves that its labels are converged.

`lambench data certify SET` relabels a sample of the set's frames at tighter settings (a recipe
reference's convergence protocol says how much tighter) and compares, frame by frame, with the
shipped labels: energy per atom after removing one offset per composition (scores remove
per-element shifts, so only energy differences between frames of one composition are scored; a
basis-set error of its own per element, e.g. 35 meV/atom more for H2CO than CH4 from def2-TZVP to
def2-QZVP, is not a label error), the largest force-component difference, the largest
stress-component difference. The
certificate (`certificate_<level>.json` beside the set) records the settings of both levels, every
sampled frame's differences, and pass/fail against fixed criteria. A criterion is never loosened
for a set: a set that cannot meet one ships its failing certificate with the measured figure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.units import GPa
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.data.labelling.recipe import ReferenceSpec
from lambench_core.errors import LambenchError

CERTIFICATE_FORMAT = 1
# The frames a certificate recomputes: at least this many, always including the ones below.
MIN_SAMPLE = 3


class Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    energy_meV_per_atom: float = 2.0
    force_eV_per_A: float = 0.03
    stress_GPa: float = 0.5


CRITERIA = Criteria()


# --- protocols: how much tighter the check level is --------------------------------------------

Tightener = Callable[[dict[str, Any]], dict[str, Any]]
_PROTOCOLS: dict[str, tuple[str, str, Tightener]] = {}  # name → (code, description, tighten)


def register_protocol(name: str, code: str, description: str) -> Callable[[Tightener], Tightener]:
    def register(tighten: Tightener) -> Tightener:
        _PROTOCOLS[name] = (code, description, tighten)
        return tighten

    return register


@register_protocol("qe-tight", "qe", "cutoffs ×1.5 (wavefunction and density), k-spacing ÷2, smearing width ÷2")
def _qe_tight(settings: dict[str, Any]) -> dict[str, Any]:
    tight = dict(settings)
    tight["ecutwfc"] = settings["ecutwfc"] * 1.5
    tight["ecutrho"] = settings["ecutrho"] * 1.5
    tight["kspacing"] = settings["kspacing"] / 2
    if settings.get("degauss") is not None:
        tight["degauss"] = settings["degauss"] / 2
    return tight


# The def2 ladder: the check level uses the next basis up. (def2-TZVPP is not a step: beyond
# hydrogen it is def2-TZVP.)
DEF2_LADDER = ("def2-SVP", "def2-TZVP", "def2-QZVP", "def2-QZVPP")


@register_protocol("pyscf-tight", "pyscf", "next larger def2 basis, integration grid level +2")
def _pyscf_tight(settings: dict[str, Any]) -> dict[str, Any]:
    basis = str(settings.get("basis", "def2-TZVP"))
    ladder = [b.lower() for b in DEF2_LADDER]
    if basis.lower() not in ladder or basis.lower() == ladder[-1]:
        raise LambenchError(f"protocol pyscf-tight: no larger basis than {basis!r} (ladder: {', '.join(DEF2_LADDER)})")
    tight = dict(settings)
    tight["basis"] = DEF2_LADDER[ladder.index(basis.lower()) + 1]
    tight["grids_level"] = min(9, int(settings.get("grids_level", 3)) + 2)
    if settings.get("auxbasis") is not None:
        tight["auxbasis"] = None  # the fit follows the functional and the new basis
    return tight


DEFAULT_PROTOCOL = {"qe": "qe-tight", "pyscf": "pyscf-tight"}


def protocol_name(reference: ReferenceSpec) -> str:
    name = reference.convergence or DEFAULT_PROTOCOL.get(reference.code)
    if name is None:
        raise LambenchError(f"reference code {reference.code!r} has no convergence protocol")
    return name


def tightened(reference: ReferenceSpec) -> tuple[ReferenceSpec, str]:
    """The check level of `reference` and its protocol's description."""
    name = protocol_name(reference)
    try:
        code, description, tighten = _PROTOCOLS[name]
    except KeyError:
        raise LambenchError(f"unknown convergence protocol {name!r} (known: {', '.join(sorted(_PROTOCOLS))})") from None
    if code != reference.code:
        raise LambenchError(f"convergence protocol {name!r} is for {code}, not {reference.code}")
    tight = reference.model_copy(update={"settings": tighten(reference.settings), "pulay_stress_GPa": 0.0})
    return tight, description


# --- the sample ------------------------------------------------------------------------------------


def _max_force(atoms: Atoms) -> float:
    return float(np.linalg.norm(atoms.get_forces(), axis=1).max())


def _closest_contact(atoms: Atoms) -> float:
    """The shortest interatomic distance over the sum of covalent radii (periodic images included):
    the smaller, the more compressed the frame."""
    radii = covalent_radii[atoms.numbers]
    from ase.neighborlist import neighbor_list  # here: it imports scipy, which the CLI never needs

    i, j, d = neighbor_list("ijd", atoms, float(2.5 * radii.max()))
    if len(d) == 0:
        return float("inf")
    return float(np.min(d / (radii[i] + radii[j])))


def _max_stress(atoms: Atoms) -> float:
    try:
        return float(np.abs(atoms.get_stress()).max())
    except Exception:  # no stress label (molecules)
        return 0.0


def _energy_above_lowest(frames: list[Atoms]) -> list[float]:
    """Energy per atom above the lowest frame of the same composition."""
    per_atom = [a.get_potential_energy() / len(a) for a in frames]
    lowest: dict[str, float] = {}
    for atoms, e in zip(frames, per_atom, strict=True):
        formula = atoms.get_chemical_formula()
        lowest[formula] = min(lowest.get(formula, e), e)
    return [e - lowest[a.get_chemical_formula()] for a, e in zip(frames, per_atom, strict=True)]


def sample_frames(frames: list[Atoms], n: int = MIN_SAMPLE) -> list[tuple[int, str]]:
    """(index, why) of the frames to recompute: the largest force, the closest contact (most
    distorted), the largest stress (or, without stress, the highest energy above its composition's
    lowest), for each the lowest-energy frame of its composition where no other chosen frame shares
    it, then evenly spaced others up to `n`."""
    if not frames:
        raise LambenchError("a set with no frames cannot be certified")
    chosen: dict[int, list[str]] = {}
    periodic = any(a.pbc.any() for a in frames)
    picks = [
        ("largest force", int(np.argmax([_max_force(a) for a in frames]))),
        ("most distorted (closest contact)", int(np.argmin([_closest_contact(a) for a in frames]))),
    ]
    if periodic and any(_max_stress(a) > 0 for a in frames):
        picks.append(("largest stress", int(np.argmax([_max_stress(a) for a in frames]))))
    else:
        picks.append(("highest energy above its composition's lowest", int(np.argmax(_energy_above_lowest(frames)))))
    for why, index in picks:
        chosen.setdefault(index, []).append(why)
    # An energy is judged against another frame of its composition: add the composition's lowest.
    per_atom = [a.get_potential_energy() / len(a) for a in frames]
    for index in list(chosen):
        formula = frames[index].get_chemical_formula()
        partners = [i for i, a in enumerate(frames) if a.get_chemical_formula() == formula]
        if len(partners) > 1 and not any(i in chosen for i in partners if i != index):
            lowest = min((i for i in partners if i != index), key=lambda i: per_atom[i])
            chosen.setdefault(lowest, []).append("lowest energy of its composition (the energy reference)")
    for index in np.linspace(0, len(frames) - 1, num=min(n, len(frames)) + 2).round().astype(int)[1:-1]:
        if len(chosen) >= min(n, len(frames)):
            break
        chosen.setdefault(int(index), ["spread over the set"])
    for index in range(len(frames)):  # a small set: fill up in order
        if len(chosen) >= min(n, len(frames)):
            break
        chosen.setdefault(index, ["spread over the set"])
    return [(index, "; ".join(chosen[index])) for index in sorted(chosen)]


# --- the certificate -------------------------------------------------------------------------------


class FrameCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame_id: str
    why: str
    n_atoms: int
    energy_meV_per_atom: float | None = Field(
        description="Check minus shipped, per atom, after its composition's offset (None: the only "
        "sampled frame of its composition, no energy difference to judge)"
    )
    max_force_eV_per_A: float = Field(description="Largest |force component| difference")
    max_stress_GPa: float | None = Field(description="Largest |stress component| difference (periodic sets)")
    passed: bool
    check_energy_eV: float = Field(description="The check level's labels, so a test can recompute them")
    check_forces: list[list[float]]
    check_stress_GPa: list[float] | None
    check_wall_seconds: float = 0.0


class Worst(BaseModel):
    model_config = ConfigDict(extra="forbid")

    criterion: str
    limit: float
    value: float | None
    frame_id: str | None
    passed: bool


class Certificate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = CERTIFICATE_FORMAT
    dataset: str
    level: str
    labels_sha256: str = Field(description="The label file certified: a relabel voids the certificate")
    protocol: str
    protocol_description: str
    shipped: dict[str, Any] = Field(description="Reference code and settings of the shipped labels")
    check: dict[str, Any] = Field(description="Reference code and settings of the check level")
    pulay_stress_GPa_subtracted: float = Field(description="Subtracted from the shipped stresses, not the check's")
    criteria: Criteria = CRITERIA
    energy_offsets_meV_per_atom: dict[str, float] = Field(
        description="The offset removed from every ΔE per atom, by composition"
    )
    frames: list[FrameCheck]
    worst: list[Worst]
    passed: bool
    note: str = Field(default="", description="Why a failing set ships as it is, where it does")
    check_wall_seconds: float
    certified_at: datetime

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        parts = [f"{w.criterion} {w.value:.3g} (≤ {w.limit:g})" for w in self.worst if w.value is not None]
        return f"{verdict}: " + ", ".join(parts)


def _stress_gpa(atoms: Atoms) -> np.ndarray | None:
    try:
        return np.asarray(atoms.get_stress(voigt=True)) / GPa
    except Exception:
        return None


def certify(
    dataset: str,
    level: str,
    labels_sha256: str,
    shipped_reference: ReferenceSpec,
    frames: list[Atoms],
    sample: list[tuple[int, str]],
    checked: dict[int, Any],
    wall_seconds: float,
    criteria: Criteria = CRITERIA,
) -> Certificate:
    """The certificate from the shipped frames and the check level's labels (`ReferenceLabels` by
    frame index) of the sampled frames."""
    tight, description = tightened(shipped_reference)
    indices = [index for index, _ in sample]
    delta_e = np.array(
        [(checked[i].energy - frames[i].get_potential_energy()) / len(frames[i]) for i in indices], dtype=float
    )
    formulas = [frames[i].get_chemical_formula() for i in indices]
    offsets = {f: float(np.mean([de for g, de in zip(formulas, delta_e, strict=True) if g == f])) for f in formulas}
    alone = {f for f in formulas if formulas.count(f) == 1}
    rows: list[FrameCheck] = []
    for (index, why), de, formula in zip(sample, delta_e, formulas, strict=True):
        atoms, labels = frames[index], checked[index]
        dforce = float(np.abs(np.asarray(labels.forces) - atoms.get_forces()).max())
        shipped_stress = _stress_gpa(atoms)
        dstress = None
        if shipped_stress is not None and labels.stress is not None:
            dstress = float(np.abs(np.asarray(labels.stress) / GPa - shipped_stress).max())
        energy = None if formula in alone else float((de - offsets[formula]) * 1000)
        passed = (
            (energy is None or abs(energy) <= criteria.energy_meV_per_atom)
            and dforce <= criteria.force_eV_per_A
            and (dstress is None or dstress <= criteria.stress_GPa)
        )
        rows.append(
            FrameCheck(
                frame_id=str(atoms.info.get("frame_id", index)),
                why=why,
                n_atoms=len(atoms),
                energy_meV_per_atom=energy,
                max_force_eV_per_A=dforce,
                max_stress_GPa=dstress,
                passed=passed,
                check_energy_eV=float(labels.energy),
                check_forces=[[float(x) for x in row] for row in labels.forces],
                check_stress_GPa=None if labels.stress is None else [float(x) / GPa for x in labels.stress],
                check_wall_seconds=float(labels.wall_seconds),
            )
        )
    worst = [
        _worst(
            "energy (meV/atom)",
            criteria.energy_meV_per_atom,
            rows,
            lambda r: None if r.energy_meV_per_atom is None else abs(r.energy_meV_per_atom),
        ),
        _worst("force (eV/Å)", criteria.force_eV_per_A, rows, lambda r: r.max_force_eV_per_A),
        _worst("stress (GPa)", criteria.stress_GPa, rows, lambda r: r.max_stress_GPa),
    ]
    return Certificate(
        dataset=dataset,
        level=level,
        labels_sha256=labels_sha256,
        protocol=protocol_name(shipped_reference),
        protocol_description=description,
        shipped={"code": shipped_reference.code, "settings": shipped_reference.settings},
        check={"code": tight.code, "settings": tight.settings},
        pulay_stress_GPa_subtracted=shipped_reference.pulay_stress_GPa,
        criteria=criteria,
        energy_offsets_meV_per_atom={f: o * 1000 for f, o in offsets.items()},
        frames=rows,
        worst=worst,
        passed=all(w.passed for w in worst),
        check_wall_seconds=wall_seconds,
        certified_at=datetime.now(UTC),
    )


def _worst(
    criterion: str, limit: float, rows: list[FrameCheck], value: Callable[[FrameCheck], float | None]
) -> Worst:
    measured = [(v, row.frame_id) for row in rows if (v := value(row)) is not None]
    if not measured:
        return Worst(criterion=criterion, limit=limit, value=None, frame_id=None, passed=True)
    worst_value, frame_id = max(measured)
    return Worst(criterion=criterion, limit=limit, value=worst_value, frame_id=frame_id, passed=worst_value <= limit)
