"""PySCF as a reference plug-in: Kohn-Sham DFT energies and analytic forces of isolated molecules.

Closed-shell molecules (multiplicity 1) run restricted Kohn-Sham, anything else unrestricted, so a
radical fragment of a dissociating molecule is labelled with the same settings. Charge and
multiplicity come from ``atoms.info["charge"]`` (default 0) and ``atoms.info["spin"]`` (2S+1,
default 1). No dispersion correction is ever added.

Functionals are named as PySCF names them (``dft.libxc`` aliases), e.g. ``"PBE"``, ``"PBE0"``,
``"wB97X"``, ``"wB97X-V"``, ``"wB97M-V"``. PySCF 2.14 refuses ``"wB97X-D"`` (the Chai-Head-Gordon
damped dispersion of that method is not implemented); names that carry a dispersion correction
(``"wB97X-D3BJ"``, ``"B3LYP-D3BJ"``) are refused here because this plug-in computes none; VV10
non-local correlation that is part of a functional (the ``-V`` family) is kept and recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ase
import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambench_core.data.labelling.reference import (
    ReferenceCalculator,
    ReferenceCodeMissingError,
    ReferenceLabels,
    register_reference,
)
from lambench_core.errors import InputError, LambenchError

if TYPE_CHECKING:
    from pyscf.gto import Mole
    from pyscf.scf.hf import SCF

SETTINGS_SOURCE = "pyscf reference settings"

# Weigend's universal fits work with every def2 orbital basis. A J-only fit under-resolves the
# exchange density, so any functional with exact exchange gets the JK fit.
J_FIT = "def2-universal-jfit"
JK_FIT = "def2-universal-jkfit"
_J_ONLY_FIT = re.compile(r"(?<!k)jfit$|^weigend$")


class SCFNotConvergedError(LambenchError):
    """The self-consistent field did not converge, so the structure has no trustworthy label."""


class PySCFSettings(BaseModel):
    """Every setting that changes a PySCF number; all of it lands in the provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    xc: str = Field("PBE", min_length=1, max_length=64)
    basis: str = Field("def2-TZVP", min_length=1, max_length=64)
    density_fitting: bool = True
    # None picks the fit by functional (J fit without exact exchange, JK fit with it) so that
    # switching PBE -> PBE0 cannot silently keep a Coulomb-only fit; the provenance names the result.
    auxbasis: str | None = Field(None, min_length=1, max_length=64)
    grids_level: int = Field(3, ge=0, le=9)
    # Only read by functionals with VV10 (the -V family); PySCF's own default, pinned here.
    nlc_grids_level: int = Field(1, ge=0, le=9)
    conv_tol: float = Field(1e-10, gt=0.0, le=1e-5)
    max_cycle: int = Field(200, ge=1, le=10_000)
    # One thread makes reruns bit-identical; threaded reductions drift at ~1e-12 eV.
    threads: int = Field(1, ge=1, le=256)

    @model_validator(mode="after")
    def _auxbasis_needs_fitting(self) -> PySCFSettings:
        if self.auxbasis is not None and not self.density_fitting:
            raise ValueError("auxbasis is set but density_fitting is off; drop one of them")
        return self


@dataclass(frozen=True)
class Functional:
    """What the xc name means to PySCF, worked out once so label and provenance agree."""

    name: str
    exact_exchange: float  # fraction at short range (global hybrids: the only one)
    long_range_exact_exchange: float
    omega: float  # range-separation parameter in 1/Bohr; 0 for global hybrids and pure functionals
    vv10: bool

    @property
    def needs_exchange(self) -> bool:
        return self.exact_exchange != 0.0 or self.long_range_exact_exchange != 0.0

    @property
    def range_separated(self) -> bool:
        return self.omega != 0.0


def _import_pyscf() -> Any:
    try:
        import pyscf
        from pyscf import dft  # noqa: F401  (a broken install fails here, not mid-label)
    except ImportError:
        raise ReferenceCodeMissingError("PySCF is not installed: pip install pyscf") from None
    return pyscf


