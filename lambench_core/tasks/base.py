"""What a task is: a name, a category, a version, a typed params model, the input it reads, and a run
function that gets exactly that input and the campaign's context.

A task subclasses one of three bases, which declare its input (`needs`) and give `run` its signature:
- `FramesTask[P]`: the job's dataset as labelled frames — `run(model, frames, params, context)`;
- `DirectoryTask[P]`: the job's dataset as a verified directory tree — `run(model, root, params, context)`;
- `StandaloneTask[P]`: no dataset; the task builds its structures or reads sets named in its params
  through `context.manifest` — `run(model, params, context)`.
The harness loads only what `needs` declares and calls `execute`, which each base implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from lambench_core.categories import Category
from lambench_core.data.frames import Frame
from lambench_core.data.manifest import ManifestDocument
from lambench_core.errors import LambenchError
from lambench_core.models.catalog import ModelCatalog
from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import ItemIssue, Metric

ProgressCallback = Callable[[int, int], None]
P = TypeVar("P", bound=BaseModel)


def no_progress(done: int, total: int) -> None:
    """A progress callback that reports nothing."""


class TaskInput(StrEnum):
    """What a task reads of its job's dataset."""

    FRAMES = "frames"  # labelled frames (extxyz / deepmd sets)
    DIRECTORY = "directory"  # the root of a `directory` dataset, its tree digest verified
    NONE = "none"  # nothing: the task builds its structures, or names shipped sets in its params


@dataclass(frozen=True)
class TaskContext:
    """What a task may use beside its model, input and params: the campaign's own manifest and
    catalog (never the built-in defaults), the device and dtype of the job, and its progress."""

    manifest: ManifestDocument
    catalog: ModelCatalog
    device: str = "cpu"
    dtype: str = "float32"
    progress: ProgressCallback = no_progress


@dataclass(frozen=True)
class TaskData:
    """The job's dataset in the form its task declared (`Task.needs`); the harness fills only that."""

    frames: list[Frame] = field(default_factory=list)
    root: Path | None = None
    sha256: str | None = None


@dataclass
class ItemResults:
    """What a task's item loop produced: one record per scored item, one issue per item not scored."""

    records: list[dict[str, Any]] = field(default_factory=list)
    issues: list[ItemIssue] = field(default_factory=list)
    n_items: int = 0


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


class ComputedValues(Mapping[str, float]):
    """A task's dummy values computed from its reference data when first read, not when the module
    is imported (every campaign step imports every task module)."""

    def __init__(self, compute: Callable[[], Mapping[str, float]]) -> None:
        self._compute = compute
        self._values: dict[str, float] | None = None

    def _loaded(self) -> dict[str, float]:
        if self._values is None:
            self._values = dict(self._compute())
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


class Task(ABC, Generic[P]):
    name: ClassVar[str]
    category: ClassVar[Category]
    version: ClassVar[str]
    Params: type[P]
    needs: ClassVar[TaskInput]
    # Property tasks: the metrics that enter M_PC, and their values for the dummy (or a documented
    # trivial) predictor, which define x = 1.
    scored_metrics: ClassVar[tuple[str, ...]] = ()
    dummy_values: ClassVar[Mapping[str, float]] = {}

    @classmethod
    def summarize(cls, records: list[dict[str, Any]], params: P) -> dict[str, Metric]:
        """The task's metrics from its per-item records alone (one record per resampling unit, with
        an "item" key). The bootstrap calls it on resampled records, so run() builds its output with
        `output()`, which calls it; metrics that no record carries (peak memory, ...) go beside it."""
        raise NotImplementedError(f"task {cls.name!r} cannot summarize its records")

    @classmethod
    def referenced_datasets(cls, params: P) -> list[str]:
        """Datasets the task reads by name from its params, beside its own: their digests join the
        identity of its results, so relabelling one of them recomputes the task."""
        return []

    @abstractmethod
    def execute(self, model: LoadedModel, data: TaskData, params: P, context: TaskContext) -> TaskOutput:
        """What the harness calls: hands `run` the input the task declared."""

    def output(
        self,
        params: P,
        results: ItemResults,
        compute_seconds: float = 0.0,
        extra_metrics: Mapping[str, Metric] | None = None,
    ) -> TaskOutput:
        """The task's output from its item results: the metrics are `summarize(records)`, plus
        `extra_metrics` that no record carries."""
        return TaskOutput(
            metrics={**self.summarize(results.records, params), **(extra_metrics or {})},
            n_items=results.n_items,
            records=results.records,
            issues=results.issues,
            compute_seconds=compute_seconds,
        )

    def all_skipped(self, params: P, items: Sequence[str], reason: str) -> TaskOutput:
        """The output of a task the model cannot attempt at all (e.g. it predicts no stress)."""
        issues = [ItemIssue(item=item, kind="skipped", reason=reason) for item in items]
        return self.output(params, ItemResults(issues=issues, n_items=len(items)))


class FramesTask(Task[P]):
    """A task on its job's dataset read as labelled frames."""

    needs = TaskInput.FRAMES

    def execute(self, model: LoadedModel, data: TaskData, params: P, context: TaskContext) -> TaskOutput:
        return self.run(model, data.frames, params, context)

    @abstractmethod
    def run(self, model: LoadedModel, frames: list[Frame], params: P, context: TaskContext) -> TaskOutput: ...


class DirectoryTask(Task[P]):
    """A property task on data in its own file layout (a `directory` dataset, e.g. LAMBench's):
    the harness verifies the tree's digest and hands the task its root."""

    needs = TaskInput.DIRECTORY

    def execute(self, model: LoadedModel, data: TaskData, params: P, context: TaskContext) -> TaskOutput:
        if data.root is None:
            raise LambenchError(f"task {self.name}: reads a data directory, and names no dataset")
        return self.run(model, data.root, params, context)

    @abstractmethod
    def run(self, model: LoadedModel, root: Path, params: P, context: TaskContext) -> TaskOutput: ...


class StandaloneTask(Task[P]):
    """A task that reads no dataset of its job: it builds its own structures, or reads the shipped
    sets its params name through `context.manifest`."""

    needs = TaskInput.NONE

    def execute(self, model: LoadedModel, data: TaskData, params: P, context: TaskContext) -> TaskOutput:
        return self.run(model, params, context)

    @abstractmethod
    def run(self, model: LoadedModel, params: P, context: TaskContext) -> TaskOutput: ...


_TASKS: dict[str, type[Task[Any]]] = {}
T = TypeVar("T", bound=type[Task[Any]])


def register_task(task: T) -> T:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def task_class(name: str) -> type[Task[Any]]:
    from lambench_core.tasks.builtin import import_task_modules

    import_task_modules()

    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(sorted(_TASKS))})") from None
