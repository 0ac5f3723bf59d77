"""The task instances a campaign can run: a task bound to a dataset and its params.

The default suite is data: `suite.yaml` beside this module lists its entries (task, domain, datasets,
params per profile). `load_suite` validates a suite file; `TaskSuite` holds the instances a suite
gives on this machine for one profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lambench_core.categories import Category
from lambench_core.data.manifest import DatasetEntry, ManifestDocument
from lambench_core.domains import Domain
from lambench_core.errors import InputError, UnknownNameError, first_validation_problem, read_yaml
from lambench_core.models.card import DEFAULT_LEVEL
from lambench_core.tasks.base import Task, task_class

BUILTIN_SUITE = Path(__file__).parent / "suite.yaml"

Profile = Literal["quick", "full"]
PROFILES: tuple[Profile, ...] = get_args(Profile)


class AbsentSet(BaseModel):
    """A label set of an instance's set that is not on this machine, and the error that says so."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    source: str = Field(description="The manifest file that defines it")
    field: str = Field(description="Its field the error names (its files, or the missing file's path)")
    reason: str

    def error(self, set_name: str | None, level: str, wanted: str) -> InputError:
        """The error for a model at level `wanted`, which would be scored on this `level` set."""
        return InputError(
            self.source,
            self.field,
            f"the {level} label set of {set_name or self.dataset} is missing: {self.reason} (a model at level "
            f"{wanted} is scored on it, never on another level of theory instead)",
        )


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
    absent: dict[str, AbsentSet] = Field(
        default_factory=dict,
        description="Reference level → a label set of this set that the manifest defines and this machine lacks",
    )
    params: dict[str, Any]

    def dataset_for(self, level: str) -> str | None:
        """The label set a model trained at `level` is scored on: its own level, else PBE (when the
        set has no label set at `level`). A label set the set has but this machine lacks is an error
        naming it, never a silent fallback to another level of theory."""
        if not self.datasets and not self.absent:
            return None
        for wanted in dict.fromkeys((level, DEFAULT_LEVEL)):
            if wanted in self.datasets:
                return self.datasets[wanted]
            if wanted in self.absent:
                raise self.absent[wanted].error(self.set_name, wanted, level)
        if self.datasets:
            return sorted(self.datasets.values())[0]
        first = sorted(self.absent)[0]
        raise self.absent[first].error(self.set_name, first, level)


class SuiteDatasets(BaseModel):
    """Where an entry's reference data comes from: nothing (the default), one set, or each set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: str | None = Field(
        default=None,
        description="The set of the task's category it reads; the entry joins when the set is on this machine",
    )
    each_set: bool = Field(
        default=False, description="One instance per set of the task's category present, named <task>/<set>"
    )
    params_from_set: tuple[str, ...] = Field(default=(), description="Params copied from the set's manifest entry")

    @model_validator(mode="after")
    def _one_way(self) -> SuiteDatasets:
        if self.set is not None and self.each_set:
            raise ValueError("set and each_set exclude each other")
        if self.params_from_set and self.set is None and not self.each_set:
            raise ValueError("params_from_set needs a set or each_set")
        unknown = sorted(set(self.params_from_set) - set(DatasetEntry.model_fields))
        if unknown:
            raise ValueError(f"params_from_set: {', '.join(unknown)} is not a field of a dataset entry")
        return self

    def of(self, document: ManifestDocument, use: Category) -> dict[str, list[DatasetEntry]]:
        """Set name → its label sets, for each set on this machine: a set one of whose label sets
        lists its files (shipped, built or fetched). A set none of whose label sets was ever fetched
        is not here; one whose listed files are missing is, and its jobs name the missing file."""
        by_set: dict[str, list[DatasetEntry]] = {}
        for entry in document.entries():
            if entry.use == use and (self.each_set or entry.set_name == self.set):
                by_set.setdefault(entry.set_name, []).append(entry)
        return {name: entries for name, entries in by_set.items() if any(map(document.is_declared, entries))}


class ProfileParams(BaseModel):
    """Overrides of a task's default params, per profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quick: dict[str, Any] = Field(default_factory=dict)
    full: dict[str, Any] = Field(default_factory=dict)


