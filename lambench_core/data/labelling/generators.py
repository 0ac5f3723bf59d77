"""Configuration generators: deterministic near- and off-equilibrium structures for labelling.

A recipe names a base structure (built by a registered builder) and a list of generator steps;
each generator turns the base into `count` structures using its own seeded random stream, so the
same recipe always yields the same geometries, bit for bit. A generator that drives a model (`md`)
looks its driver up in the model catalog its caller passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from lambench_core.models.catalog import ModelCatalog

Builder = Callable[[dict[str, Any]], Atoms]
Generator = Callable[[Atoms, np.random.Generator, int, dict[str, Any]], list[Atoms]]
# A generator that drives a model also gets the catalog its driver's card is looked up in.
DrivenGenerator = Callable[[Atoms, np.random.Generator, int, dict[str, Any], "ModelCatalog"], list[Atoms]]

_BUILDERS: dict[str, Builder] = {}
_GENERATORS: dict[str, Generator] = {}
_DRIVEN_GENERATORS: dict[str, DrivenGenerator] = {}

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


def register_driven_generator(name: str) -> Callable[[DrivenGenerator], DrivenGenerator]:
    def register(generator: DrivenGenerator) -> DrivenGenerator:
        _DRIVEN_GENERATORS[name] = generator
        return generator

    return register


def known_generators() -> list[str]:
    return sorted([*_GENERATORS, *_DRIVEN_GENERATORS])


class StructureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    builder: str
    args: dict[str, Any] = Field(default_factory=dict)
    repeat: tuple[int, int, int] = (1, 1, 1)
    remove: list[int] = Field(default_factory=list, description="Atom indices deleted after repeating (vacancies)")


class GeneratorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str
    count: int = Field(gt=0, le=10_000)
    params: dict[str, Any] = Field(default_factory=dict)


def build_structure(spec: StructureSpec) -> Atoms:
    atoms = _BUILDERS[spec.builder](dict(spec.args))
    if spec.repeat != (1, 1, 1):
        atoms = atoms.repeat(spec.repeat)
    if spec.remove:
        del atoms[spec.remove]
    return atoms


def generate(
    spec: GeneratorSpec, base: Atoms, rng: np.random.Generator, catalog: ModelCatalog | None = None
) -> list[Atoms]:
    """`spec.count` structures from `base`; a model-driven generator (`md`) needs the `catalog` that
    holds its driver's card."""
    if spec.generator in _DRIVEN_GENERATORS:
        if catalog is None:
            raise ValueError(f"the {spec.generator} generator drives a model: pass the model catalog to look it up in")
        return _DRIVEN_GENERATORS[spec.generator](base, rng, spec.count, dict(spec.params), catalog)
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
# ase.build is imported in each builder: it pulls in scipy, most of a second at the start of every
# campaign step (the elastic task imports this module for its strains).
@register_builder("bulk")
def _bulk(args: dict[str, Any]) -> Atoms:
    from ase.build import bulk

    return bulk(**args)


@register_builder("molecule")
def _molecule(args: dict[str, Any]) -> Atoms:
    from ase.build import molecule

    return molecule(args.pop("name"), **args)


SURFACES = ("fcc111", "fcc100")  # ase.build's slab builders a recipe may name


@register_builder("slab")
def _slab(args: dict[str, Any]) -> Atoms:
    """A surface slab with optional adsorbates: {surface, element, size, a, vacuum, adsorbates}."""
    import ase.build

    adsorbates = args.pop("adsorbates", [])
    name = args.pop("surface")
    if name not in SURFACES:
        raise ValueError(f"slab builder: unknown surface {name!r} (known: {', '.join(SURFACES)})")
    surface = getattr(ase.build, name)
    slab = surface(args.pop("element"), size=tuple(args.pop("size")), **args)
    for adsorbate in adsorbates:
        species = adsorbate["species"]
        body = ase.build.molecule(species) if len(species) > 1 else Atoms(species)
        index = adsorbate.get("mol_index", 0)
        ase.build.add_adsorbate(slab, body, adsorbate["height"], adsorbate["position"], mol_index=index)
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