def describe_functional(xc: str) -> Functional:
    """Resolve `xc` with PySCF's own parser; every way it can be wrong is one InputError on `xc`."""
    pyscf = _import_pyscf()
    from pyscf.dft import libxc
    from pyscf.scf.dispersion import parse_dft

    try:
        base, _, dispersion = parse_dft(xc)
    except NotImplementedError:
        # PySCF's refusals are all functionals whose dispersion term it does not implement (wB97X-D, ...).
        raise InputError(
            SETTINGS_SOURCE,
            "xc",
            f"PySCF {pyscf.__version__} does not support {xc!r}: its dispersion term is not implemented there",
        ) from None
    if dispersion is not None:
        raise InputError(
            SETTINGS_SOURCE,
            "xc",
            f"{xc!r} includes a {dispersion} dispersion correction, which this plug-in does not compute; "
            "name the functional without it",
        )
    try:
        libxc.parse_xc(base)
        omega, alpha, beta = libxc.rsh_coeff(base)
        vv10 = bool(libxc.is_nlc(base))
    except (KeyError, ValueError, NotImplementedError) as exc:
        raise InputError(SETTINGS_SOURCE, "xc", f"functional {xc!r} is unknown to PySCF's libxc: {exc}") from None
    # PySCF's convention: exchange = alpha * full-range HF + beta * short-range HF, so the short-range
    # fraction is alpha + beta and the long-range one alpha.
    return Functional(
        name=xc,
        # Rounded so that provenance does not record float noise such as 0.16700000000000004.
        exact_exchange=round(float(alpha + beta), 12),
        long_range_exact_exchange=round(float(alpha), 12),
        omega=round(float(omega), 12),
        vv10=vv10,
    )


def resolve_auxbasis(settings: PySCFSettings, functional: Functional) -> str | None:
    if not settings.density_fitting:
        return None
    if settings.auxbasis is None:
        return JK_FIT if functional.needs_exchange else J_FIT
    if functional.needs_exchange and _J_ONLY_FIT.search(settings.auxbasis.lower()):
        raise InputError(
            SETTINGS_SOURCE,
            "auxbasis",
            f"{settings.auxbasis!r} fits Coulomb only but {functional.name!r} has exact exchange; "
            f"use {JK_FIT!r} or leave auxbasis unset",
        )
    return settings.auxbasis


def charge_and_multiplicity(atoms: Atoms) -> tuple[int, int]:
    """Charge and 2S+1 from atoms.info, checked against the electron count before PySCF sees them."""
    charge = atoms.info.get("charge", 0)
    multiplicity = atoms.info.get("spin", 1)
    for key, value in (("charge", charge), ("spin", multiplicity)):
        # bool is an Integral, and True as a multiplicity is surely a mistake.
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise InputError(atoms.get_chemical_formula(), f"info[{key!r}]", f"must be an integer, got {value!r}")
    charge, multiplicity = int(charge), int(multiplicity)
    electrons = int(atoms.numbers.sum()) - charge
    if multiplicity < 1 or electrons < 0 or multiplicity - 1 > electrons or (electrons - multiplicity + 1) % 2:
        raise InputError(
            atoms.get_chemical_formula(),
            "info['spin']",
            f"multiplicity {multiplicity} (2S+1) is impossible with {electrons} electrons (charge {charge})",
        )
    return charge, multiplicity


def require_molecule(atoms: Atoms) -> None:
    if atoms.pbc.any():
        raise InputError(
            atoms.get_chemical_formula(),
            "pbc",
            f"the pyscf plug-in labels isolated molecules only, got pbc={atoms.pbc.tolist()}; "
            "use a periodic code for crystals",
        )
    if len(atoms) == 0:
        raise InputError("atoms", None, "no atoms to label")


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """PySCF's OpenMP pool is process-wide, so put back whatever the caller had."""
    from pyscf import lib

    previous = lib.num_threads()
    lib.num_threads(n)
    try:
        yield
    finally:
        lib.num_threads(previous)


def build_molecule(atoms: Atoms, basis: str, charge: int, multiplicity: int) -> Mole:
    from pyscf import gto
    from pyscf.lib.exceptions import BasisNotFoundError

    # Coordinates go in as Bohr via ASE's constant so that geometry and the conversion of
    # forces back to eV/Å share one Bohr value.
    atom = [(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.get_positions() / Bohr, strict=True)]
    try:
        return gto.M(atom=atom, unit="Bohr", basis=basis, charge=charge, spin=multiplicity - 1, verbose=0)
    except BasisNotFoundError:
        raise InputError(
            SETTINGS_SOURCE, "basis", f"PySCF has no basis {basis!r} for {atoms.get_chemical_formula()}"
        ) from None


def build_scf(mol: Mole, settings: PySCFSettings, functional: Functional, multiplicity: int) -> SCF:
    from pyscf import dft

    kind = dft.RKS if multiplicity == 1 else dft.UKS
    mf = kind(mol, xc=settings.xc)
    auxbasis = resolve_auxbasis(settings, functional)
    if auxbasis is not None:
        mf = mf.density_fit(auxbasis=auxbasis)
    mf.grids.level = settings.grids_level
    mf.nlcgrids.level = settings.nlc_grids_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    # No checkpoint file: nothing reads it back, and PySCF would otherwise drop one per frame in TMPDIR.
    mf.chkfile = None
    return mf


