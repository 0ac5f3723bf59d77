"""Quantum ESPRESSO (pw.x) as a reference calculator: plane waves, pseudopotentials, periodic cells.

Every number-changing choice is an explicit setting, and two habits of pw.x are overridden on
purpose so that labels depend on the settings alone:

* the functional is forced with `input_dft`, because pw.x otherwise takes it from the
  pseudopotential headers, and swapping a file would silently change the level of theory;
* `conv_thr_per_atom` is multiplied by the number of atoms, because pw.x's `conv_thr` is an
  energy error per cell, and a per-cell value would be loose for big cells and wasteful for
  small ones (vacancy frames would also differ in precision from the pristine ones).

The energy returned is pw.x's "!    total energy". With smearing that is the free energy
F = E - TS, the quantity the forces and stress are derivatives of.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import all_changes
from ase.data import chemical_symbols
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lambench_core.data.labelling.reference import (
    ReferenceCalculator,
    ReferenceCodeMissingError,
    ReferenceLabels,
    register_reference,
)
from lambench_core.errors import LambenchError

DEFAULT_PSEUDO_DIR = "/usr/share/espresso/pseudo"
PW_MISSING = "Quantum ESPRESSO's pw.x is not installed: apt-get install quantum-espresso quantum-espresso-data"
# Names ASE's Espresso template gives its files inside the working directory.
PW_OUTPUT = "espresso.pwo"
PW_STDERR = "espresso.err"
# An integer-valued |b|/kspacing can come out a hair above the integer in floating point; without
# this slack the same cell could get a grid one larger depending on rounding noise.
_KGRID_SLACK = 1e-8


class QuantumEspressoError(LambenchError):
    """pw.x ran but did not produce usable labels (input rejected, crash, unreadable output)."""


class SCFNotConvergedError(QuantumEspressoError):
    """pw.x stopped because the self-consistent field did not reach conv_thr."""


class QuantumEspressoSettings(BaseModel):
    """pw.x settings. Units: Rydberg for energies (QE's own), Å⁻¹ for kspacing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pseudopotentials: dict[str, str] = Field(min_length=1)  # element -> UPF file name in pseudo_dir
    pseudo_dir: str = DEFAULT_PSEUDO_DIR
    input_dft: str = Field("PBE", min_length=1)
    ecutwfc: float = Field(gt=0.0, le=500.0)  # Ry
    ecutrho: float = Field(gt=0.0, le=4000.0)  # Ry
    kspacing: float = Field(gt=0.0, le=5.0)  # Å⁻¹, reciprocal vectors include 2π
    # Half-step Monkhorst–Pack offset along periodic directions. For bulk insulators in cubic cells
    # an even shifted grid avoids the low-information Γ/zone-boundary points that an even
    # Γ-centred grid samples, so it converges with far fewer k-points; keep Γ-centred (False)
    # for hexagonal cells and slabs, where a shift breaks the lattice symmetry of the sampling.
    kpoint_shift: bool = False
    smearing: Literal["gaussian", "mv", "mp", "fd"] | None = None  # None: fixed occupations
    degauss: float | None = Field(None, gt=0.0, le=0.2)  # Ry
    # Empty bands beyond pw.x's default (half the electrons for insulators, +20% with smearing).
    # They do not change converged numbers but can steady a stubborn SCF (seen with SiC).
    nbnd: int | None = Field(None, ge=1, le=10000)
    nspin: Literal[1, 2] = 1
    starting_magnetization: dict[str, float] = Field(default_factory=dict)
    # 1e-10 Ry/atom leaves ~3e-5 eV/Å of SCF noise in the forces (1e-9: ~1e-4) for ~1 more iteration.
    conv_thr_per_atom: float = Field(1e-10, gt=0.0, le=1e-4)  # Ry per atom
    mixing_beta: float = Field(0.7, gt=0.0, le=1.0)
    mixing_mode: Literal["plain", "TF", "local-TF"] = "plain"
    electron_maxstep: int = Field(100, ge=1, le=1000)
    compute_stress: bool = True
    # Per pw.x process. Debian's pw.x is built without OpenMP, so this only reaches a threaded
    # BLAS (OpenBLAS/MKL) if one is installed; parallelism across frames is the caller's job.
    threads: int = Field(1, ge=1, le=256)
    executable: str = Field("pw.x", min_length=1)

    @field_validator("pseudopotentials")
    @classmethod
    def _known_elements_and_plain_names(cls, value: dict[str, str]) -> dict[str, str]:
        for element, name in value.items():
            _require_element(element)
            # A bare file name keeps pseudo_dir the single place where the files live, so the
            # provenance (directory + name + sha256) is complete.
            if not name or Path(name).name != name:
                raise ValueError(f"pseudopotential for {element} must be a file name in pseudo_dir, got {name!r}")
        return value

    @field_validator("starting_magnetization")
    @classmethod
    def _magnetization_bounds(cls, value: dict[str, float]) -> dict[str, float]:
        for element, moment in value.items():
            _require_element(element)
            if not -1.0 <= moment <= 1.0:
                raise ValueError(f"starting_magnetization[{element}] must lie in [-1, 1], got {moment}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> QuantumEspressoSettings:
        # pw.x needs the density grid to hold products of wavefunctions.
        if self.ecutrho < 4.0 * self.ecutwfc:
            raise ValueError(f"ecutrho ({self.ecutrho} Ry) must be at least 4 × ecutwfc ({4.0 * self.ecutwfc} Ry)")
        if (self.smearing is None) != (self.degauss is None):
            raise ValueError("smearing and degauss go together: set both (metals) or neither (insulators)")
        if self.nspin == 2 and not any(self.starting_magnetization.values()):
            raise ValueError("nspin = 2 needs a non-zero starting_magnetization, or pw.x converges to zero moment")
        if self.nspin == 1 and self.starting_magnetization:
            raise ValueError("starting_magnetization is only meaningful with nspin = 2")
        unknown = set(self.starting_magnetization) - set(self.pseudopotentials)
        if unknown:
            raise ValueError(f"starting_magnetization names elements without a pseudopotential: {sorted(unknown)}")
        return self


def _require_element(symbol: str) -> None:
    if symbol not in chemical_symbols[1:]:
        raise ValueError(f"{symbol!r} is not a chemical element symbol")


def kpoint_grid(atoms: Atoms, kspacing: float) -> tuple[int, int, int]:
    """Grid sizes n_i = max(1, ceil(|b_i| / kspacing)); 1 along non-periodic directions."""
    reciprocal = 2.0 * math.pi * atoms.cell.reciprocal()  # rows are b_i, in Å⁻¹
    sizes = []
    for b, periodic in zip(reciprocal, atoms.pbc, strict=True):
        # A vacuum direction has no band dispersion worth sampling; more points would only cost.
        n = math.ceil(float(np.linalg.norm(b)) / kspacing - _KGRID_SLACK) if periodic else 1
        sizes.append(max(1, n))
    return (sizes[0], sizes[1], sizes[2])


def kpoint_offset(atoms: Atoms, shift: bool) -> tuple[int, int, int]:
    """pw.x's per-direction grid offset: 1 (half step) where shifted and periodic, else 0."""
    # A shifted single point along a vacuum direction would sample k_z = π/c instead of Γ.
    flags = [int(shift and bool(periodic)) for periodic in atoms.pbc]
    return (flags[0], flags[1], flags[2])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pw_command(executable: str, threads: int) -> str:
    # Thread counts go on the child's command line rather than into os.environ, so nothing leaks
    # into this process or into other plug-ins. BLAS libraries read their own variables besides
    # OpenMP's; a threaded BLAS swapped in by update-alternatives would otherwise use every core.
    n = str(threads)
    return shlex.join(["env", f"OMP_NUM_THREADS={n}", f"OPENBLAS_NUM_THREADS={n}", f"MKL_NUM_THREADS={n}", executable])


def _clean_copy(atoms: Atoms, settings: QuantumEspressoSettings) -> Atoms:
    # Only species, positions and cell reach pw.x: ASE would turn stray initial magnetic moments
    # or per-atom masses on a loaded frame into extra species and input lines.
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    if settings.nspin == 2:
        # ASE's writer derives pw.x's per-species starting_magnetization (a fraction of the valence
        # charge, unscaled) from the atoms' initial moments, so the per-element setting goes there.
        moments = [settings.starting_magnetization.get(symbol, 0.0) for symbol in clean.get_chemical_symbols()]
        clean.set_initial_magnetic_moments(moments)
    return clean


def _input_data(settings: QuantumEspressoSettings, n_atoms: int, outdir: Path) -> dict[str, dict[str, Any]]:
    system: dict[str, Any] = {
        "ecutwfc": settings.ecutwfc,
        "ecutrho": settings.ecutrho,
        "input_dft": settings.input_dft,
        "nspin": settings.nspin,
    }
    if settings.nbnd is not None:
        system["nbnd"] = settings.nbnd
    if settings.smearing is None:
        system["occupations"] = "fixed"
    else:
        system.update(occupations="smearing", smearing=settings.smearing, degauss=settings.degauss)
    return {
        "control": {
            "calculation": "scf",
            "tprnfor": True,
            "tstress": settings.compute_stress,
            # Explicit, so neither $ESPRESSO_TMPDIR nor the current directory receives files.
            "outdir": str(outdir),
            "prefix": "pwscf",
            "disk_io": "low",
        },
        "system": system,
        "electrons": {
            "conv_thr": settings.conv_thr_per_atom * n_atoms,
            "mixing_beta": settings.mixing_beta,
            "mixing_mode": settings.mixing_mode,
            "electron_maxstep": settings.electron_maxstep,
            "scf_must_converge": True,
        },
    }


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _pw_error_message(output: str) -> str | None:
    """The 'Error in routine X (n): message' block pw.x prints between its %%% rules."""
    match = re.search(r"Error in routine\s+(\S+)\s*\(\s*(-?\d+)\s*\):\s*\n\s*(.+)", output)
    if match is None:
        return None
    routine, code, message = match.groups()
    return f"{message.strip()} (routine {routine}, code {code})"


def _raise_for_failed_run(workdir: Path, settings: QuantumEspressoSettings, returncode: int | None) -> None:
    output = _read_text(workdir / PW_OUTPUT)
    if "convergence NOT achieved" in output:
        raise SCFNotConvergedError(
            f"pw.x SCF did not converge within electron_maxstep={settings.electron_maxstep} steps "
            f"to conv_thr_per_atom={settings.conv_thr_per_atom:g} Ry: {workdir / PW_OUTPUT}"
        )
    reason = _pw_error_message(output) or _pw_error_message(_read_text(workdir / "CRASH"))
    if reason is None and returncode is not None and returncode < 0:
        # Killed from outside (a scheduler, a cleanup): nothing is wrong with the input, so say so.
        reason = f"killed by {signal.Signals(-returncode).name}"
    if reason is None:
        tail = _read_text(workdir / PW_STDERR).strip().splitlines()[-1:] or ["no message"]
        reason = f"exit status {returncode}: {tail[0]}"
    raise QuantumEspressoError(f"pw.x failed: {reason}; see {workdir / PW_OUTPUT}")


def _as_settings(settings: BaseModel) -> QuantumEspressoSettings:
    if isinstance(settings, QuantumEspressoSettings):
        return settings
    return QuantumEspressoSettings.model_validate(settings.model_dump())


@lru_cache(maxsize=8)
def _pw_version(executable_path: str) -> str:
    # pw.x prints its banner before reading input; run it in a scratch directory because on
    # empty input it writes CRASH and input_tmp.in into the current directory.
    with tempfile.TemporaryDirectory(prefix="lambench-pwx-version-") as scratch:
        result = subprocess.run(
            [executable_path],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=scratch,
            timeout=120,
            check=False,
        )
    match = re.search(r"Program PWSCF\s+v\.(\S+)", result.stdout)
    return match.group(1) if match else "unknown"


@lru_cache(maxsize=1)
def _debian_package_version() -> str | None:
    # The distribution's build number pins patches and compiler flags the banner does not show.
    if shutil.which("dpkg-query") is None:
        return None
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "quantum-espresso"], capture_output=True, text=True, check=False
    )
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


