"""The task instances a campaign can run: a task bound to a dataset and its params."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.categories import Category
from lambench_core.data.manifest import DatasetEntry, ManifestDocument
from lambench_core.domains import Domain
from lambench_core.models.card import DEFAULT_LEVEL
from lambench_core.models.catalog import UnknownNameError
from lambench_core.tasks.base import task_class


class TaskInstance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    task: str
    category: Category
    domain: Domain
    set_name: str | None = Field(default=None, description="The benchmark set (leaderboard column)")
    datasets: dict[str, str] = Field(
        default_factory=dict, description="Reference level → dataset holding that label set"
    )
    params: dict[str, Any]

    def dataset_for(self, level: str) -> str | None:
        """The label set a model trained at `level` is scored on: its own level, else PBE."""
        if not self.datasets:
            return None
        return self.datasets.get(level) or self.datasets.get(DEFAULT_LEVEL) or sorted(self.datasets.values())[0]


def force_field_instances(document: ManifestDocument) -> list[TaskInstance]:
    """One force-field instance per benchmark set with at least one label set on this machine."""
    task = task_class("force_field")
    by_set: dict[str, list[DatasetEntry]] = {}
    for entry in document.entries():
        if entry.use == Category.FORCE_FIELD and document.is_present(entry):
            by_set.setdefault(entry.set_name, []).append(entry)
    instances = []
    for set_name, entries in by_set.items():
        first = entries[0]
        params = task.Params(dispersion=first.dispersion).model_dump(mode="json")
        instances.append(
            TaskInstance(
                name=f"force_field/{set_name}",
                task=task.name,
                category=task.category,
                domain=first.domain,
                set_name=set_name,
                datasets={entry.level: entry.name for entry in entries},
                params=params,
            )
        )
    return instances


class PropertyTaskSpec(BaseModel):
    """A property task of the default suite: its domain, and the set holding its reference data
    (None: the data ships with ASE or inside the task module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    domain: Domain
    set_name: str | None = None


# The suite's property tasks. Part A runs everywhere; LAMBench's sets (part B) join once
# `lambench data fetch lambench_<task> --archive FILE` has put their data on this machine.
PROPERTY_TASKS: tuple[PropertyTaskSpec, ...] = (
    PropertyTaskSpec(task="eos_dcdft", domain=Domain.INORGANIC_MATERIALS),
    PropertyTaskSpec(task="phonons_phonopy", domain=Domain.INORGANIC_MATERIALS),
    PropertyTaskSpec(task="elastic_cubic", domain=Domain.INORGANIC_MATERIALS, set_name="elastic_cubic"),
    PropertyTaskSpec(task="cu_surface_vacancy", domain=Domain.INORGANIC_MATERIALS, set_name="surfaces_cu"),
    PropertyTaskSpec(task="s22", domain=Domain.MOLECULES),
    PropertyTaskSpec(task="dbh24", domain=Domain.MOLECULES),
    PropertyTaskSpec(task="torsion_scans", domain=Domain.MOLECULES, set_name="torsion_scans"),
    PropertyTaskSpec(task="cu_adsorption", domain=Domain.CATALYSIS, set_name="surfaces_cu"),
    *(
        PropertyTaskSpec(task=f"lambench_{name}", domain=domain, set_name=f"lambench_{name}")
        for name, domain in (
            ("phonon_mdr", Domain.INORGANIC_MATERIALS),
            ("elastic", Domain.INORGANIC_MATERIALS),
            ("vacancy", Domain.INORGANIC_MATERIALS),
            ("pressure", Domain.INORGANIC_MATERIALS),
            ("stacking_fault", Domain.INORGANIC_MATERIALS),
            ("interface", Domain.INORGANIC_MATERIALS),
            ("surface", Domain.INORGANIC_MATERIALS),
            ("torsionnet", Domain.MOLECULES),
            ("wiggle150", Domain.MOLECULES),
            ("binding", Domain.MOLECULES),
            ("rxn_barrier", Domain.MOLECULES),
            ("neb", Domain.CATALYSIS),
        )
    ),
)


def present_datasets(document: ManifestDocument, use: Category, set_name: str | None) -> dict[str, str] | None:
    """Reference level → dataset of a task's set on this machine; {} for a task that reads no set,
    None when its set is not here (the task then stays out of the suite)."""
    if set_name is None:
        return {}
    found = {
        entry.level: entry.name
        for entry in document.entries()
        if entry.use == use and entry.set_name == set_name and document.is_present(entry)
    }
    return found or None


def property_instances(
    document: ManifestDocument, specs: tuple[PropertyTaskSpec, ...] = PROPERTY_TASKS
) -> list[TaskInstance]:
    """The property tasks whose reference data is on this machine (always so for part A)."""
    instances = []
    for spec in specs:
        task = task_class(spec.task)
        datasets = present_datasets(document, Category.PROPERTY, spec.set_name)
        if datasets is None:
            continue
        instances.append(
            TaskInstance(
                name=spec.task,
                task=task.name,
                category=task.category,
                domain=spec.domain,
                set_name=spec.set_name,
                datasets=datasets,
                params=task.Params().model_dump(mode="json"),
            )
        )
    return instances


Profile = Literal["quick", "full"]


class AdaptabilityTaskSpec(BaseModel):
    """An adaptability task of the default suite; Matbench's join when their data is fetched.
    `in_quick`: part of the laptop profile (which probes with ridge heads only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    domain: Domain
    set_name: str | None = None
    in_quick: bool = False
    protocol: Literal["probe", "finetune"] = "probe"

    @property
    def instance_name(self) -> str:
        return self.task if self.protocol == "probe" else f"{self.task}/{self.protocol}"


QUICK_ADAPTABILITY = {"mlp": False}
ADAPTABILITY_TASKS: tuple[AdaptabilityTaskSpec, ...] = (
    AdaptabilityTaskSpec(task="adapt_g2_formation_enthalpy", domain=Domain.MOLECULES, in_quick=True),
    AdaptabilityTaskSpec(task="adapt_dcdft_bulk_modulus", domain=Domain.INORGANIC_MATERIALS, in_quick=True),
    AdaptabilityTaskSpec(task="adapt_dcdft_volume", domain=Domain.INORGANIC_MATERIALS),
    # Fine-tuning costs minutes per model on a CPU: the full profile only.
    AdaptabilityTaskSpec(task="adapt_g2_formation_enthalpy", domain=Domain.MOLECULES, protocol="finetune"),
    *(
        AdaptabilityTaskSpec(task=f"matbench_{name}", domain=Domain.INORGANIC_MATERIALS, set_name=f"matbench_{name}")
        for name in ("dielectric", "jdft2d", "log_gvrh", "log_kvrh", "mp_e_form", "mp_gap", "perovskites", "phonons")
    ),
)


def adaptability_instances(
    document: ManifestDocument, profile: Profile = "quick", specs: tuple[AdaptabilityTaskSpec, ...] = ADAPTABILITY_TASKS
) -> list[TaskInstance]:
    instances = []
    for spec in specs:
        if profile == "quick" and not spec.in_quick:
            continue
        task = task_class(spec.task)
        datasets = present_datasets(document, Category.ADAPTABILITY, spec.set_name)
        if datasets is None:
            continue
        overrides = (QUICK_ADAPTABILITY if profile == "quick" else {}) | {"protocol": spec.protocol}
        instances.append(
            TaskInstance(
                name=spec.instance_name,
                task=task.name,
                category=task.category,
                domain=spec.domain,
                set_name=spec.set_name,
                datasets=datasets,
                params=task.Params.model_validate(overrides).model_dump(mode="json"),
            )
        )
    return instances


class ApplicabilityTaskSpec(BaseModel):
    """An applicability task of the default suite. `quick` overrides its params for laptop campaigns
    (the default profile); `full` runs the task's own defaults, LAMBench's protocol."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    # The head a multi-head model runs with: applicability is measured on one head.
    domain: Domain = Domain.INORGANIC_MATERIALS
    quick: dict[str, Any] = Field(default_factory=dict)


# The quick MD profile runs the same systems in their shipped (small) cells for 200 fs: enough to catch
# a model that explodes, not to resolve drifts near λ0 — use `--profile full` (10 ps) for that.
APPLICABILITY_TASKS: tuple[ApplicabilityTaskSpec, ...] = (
    # Quick: sizes up to 600 atoms (η̄ then averages 100–600 of the 100–1000 window), one minute per system.
    ApplicabilityTaskSpec(
        task="efficiency", quick={"max_atoms": 600, "time_budget_s": 60.0, "warmup": 1, "repeats": 3}
    ),
    ApplicabilityTaskSpec(
        task="md_stability",
        quick={
            "steps": 200,
            "log_interval": 5,
            "systems": [
                {"dataset": "cu_bulk_pbe", "frame": 0},
                {"dataset": "si_bulk_pbe", "frame": 0},
                {"dataset": "sic_bulk_pbe", "frame": 0},
                {"dataset": "molecules_small_pbe", "frame": 28},
                {"dataset": "molecules_small_pbe", "frame": 0},
                {"dataset": "cu111_h_pbe", "frame": 0},
                {"dataset": "cu111_o_pbe", "frame": 0},
            ],
        },
    ),
)


def applicability_instances(
    profile: Profile = "quick", specs: tuple[ApplicabilityTaskSpec, ...] = APPLICABILITY_TASKS
) -> list[TaskInstance]:
    instances = []
    for spec in specs:
        task = task_class(spec.task)
        overrides = spec.quick if profile == "quick" else {}
        instances.append(
            TaskInstance(
                name=spec.task,
                task=task.name,
                category=task.category,
                domain=spec.domain,
                params=task.Params.model_validate(overrides).model_dump(mode="json"),
            )
        )
    return instances


class TaskSuite:
    def __init__(self, instances: list[TaskInstance]) -> None:
        self._instances = {instance.name: instance for instance in instances}

    @classmethod
    def default(cls, document: ManifestDocument, profile: Profile = "quick") -> TaskSuite:
        return cls(
            force_field_instances(document)
            + property_instances(document)
            + adaptability_instances(document, profile)
            + applicability_instances(profile)
        )

    def names(self) -> list[str]:
        return list(self._instances)

    def get(self, name: str) -> TaskInstance:
        try:
            return self._instances[name]
        except KeyError:
            raise UnknownNameError(f"unknown task {name!r} (known: {', '.join(self.names())})") from None

    def select(self, names: list[str]) -> list[TaskInstance]:
        return [self.get(name) for name in names]