def run_scf_and_gradient(mf: SCF, formula: str) -> tuple[float, np.ndarray]:
    """Energy (Hartree) and nuclear gradient (Hartree/Bohr)."""
    from pyscf.lib.exceptions import BasisNotFoundError

    try:
        energy = float(mf.kernel())
    except BasisNotFoundError as exc:
        # The fitting basis is only loaded here, at the first Fock build.
        raise InputError(SETTINGS_SOURCE, "auxbasis", f"PySCF cannot load it for {formula}: {exc}") from None
    if not mf.converged:
        raise SCFNotConvergedError(
            f"{formula}: SCF did not converge in {mf.max_cycle} cycles (conv_tol {mf.conv_tol:g})"
        )
    gradient = mf.nuc_grad_method()
    # The grid-weight response makes the forces the exact derivative of the quadrature energy;
    # without it they miss finite differences by ~5e-4 eV/Å.
    gradient.grid_response = True
    return energy, np.asarray(gradient.kernel(), dtype=float)


def _grid_scheme() -> dict[str, str]:
    """PySCF defaults that shape the quadrature; recorded so a changed default shows in provenance."""
    from pyscf.dft import gen_grid

    return {
        "radial": gen_grid.Grids.radi_method.__name__,
        "radii_adjust": gen_grid.Grids.radii_adjust.__name__,
        "prune": gen_grid.Grids.prune.__name__,
        "becke_scheme": gen_grid.Grids.becke_scheme.__name__,
    }


def _as_settings(settings: BaseModel) -> PySCFSettings:
    if not isinstance(settings, PySCFSettings):
        raise LambenchError(f"the pyscf plug-in needs PySCFReference.Settings, got {type(settings).__name__}")
    return settings


@register_reference("pyscf")
class PySCFReference(ReferenceCalculator):
    Settings = PySCFSettings

    def check_available(self, settings: BaseModel) -> None:
        describe_functional(_as_settings(settings).xc)

    def label(self, atoms: Atoms, settings: BaseModel, workdir: Path) -> ReferenceLabels:
        settings = _as_settings(settings)
        functional = describe_functional(settings.xc)
        require_molecule(atoms)
        charge, multiplicity = charge_and_multiplicity(atoms)
        formula = atoms.get_chemical_formula()
        workdir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with omp_threads(settings.threads):
            mol = build_molecule(atoms, settings.basis, charge, multiplicity)
            mf = build_scf(mol, settings, functional, multiplicity)
            energy, gradient = run_scf_and_gradient(mf, formula)
        return ReferenceLabels(
            energy=energy * Hartree,
            forces=(-gradient * (Hartree / Bohr)).tolist(),
            stress=None,
            wall_seconds=time.perf_counter() - start,
        )

    def provenance(self, settings: BaseModel) -> dict[str, Any]:
        settings = _as_settings(settings)
        functional = describe_functional(settings.xc)
        pyscf = _import_pyscf()
        from pyscf.dft import libxc

        auxbasis = resolve_auxbasis(settings, functional)
        fitted = ["coulomb"]
        if auxbasis is not None and functional.needs_exchange:
            fitted.append("exchange")
            if functional.range_separated:
                # PySCF fits the attenuated exchange with the same auxiliary basis, erf(omega r)/r metric.
                fitted.append(f"long-range exchange (same auxbasis, omega={functional.omega:g})")
        return {
            "code": "pyscf",
            "code_version": pyscf.__version__,
            "xc_library": f"libxc {libxc.__version__}",
            "ase_version": ase.__version__,
            "method": "RKS for multiplicity 1, UKS otherwise",
            "charge_and_multiplicity": "atoms.info['charge'] (default 0), atoms.info['spin'] = 2S+1 (default 1)",
            "xc": settings.xc,
            "exact_exchange_short_range": functional.exact_exchange,
            "exact_exchange_long_range": functional.long_range_exact_exchange,
            "range_separation_omega_per_bohr": functional.omega,
            "nonlocal_correlation": "VV10" if functional.vv10 else None,
            "dispersion": None,
            "basis": settings.basis,
            "density_fitting": settings.density_fitting,
            "auxbasis": auxbasis,
            "density_fitted_terms": fitted if auxbasis is not None else [],
            "grids_level": settings.grids_level,
            "grid_scheme": _grid_scheme(),
            "nlc_grids_level": settings.nlc_grids_level if functional.vv10 else None,
            "conv_tol": settings.conv_tol,
            "max_cycle": settings.max_cycle,
            "threads": settings.threads,
            "gradient": "analytic, with grid response",
            "units": {"energy": "eV", "forces": "eV/Angstrom"},
            "unit_conversion": "ase.units.Hartree and ase.units.Bohr",
        }
