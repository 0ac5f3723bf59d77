"""The task instances a campaign can run: a task bound to a dataset and its params."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lambench_core.data.manifest import DatasetEntry, ManifestDocument
from lambench_core.domains import Domain
from lambench_core.models.card import DEFAULT_LEVEL
from lambench_core.models.catalog import UnknownNameError
from lambench_core.tasks.base import TaskCategory, task_class


class TaskInstance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    task: str
    category: TaskCategory
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
        if document.is_present(entry):
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


PROPERTY_TASKS = {
    "eos_dcdft": Domain.INORGANIC_MATERIALS,
    "s22": Domain.MOLECULES,
    "dbh24": Domain.MOLECULES,
    "phonons_phonopy": Domain.INORGANIC_MATERIALS,
}


def property_instances() -> list[TaskInstance]:
    """Property tasks on reference data that ships with ASE (WIEN2k EOS, S22, DBH24) or in the package (phonons)."""
    instances = []
    for name, domain in PROPERTY_TASKS.items():
        task = task_class(name)
        instances.append(
            TaskInstance(
                name=name,
                task=task.name,
                category=task.category,
                domain=domain,
                params=task.Params().model_dump(mode="json"),
            )
        )
    return instances


class TaskSuite:
    def __init__(self, instances: list[TaskInstance]) -> None:
        self._instances = {instance.name: instance for instance in instances}

    @classmethod
    def default(cls, document: ManifestDocument) -> TaskSuite:
        return cls(force_field_instances(document) + property_instances())

    def names(self) -> list[str]:
        return list(self._instances)

    def get(self, name: str) -> TaskInstance:
        try:
            return self._instances[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown task {name!r} (known: {', '.join(self.names())})"
            ) from None

    def select(self, names: list[str]) -> list[TaskInstance]:
        return [self.get(name) for name in names]
