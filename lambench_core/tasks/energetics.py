"""Energy differences of fixed geometries: surface, vacancy formation and adsorption energies.

Reads a shipped property set whose frames carry `system` in their info (one frame per system,
labelled by Quantum ESPRESSO: lambench_core/data/recipes/surfaces_cu.yaml). Every property is a
combination of total energies of those very structures — nothing is relaxed, on either side — so
the comparison isolates the model's energy differences from any relaxation path:

- surface energy  γ = (E_slab − N_slab/N_bulk · E_bulk) / 2A, A the slab's in-plane cell area,
  with the bulk cell oriented like the slab (meV/Å²);
- vacancy formation  E_v = E(N−1 atoms) − (N−1)/N · E(N atoms), in one supercell (eV);
- reaction energies  ΔE = Σ c_i E_i, here adsorption energies against gas-phase references,
  e.g. E(slab+H) − E(slab) − ½ E(H₂) (eV).

The dummy model's energies are sums of per-element constants, so every one of these differences is
exactly zero for it and its error is the mean |reference|: those are the stored dummy values.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.errors import InputError
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import Metric
from lambench_core.tasks.base import FramesTask, TaskContext, TaskOutput, register_task
from lambench_core.tasks.evaluation import Timer, evaluate_items, mean_or_none
from lambench_core.tasks.structures import in_plane_area

MEV = 1000.0


class SurfaceEnergy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    slab: str = Field(description="System of the slab (two equivalent surfaces)")
    bulk: str = Field(description="System of the bulk cell oriented like the slab")


class VacancyFormation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    defect: str = Field(description="System of the supercell with the vacancy")
    bulk: str = Field(description="System of the perfect supercell")


class ReactionEnergy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    terms: dict[str, float] = Field(min_length=2, description="System → stoichiometric coefficient")


class EnergeticsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    surfaces: list[SurfaceEnergy] = Field(default_factory=list)
    vacancies: list[VacancyFormation] = Field(default_factory=list)
    reactions: list[ReactionEnergy] = Field(default_factory=list)


Property = SurfaceEnergy | VacancyFormation | ReactionEnergy


def property_value(prop: Property, energies: dict[str, float], structures: dict[str, Atoms]) -> float:
    """The property from total energies (eV) of its systems: meV/Å² for surfaces, eV otherwise."""
    if isinstance(prop, SurfaceEnergy):
        ratio = len(structures[prop.slab]) / len(structures[prop.bulk])
        excess = energies[prop.slab] - ratio * energies[prop.bulk]
        return excess / (2.0 * in_plane_area(structures[prop.slab])) * MEV
    if isinstance(prop, VacancyFormation):
        n_bulk, n_defect = len(structures[prop.bulk]), len(structures[prop.defect])
        return energies[prop.defect] - n_defect / n_bulk * energies[prop.bulk]
    return sum(coefficient * energies[system] for system, coefficient in prop.terms.items())


def systems_of(prop: Property) -> list[str]:
    if isinstance(prop, SurfaceEnergy):
        return [prop.slab, prop.bulk]
    if isinstance(prop, VacancyFormation):
        return [prop.defect, prop.bulk]
    return list(prop.terms)


KINDS: dict[type, str] = {SurfaceEnergy: "surface", VacancyFormation: "vacancy", ReactionEnergy: "reaction"}


class FixedGeometryEnergetics(FramesTask[EnergeticsParams]):
    """Shared machinery; subclasses choose the properties (their default params) and metrics."""

    category = Category.PROPERTY
    version = "1"
    Params = EnergeticsParams
    # kind → (metric name, unit)
    METRICS: ClassVar[dict[str, tuple[str, str]]]

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: EnergeticsParams) -> dict[str, Metric]:
        """Per kind of property (surface, vacancy, reaction), the MAE over its scored records."""
        return {
            metric: Metric(
                value=mean_or_none(abs(r["value"] - r["reference"]) for r in records if r["kind"] == kind),
                unit=unit,
            )
            for kind, (metric, unit) in cls.METRICS.items()
        }

    def run(
        self, model: LoadedModel, frames: list[Frame], params: EnergeticsParams, context: TaskContext
    ) -> TaskOutput:
        by_system = {str(frame.atoms.info.get("system")): frame for frame in frames}
        properties: list[Property] = [*params.surfaces, *params.vacancies, *params.reactions]
        for prop in properties:
            missing = [s for s in systems_of(prop) if s not in by_system]
            if missing:
                raise InputError(
                    f"the dataset of task {self.name}", f"params: {prop.name}", f"no frame of {', '.join(missing)}"
                )
        structures = {system: frame.atoms for system, frame in by_system.items()}
        reference = {system: float(frame.energy) for system, frame in by_system.items() if frame.energy is not None}
        timer = Timer()
        predicted: dict[str, float] = {}

        def energy(system: str) -> float:
            if system not in predicted:
                predicted[system] = timer.energy(model, structures[system])
            return predicted[system]

        def evaluate(name: str, prop: Property) -> dict[str, Any]:
            systems = systems_of(prop)
            value = property_value(prop, {s: energy(s) for s in systems}, structures)
            return {
                "kind": KINDS[type(prop)],
                "value": value,
                "reference": property_value(prop, reference, structures),
                "unit": self.METRICS[KINDS[type(prop)]][1],
            }

        results = evaluate_items(
            model,
            [(prop.name, prop) for prop in properties],
            lambda prop: [structures[s] for s in systems_of(prop)],
            evaluate,
            context.progress,
        )
        return self.output(params, results, compute_seconds=timer.seconds)


class CuSurfaceVacancyParams(EnergeticsParams):
    surfaces: list[SurfaceEnergy] = Field(
        default_factory=lambda: [
            SurfaceEnergy(name="Cu(111)", slab="cu111-slab", bulk="cu111-bulk"),
            SurfaceEnergy(name="Cu(100)", slab="cu100-slab", bulk="cu100-bulk"),
        ]
    )
    vacancies: list[VacancyFormation] = Field(
        default_factory=lambda: [
            VacancyFormation(name="Cu vacancy (2×2×2 primitive)", defect="cu-vacancy-7", bulk="cu-bulk-8")
        ]
    )


class CuAdsorptionParams(EnergeticsParams):
    reactions: list[ReactionEnergy] = Field(
        default_factory=lambda: [
            ReactionEnergy(name="H/Cu(111) fcc vs ½H2", terms={"cu111-h": 1.0, "cu111-slab": -1.0, "h2": -0.5}),
            ReactionEnergy(
                name="O/Cu(111) fcc vs H2O − H2", terms={"cu111-o": 1.0, "cu111-slab": -1.0, "h2o": -1.0, "h2": 1.0}
            ),
        ]
    )


@register_task
class CuSurfaceVacancyTask(FixedGeometryEnergetics):
    """Inorganic materials: Cu(111) and Cu(100) surface energies and the Cu vacancy formation energy."""

    name = "cu_surface_vacancy"
    Params = CuSurfaceVacancyParams
    METRICS = {"surface": ("surface_energy_mae", "meV/Å²"), "vacancy": ("vacancy_formation_mae", "eV")}
    scored_metrics = ("surface_energy_mae", "vacancy_formation_mae")
    # Mean |reference| of surfaces_cu_pbe; tests/core/test_energetics.py recomputes them with the dummy model.
    dummy_values = {
        "surface_energy_mae": 82.11649844164947,
        "vacancy_formation_mae": 0.8666141224784951,
    }


@register_task
class CuAdsorptionTask(FixedGeometryEnergetics):
    """Catalysis: H and O adsorption energies on Cu(111) against H2 and H2O."""

    name = "cu_adsorption"
    Params = CuAdsorptionParams
    METRICS = {"reaction": ("adsorption_energy_mae", "eV")}
    scored_metrics = ("adsorption_energy_mae",)
    dummy_values = {"adsorption_energy_mae": 1.4674068007238104}
