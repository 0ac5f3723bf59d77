"""What a task is: a name, a category, a typed params model, a version and a run function."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import ItemIssue, Metric

ProgressCallback = Callable[[int, int], None]


@dataclass
class TaskOutput:
    metrics: dict[str, Metric]
    n_items: int
    records: list[dict[str, Any]] = field(default_factory=list)
    issues: list[ItemIssue] = field(default_factory=list)
    compute_seconds: float = 0.0

    @property
    def n_scored(self) -> int:
        return self.n_items - len(self.issues)


class Task(ABC):
    name: ClassVar[str]
    category: ClassVar[Category]
    version: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    # Property tasks: the metrics that enter M_PC, and their values for the dummy (or a documented
    # trivial) predictor, which define x = 1.
    scored_metrics: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def dummy_values(cls) -> dict[str, float]:
        return {}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: BaseModel) -> dict[str, Metric]:
        """The task's metrics from its per-item records alone (one record per resampling unit, with
        an "item" key). The bootstrap calls it on resampled records, so run() must build its metrics
        with it; metrics that no record carries (peak memory, ...) may be added by run() beside it."""
        raise NotImplementedError(f"task {cls.name!r} cannot summarize its records")

    @classmethod
    def referenced_datasets(cls, params: BaseModel) -> list[str]:
        """Datasets the task reads by name from its params, beside its own: their digests join the
        identity of its results, so relabelling one of them recomputes the task."""
        return []

    @abstractmethod
    def run(
        self,
        model: LoadedModel,
        frames: list[Frame],
        params: BaseModel,
        progress: ProgressCallback,
    ) -> TaskOutput: ...


class DirectoryTask(Task):
    """A property task on data in its own file layout (a `directory` dataset, e.g. LAMBench's):
    the harness verifies the tree's digest and hands the task its root."""

    def run(self, model: LoadedModel, frames: list[Frame], params: BaseModel, progress: ProgressCallback) -> TaskOutput:
        raise TypeError(f"task {self.name!r} reads a data directory: call run_on_directory")

    @abstractmethod
    def run_on_directory(
        self, model: LoadedModel, root: Path, params: BaseModel, progress: ProgressCallback
    ) -> TaskOutput: ...


_TASKS: dict[str, type[Task]] = {}


def register_task(task: type[Task]) -> type[Task]:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def task_class(name: str) -> type[Task]:
    import lambench_core.tasks.builtin  # noqa: F401  (registers the built-in tasks)

    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(sorted(_TASKS))})") from None