@lru_cache(maxsize=8)
def _numerical_libraries(executable_path: str) -> dict[str, str]:
    """The BLAS, LAPACK and FFT libraries pw.x resolves at run time, by soname -> real file."""
    # Debian swaps BLAS/LAPACK under an unchanged pw.x (update-alternatives, LD_LIBRARY_PATH);
    # that moves the last digits of the labels and, for slabs, the run time several-fold.
    if shutil.which("ldd") is None:
        return {}
    result = subprocess.run(["ldd", executable_path], capture_output=True, text=True, timeout=60, check=False)
    libraries = {}
    for line in result.stdout.splitlines():
        match = re.match(r"\s*(lib(?:blas|lapack|openblas|mkl|fftw3|scalapack)\S*)\s+=>\s+(/\S+)", line)
        if match:
            libraries[match.group(1)] = os.path.realpath(match.group(2))
    return dict(sorted(libraries.items()))


@register_reference("qe")
class QuantumEspressoReference(ReferenceCalculator):
    """pw.x through ASE's file-based Espresso calculator, one fresh run per structure."""

    Settings = QuantumEspressoSettings

    def check_available(self, settings: BaseModel) -> None:
        qe = _as_settings(settings)
        if shutil.which(qe.executable) is None:
            raise ReferenceCodeMissingError(PW_MISSING)
        pseudo_dir = Path(qe.pseudo_dir)
        for element, name in sorted(qe.pseudopotentials.items()):
            path = pseudo_dir / name
            if not path.is_file():
                raise ReferenceCodeMissingError(f"pseudopotential for {element} not found: {path}")

    def label(self, atoms: Atoms, settings: BaseModel, workdir: Path) -> ReferenceLabels:
        from ase.calculators.espresso import Espresso, EspressoProfile

        qe = _as_settings(settings)
        self.check_available(qe)
        structure = _clean_copy(atoms, qe)
        self._check_structure(structure, qe)

        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        executable = shutil.which(qe.executable)
        assert executable is not None  # check_available just found it
        profile = EspressoProfile(command=_pw_command(executable, qe.threads), pseudo_dir=qe.pseudo_dir)
        species = sorted(set(structure.get_chemical_symbols()))
        calculator = Espresso(
            profile=profile,
            directory=str(workdir),
            pseudopotentials={element: qe.pseudopotentials[element] for element in species},
            input_data=_input_data(qe, len(structure), workdir / "out"),
            # Always an explicit grid, never kpts=None: that selects pw.x's Γ-only code path,
            # whose numbers differ slightly from a 1×1×1 grid and would mix two recipes.
            kpts=kpoint_grid(structure, qe.kspacing),
            koffset=kpoint_offset(structure, qe.kpoint_shift),
        )
        properties = ["energy", "forces"] + (["stress"] if qe.compute_stress else [])

        start = time.perf_counter()
        try:
            calculator.calculate(structure, properties, all_changes)
        except FileNotFoundError:
            raise ReferenceCodeMissingError(PW_MISSING) from None
        except subprocess.CalledProcessError as error:
            _raise_for_failed_run(workdir, qe, error.returncode)
        wall_seconds = time.perf_counter() - start

        if "convergence has been achieved" not in _read_text(workdir / PW_OUTPUT):
            _raise_for_failed_run(workdir, qe, 0)
        labels = self._labels(calculator.results, qe, len(structure), wall_seconds)
        # Wavefunctions and density are tens of MB per slab frame and never read again; the
        # input and output files stay beside them as the audit trail.
        shutil.rmtree(workdir / "out", ignore_errors=True)
        return labels

    def provenance(self, settings: BaseModel) -> dict[str, Any]:
        qe = _as_settings(settings)
        self.check_available(qe)
        executable = shutil.which(qe.executable)
        assert executable is not None
        pseudo_dir = Path(qe.pseudo_dir)
        return {
            "code": "quantum-espresso",
            "program": "pw.x",
            "version": _pw_version(executable),
            "package_version": _debian_package_version(),
            "numerical_libraries": _numerical_libraries(executable),
            "functional": qe.input_dft,
            "pseudo_dir": str(pseudo_dir),
            "pseudopotentials": {
                element: {"file": name, "sha256": _sha256(pseudo_dir / name)}
                for element, name in sorted(qe.pseudopotentials.items())
            },
            "ecutwfc_ry": qe.ecutwfc,
            "ecutrho_ry": qe.ecutrho,
            "kspacing_per_angstrom": qe.kspacing,
            "kpoint_rule": "n_i = max(1, ceil(|b_i| / kspacing)), |b_i| with 2pi, 1 if not periodic",
            "kpoint_shift": qe.kpoint_shift,
            "smearing": qe.smearing,
            "degauss_ry": qe.degauss,
            "energy": "free energy F = E - TS" if qe.smearing else "total energy",
            "nbnd": qe.nbnd,
            "nspin": qe.nspin,
            "starting_magnetization": dict(sorted(qe.starting_magnetization.items())),
            "conv_thr_per_atom_ry": qe.conv_thr_per_atom,
            "mixing_beta": qe.mixing_beta,
            "mixing_mode": qe.mixing_mode,
            "electron_maxstep": qe.electron_maxstep,
            "stress": qe.compute_stress,
            "threads": qe.threads,
        }

    @staticmethod
    def _check_structure(atoms: Atoms, settings: QuantumEspressoSettings) -> None:
        missing = sorted(set(atoms.get_chemical_symbols()) - set(settings.pseudopotentials))
        if missing:
            raise QuantumEspressoError(f"no pseudopotential given for {', '.join(missing)}")
        # Plane waves need a box in every direction, vacuum-padded where the system is not periodic.
        if atoms.cell.rank < 3:
            raise QuantumEspressoError("pw.x needs a full 3D cell; pad non-periodic directions with vacuum")

    @staticmethod
    def _labels(
        results: dict[str, Any], settings: QuantumEspressoSettings, n_atoms: int, wall_seconds: float
    ) -> ReferenceLabels:
        energy = results.get("energy")
        forces = results.get("forces")
        stress = results.get("stress") if settings.compute_stress else None
        if energy is None or forces is None or np.shape(forces) != (n_atoms, 3):
            raise QuantumEspressoError("pw.x output has no final energy or forces")
        if settings.compute_stress and stress is None:
            raise QuantumEspressoError("pw.x output has no stress although compute_stress is set")
        return ReferenceLabels(
            energy=float(energy),
            forces=np.asarray(forces, dtype=float).tolist(),
            stress=None if stress is None else np.asarray(stress, dtype=float).tolist(),
            wall_seconds=wall_seconds,
        )
