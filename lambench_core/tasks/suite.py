"""The task instances a campaign can run: a task bound to a dataset and its params."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lambench_core.data.manifest import ManifestDocument
from lambench_core.domains import Domain
from lambench_core.models.catalog import UnknownNameError
from lambench_core.tasks.base import TaskCategory, task_class


class TaskInstance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    task: str
    category: TaskCategory
    domain: Domain
    dataset: str | None
    params: dict[str, Any]


def force_field_instances(document: ManifestDocument) -> list[TaskInstance]:
    """One force-field instance per dataset whose files are on this machine."""
    task = task_class("force_field")
    instances = []
    for entry in document.entries():
        if not document.is_present(entry):
            continue
        params = task.Params(dispersion=entry.dispersion).model_dump(mode="json")
        instances.append(
            TaskInstance(
                name=f"force_field/{entry.name}",
                task=task.name,
                category=task.category,
                domain=entry.domain,
                dataset=entry.name,
                params=params,
            )
        )
    return instances


class TaskSuite:
    def __init__(self, instances: list[TaskInstance]) -> None:
        self._instances = {instance.name: instance for instance in instances}

    @classmethod
    def default(cls, document: ManifestDocument) -> TaskSuite:
        return cls(force_field_instances(document))

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