@register_driven_generator("md")
def _md(
    base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any], catalog: ModelCatalog
) -> list[Atoms]:
    """Snapshots of Langevin MD driven by a cheap potential (a model card name, default EMT)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from lambench_core.models.loading import load_model

    driver = load_model(catalog.get(params.get("driver", "emt")), None, "cpu").calculator
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


@register_generator("identity")
def _identity(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """The base structure itself (count must be 1): the fixed geometries of property references."""
    if count != 1:
        raise ValueError("the identity generator makes exactly one frame (count: 1)")
    return [base.copy()]


VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_strain_matrix(component: int, magnitude: float) -> np.ndarray:
    """The symmetric strain tensor of one Voigt component; shear magnitudes are engineering strains
    (γ = 2ε), so that σ_i = C_ij ε_j holds with Voigt stresses and strains."""
    i, j = VOIGT_PAIRS[component]
    strain = np.zeros((3, 3))
    if i == j:
        strain[i, i] = magnitude
    else:
        strain[i, j] = strain[j, i] = magnitude / 2
    return strain


def apply_strain(atoms: Atoms, strain: np.ndarray) -> Atoms:
    strained = atoms.copy()
    strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    return strained


@register_generator("elastic_strain")
def _elastic_strain(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """The unstrained cell, then each Voigt component in `components` at each of `magnitudes`.

    `count` must equal 1 + len(components) × len(magnitudes): the recipe states the frames it makes.
    Frames carry `strain_component` (0–5, −1 for the unstrained cell) and `strain` in their info.
    """
    components = [int(c) for c in params.get("components", [0, 3])]
    magnitudes = [float(m) for m in params.get("magnitudes", [-0.01, -0.005, 0.005, 0.01])]
    if any(not 0 <= c < 6 for c in components) or any(m == 0.0 for m in magnitudes):
        raise ValueError("components are Voigt indices 0–5 and magnitudes are non-zero strains")
    expected = 1 + len(components) * len(magnitudes)
    if count != expected:
        raise ValueError(f"elastic_strain makes {expected} frames for these components and magnitudes, not {count}")
    unstrained = base.copy()
    unstrained.info.update(strain_component=-1, strain=0.0)
    frames = [unstrained]
    for component in components:
        for magnitude in magnitudes:
            strained = apply_strain(base, voigt_strain_matrix(component, magnitude))
            strained.info.update(strain_component=component, strain=magnitude)
            frames.append(strained)
    return frames


def rotating_side(atoms: Atoms, axis_from: int, axis_to: int) -> list[int]:
    """Atoms bonded (by covalent radii) to `axis_to` without passing through `axis_from`: the part
    of the molecule that turns when the dihedral about the axis_from–axis_to bond changes."""
    from ase.neighborlist import NeighborList, natural_cutoffs

    neighbours = NeighborList(natural_cutoffs(atoms, mult=1.1), self_interaction=False, bothways=True)
    neighbours.update(atoms)
    side, frontier = {axis_to}, [axis_to]
    while frontier:
        for j in map(int, neighbours.get_neighbors(frontier.pop())[0]):
            if j != axis_from and j not in side:
                side.add(j)
                frontier.append(j)
    if any(int(j) in side - {axis_to} for j in neighbours.get_neighbors(axis_from)[0]):
        raise ValueError("the dihedral axis is in a ring: no rigid rotation exists")
    return sorted(side)


@register_generator("torsion_scan")
def _torsion_scan(base: Atoms, rng: np.random.Generator, count: int, params: dict[str, Any]) -> list[Atoms]:
    """A rigid dihedral scan: the side of bond b–c that holds d turns to `count` angles evenly
    spaced over `angles` [start, stop] degrees; bond lengths and angles stay those of the base.
    Frames carry `dihedral_deg` in their info."""
    a, b, c, d = (int(i) for i in params["dihedral"])
    side = rotating_side(base, b, c)
    if d not in side or a in side:
        raise ValueError(f"atoms {a} and {d} are not on opposite sides of the {b}–{c} bond")
    frames = []
    for angle in _linspace(params, "angles", count, (0.0, 180.0)):
        atoms = base.copy()
        mask = np.zeros(len(atoms), bool)
        mask[side] = True
        atoms.set_dihedral(a, b, c, d, float(angle), mask=mask)
        atoms.info.update(dihedral_deg=float(angle))
        frames.append(atoms)
    return frames
