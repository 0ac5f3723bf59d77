"""Configuration generators: deterministic near- and off-equilibrium structures for labelling.

A recipe names a base structure (built by a registered builder) and a list of generator steps;
each generator turns the base into `count` structures using its own seeded random stream, so the
same recipe always yields the same geometries, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc100, fcc111, molecule
from ase.data import covalent_radii
from pydantic import BaseModel, ConfigDict, Field

Builder = Callable[[dict[str, Any]], Atoms]
Generator = Callable[[Atoms, np.random.Generator, int, dict[str, Any]], list[Atoms]]

_BUILDERS: dict[str, Builder] = {}
_GENERATORS: dict[str, Generator] = {}

# A pair closer than this fraction of its natural distance (the smaller of its summed covalent
# radii and its shortest distance in the base structure, which covers multiple bonds) is an
# unphysical collision whose forces (tens of eV/Å) would dominate every error of a set; such draws
# are redrawn.
MIN_DISTANCE_FRACTION = 0.8
MAX_REDRAWS = 1000


def register_builder(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        return builder

    return register


def register_generator(name: str) -> Callable[[Generator], Generator]:
    def register(generator: Generator) -> Generator:
        _GENERATORS[name] = generator
        return generator

    return register


def known_generators() -> list[str]:
    return sorted(_GENERATORS)


class StructureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    builder: str
    args: dict[str, Any] = Field(default_factory=dict)
    repeat: tuple[int, int, int] = (1, 1, 1)


class GeneratorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str
    count: int = Field(gt=0, le=10_000)
    params: dict[str, Any] = Field(default_factory=dict)


def build_structure(spec: StructureSpec) -> Atoms:
    atoms = _BUILDERS[spec.builder](dict(spec.args))
    return atoms.repeat(spec.repeat) if spec.repeat != (1, 1, 1) else atoms


def generate(spec: GeneratorSpec, base: Atoms, rng: np.random.Generator) -> list[Atoms]:
    return _GENERATORS[spec.generator](base, rng, spec.count, dict(spec.params))


def _pair_distances(atoms: Atoms) -> np.ndarray:
    return atoms.get_all_distances(mic=bool(atoms.pbc.any()))


def natural_distances(base: Atoms) -> dict[tuple[int, int], float]:
    """Per element pair: min(summed covalent radii, shortest distance of that pair in `base`)."""
    natural: dict[tuple[int, int], float] = {}
    distances = _pair_distances(base) if len(base) > 1 else np.zeros((1, 1))
    for i, j in zip(*np.triu_indices(len(base), k=1), strict=True):
        low, high = sorted((int(base.numbers[i]), int(base.numbers[j])))
        pair = (low, high)
        covalent = covalent_radii[pair[0]] + covalent_radii[pair[1]]
        natural[pair] = min(natural.get(pair, covalent), covalent, float(distances[i, j]))
    return natural


def closest_approach(atoms: Atoms, natural: dict[tuple[int, int], float]) -> float:
    """Smallest ratio of a pair distance to that pair's natural distance (inf for unknown pairs)."""
    if len(atoms) < 2:
        return np.inf
    distances = _pair_distances(atoms)
    ratios = [
        distances[i, j] / natural[pair]
        for i, j in zip(*np.triu_indices(len(atoms), k=1), strict=True)
        if (pair := tuple(sorted((int(atoms.numbers[i]), int(atoms.numbers[j]))))) in natural
    ]
    return float(min(ratios, default=np.inf))


def _redraw_until_physical(draw: Callable[[], Atoms], base: Atoms) -> Atoms:
    natural = natural_distances(base)
    for _ in range(MAX_REDRAWS):
        atoms = draw()
        if closest_approach(atoms, natural) >= MIN_DISTANCE_FRACTION:
            return atoms
    raise ValueError(f"no draw without collisions (pairs closer than {MIN_DISTANCE_FRACTION}× their natural distance)")


def _linspace(params: dict[str, Any], name: str, count: int, default: tuple[float, float]) -> np.ndarray:
    low, high = params.get(name, default)
    return np.linspace(low, high, count)


# --- builders --------------------------------------------------------------------------------
@register_builder("bulk")
def _bulk(args: dict[str, Any]) -> Atoms:
    return bulk(**args)