class SuiteEntry(BaseModel):
    """One entry of a suite file: a task, where its data comes from, and its params per profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Validated in this order: the checks of name, domain and params read the fields above them.
    task: str
    datasets: SuiteDatasets = Field(default_factory=SuiteDatasets)
    name: str | None = Field(default=None, description="The instance name (default: the task's name)")
    domain: Domain | None = Field(
        default=None, validate_default=True, description="Required unless each_set (then: each set's domain)"
    )
    profiles: tuple[Profile, ...] = Field(default=PROFILES, min_length=1)
    params: ProfileParams = Field(default_factory=ProfileParams)

    @field_validator("name", "domain")
    @classmethod
    def _named_by_set(cls, value: object, info: ValidationInfo) -> object:
        if "datasets" not in info.data:  # itself invalid, and reported
            return value
        each_set = info.data["datasets"].each_set
        if each_set and value is not None:
            raise ValueError(f"an each_set entry takes its {info.field_name} from each set: leave it out")
        if info.field_name == "domain" and value is None and not each_set:
            raise ValueError(f"required: one of {', '.join(d.value for d in Domain)}")
        return value

    @field_validator("params")
    @classmethod
    def _params_of_its_profiles(cls, value: ProfileParams, info: ValidationInfo) -> ProfileParams:
        profiles = info.data.get("profiles", PROFILES)  # invalid profiles are reported on their own
        idle = [p for p in PROFILES if p not in profiles and getattr(value, p)]
        if idle:
            raise ValueError(f"params for profile {idle[0]!r}, which is not in this entry's profiles")
        return value

    @property
    def label(self) -> str:
        """How errors name this entry."""
        return self.name or self.task

    def instances(self, document: ManifestDocument, profile: Profile = "quick") -> list[TaskInstance]:
        """This entry's instances for `profile` on this machine (none while its set is not here)."""
        if profile not in self.profiles:
            return []
        task = task_class(self.task)
        overrides = getattr(self.params, profile)
        if not self.datasets.each_set and self.datasets.set is None:
            # The domain is required (validated above) unless each_set.
            return [self._instance(task, self.label, cast(Domain, self.domain), None, [], overrides)]
        by_set = self.datasets.of(document, task.category)
        return [
            self._instance(
                task,
                f"{self.task}/{set_name}" if self.datasets.each_set else self.label,
                self.domain or entries[0].domain,
                set_name,
                entries,
                overrides,
                document,
            )
            for set_name, entries in by_set.items()
        ]

    def _instance(
        self,
        task: type[Task],
        name: str,
        domain: Domain,
        set_name: str | None,
        entries: list[DatasetEntry],
        overrides: dict[str, Any],
        document: ManifestDocument | None = None,
    ) -> TaskInstance:
        absences = {entry.name: document.absence(entry) if document is not None else None for entry in entries}
        present = [entry for entry in entries if absences[entry.name] is None] or entries
        from_set = {field: getattr(present[0], field) for field in self.datasets.params_from_set}
        absent = {
            entry.level: AbsentSet(
                dataset=entry.name, source=error.source, field=error.field or "", reason=error.message
            )
            for entry in entries
            if (error := absences[entry.name]) is not None
        }
        return TaskInstance(
            name=name,
            task=task.name,
            category=task.category,
            domain=domain,
            set_name=set_name,
            datasets={entry.level: entry.name for entry in entries if absences[entry.name] is None},
            absent=absent,
            params=task.Params.model_validate(overrides | from_set).model_dump(mode="json"),
        )


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[SuiteEntry] = Field(min_length=1)


class Suite:
    """A validated suite file: its entries and the file they came from (named in every error)."""

    def __init__(self, entries: list[SuiteEntry], path: Path | str = "<suite>") -> None:
        self.entries = entries
        self.path = Path(path)

    def instances(self, document: ManifestDocument, profile: Profile = "quick") -> list[TaskInstance]:
        instances: dict[str, TaskInstance] = {}
        for entry in self.entries:
            for instance in entry.instances(document, profile):
                if instance.name in instances:
                    raise InputError(self.path, f"tasks[{entry.label}]", f"duplicate task instance {instance.name!r}")
                instances[instance.name] = instance
        return list(instances.values())


def load_suite(path: Path = BUILTIN_SUITE) -> Suite:
    """Read and validate a suite file; a problem stops here with one line naming the file and field."""
    path = Path(path)
    raw = read_yaml(path, "suite file")
    try:
        document = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        field, message = first_validation_problem(exc)
        raise InputError(path, _named_field(raw, field), message) from None
    names: dict[tuple[str, str], str] = {}
    for entry in document.tasks:
        _check_task(path, entry)
        if entry.datasets.each_set:
            continue
        for profile in entry.profiles:
            if (profile, entry.label) in names:
                raise InputError(path, f"tasks[{entry.label}].name", f"duplicate task instance {entry.label!r}")
            names[profile, entry.label] = entry.task
    return Suite(document.tasks, path)


def _check_task(path: Path, entry: SuiteEntry) -> None:
    """What only the task module knows: its name, whether it reads data, and its params."""
    where = f"tasks[{entry.label}]"
    try:
        task = task_class(entry.task)
    except KeyError as exc:
        raise InputError(path, f"{where}.task", str(exc.args[0])) from None
    reads_data = entry.datasets.each_set or entry.datasets.set is not None
    if task.category.applicability and reads_data:
        message = f"{task.category.value} tasks measure the model alone: they read no reference set"
        raise InputError(path, f"{where}.datasets", message)
    for profile in entry.profiles:
        try:
            task.Params.model_validate(getattr(entry.params, profile))
        except ValidationError as exc:
            field, message = first_validation_problem(exc)
            raise InputError(path, f"{where}.params.{profile}.{field}", message) from None


def _named_field(raw: object, field: str) -> str:
    """Replace `tasks.3.` by `tasks[name].` so the user can find the entry."""
    parts = field.split(".")
    if len(parts) >= 2 and parts[0] == "tasks" and parts[1].isdigit() and isinstance(raw, dict):
        entries = raw.get("tasks") or []
        index = int(parts[1])
        if index < len(entries) and isinstance(entries[index], dict):
            label = entries[index].get("name") or entries[index].get("task")
            if isinstance(label, str):
                return ".".join([f"tasks[{label}]", *parts[2:]])
    return field


class TaskSuite:
    def __init__(self, instances: list[TaskInstance]) -> None:
        self._instances = {instance.name: instance for instance in instances}

    @classmethod
    def default(cls, document: ManifestDocument, profile: Profile = "quick") -> TaskSuite:
        """The built-in suite (`suite.yaml`) on this machine."""
        return cls.from_file(BUILTIN_SUITE, document, profile)

    @classmethod
    def from_file(cls, path: Path, document: ManifestDocument, profile: Profile = "quick") -> TaskSuite:
        """The suite of another suite file (same format as `suite.yaml`) on this machine."""
        return cls(load_suite(path).instances(document, profile))

    def names(self) -> list[str]:
        return list(self._instances)

    def get(self, name: str) -> TaskInstance:
        try:
            return self._instances[name]
        except KeyError:
            raise UnknownNameError(f"unknown task {name!r} (known: {', '.join(self.names())})") from None

    def select(self, names: list[str]) -> list[TaskInstance]:
        return [self.get(name) for name in names]