@register_builder("molecule")
def _molecule(args: dict[str, Any]) -> Atoms:
    return molecule(args.pop("name"), **args)


_SURFACES = {"fcc111": fcc111, "fcc100": fcc100}


@register_builder("slab")
def _slab(args: dict[str, Any]) -> Atoms:
    """A surface slab with optional adsorbates: {surface, element, size, a, vacuum, adsorbates}."""
    adsorbates = args.pop("adsorbates", [])
    surface = _SURFACES[args.pop("surface")]
    slab = surface(args.pop("element"), size=tuple(args.pop("size")), **args)
    for adsorbate in adsorbates:
        species = adsorbate["species"]
        body = molecule(species) if len(species) > 1 else Atoms(species)
        add_adsorbate(slab, body, adsorbate["height"], adsorbate["position"], mol_index=adsorbate.get("mol_index", 0))
    slab.pbc = True  # periodic in-plane; the vacuum separates images along z
    return slab


# --- generators ------------------------------------------------------------------------------
@register_generator("rattle")
def _rattle(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """Gaussian displacements with σ rising evenly over [sigma_min, sigma_max] Å."""
    frames = []
    for sigma in _linspace(params, "sigma", count, (0.02, 0.12)):
        def draw(sigma: float = sigma) -> Atoms:
            atoms = base.copy()
            atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
            return atoms

        frames.append(_redraw_until_physical(draw, base))
    return frames


@register_generator("strain")
def _strain(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """Random symmetric strains up to ±max_strain per component, plus a small rattle."""
    max_strain = float(params.get("max_strain", 0.04))
    sigma = float(params.get("sigma", 0.02))
    frames = []
    for _ in range(count):
        def draw() -> Atoms:
            strain = rng.uniform(-max_strain, max_strain, (3, 3))
            strain = (strain + strain.T) / 2
            atoms = base.copy()
            atoms.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
            atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
            return atoms

        frames.append(_redraw_until_physical(draw, base))
    return frames


@register_generator("vacancy")
def _vacancy(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """Remove one random atom (of `element` if given) and rattle the rest."""
    sigma = float(params.get("sigma", 0.04))
    element = params.get("element")
    candidates = [i for i, s in enumerate(base.get_chemical_symbols()) if element in (None, s)]
    frames = []
    for _ in range(count):
        def draw() -> Atoms:
            atoms = base.copy()
            del atoms[int(rng.choice(candidates))]
            atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
            return atoms

        frames.append(_redraw_until_physical(draw, base))
    return frames


@register_generator("stretch")
def _stretch(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """Pull atom `moving` away from atom `anchor` to a series of distances (a dissociation path).

    Atoms listed in `carry` move with it (a leaving group), so only the chosen bond breaks.
    """
    anchor, moving = int(params["anchor"]), int(params["moving"])
    carry = [moving, *map(int, params.get("carry", []))]
    sigma = float(params.get("sigma", 0.0))
    frames = []
    for distance in _linspace(params, "distance", count, (1.0, 3.0)):
        atoms = base.copy()
        bond = atoms.positions[moving] - atoms.positions[anchor]
        shift = bond / np.linalg.norm(bond) * distance - bond
        atoms.positions[carry] += shift
        if sigma:
            atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        frames.append(atoms)
    return frames


@register_generator("md")
def _md(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """Snapshots of Langevin MD driven by a cheap potential (a model card name, default EMT)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from lambench_core.models.catalog import ModelCatalog
    from lambench_core.models.loading import load_model

    driver = load_model(ModelCatalog.load().get(params.get("driver", "emt")), None, "cpu").calculator
    temperature = float(params.get("temperature_K", 600.0))
    interval = int(params.get("interval", 10))
    atoms = base.copy()
    atoms.calc = driver
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(
        atoms,
        timestep=float(params.get("timestep_fs", 1.0)) * units.fs,
        temperature_K=temperature,
        friction=0.02,
        rng=rng,
    )
    frames = []
    for _ in range(count):
        dynamics.run(interval)
        snapshot = atoms.copy()
        snapshot.calc = None
        frames.append(snapshot)
    return frames
