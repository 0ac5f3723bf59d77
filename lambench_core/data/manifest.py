"""Dataset manifest: what each test set is, where its files are and the checksums they must have."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambench_core.categories import Category
from lambench_core.domains import Domain
from lambench_core.errors import InputError, UnknownNameError, first_validation_problem, read_yaml
from lambench_core.settings import DATA_DIR_ENV, settings  # noqa: F401 (DATA_DIR_ENV re-exported)

BUILTIN_MANIFEST = Path(__file__).parent / "datasets.yaml"

Label = Literal["energy", "forces", "virial"]
# A property task's data in its own layout (LAMBench's phonopy yaml + csv, trajectories, json...):
# the task reads the files; the manifest pins the tree's digest.
DIRECTORY_FORMAT = "directory"


# A dataset's `use`: the category whose tasks read it as reference data, so never an applicability
# category (efficiency and stability measure the model alone).
DATASET_USES = tuple(c for c in Category if not c.applicability)


def dataset_use(value: object) -> object:
    """Checks a `use` (before it becomes a Category), so its error names only the allowed values."""
    if value not in DATASET_USES:
        *others, last = (repr(c.value) for c in DATASET_USES)
        raise ValueError(f"Input should be {', '.join(others)} or {last}")
    return value


class DatasetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Relative to the manifest's directory; a file or a directory.")
    sha256: str = Field(description="File digest, or for a directory the tree digest.")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("must be 64 lowercase hexadecimal characters")
        return value


class Dispersion(BaseModel):
    """A dispersion correction that the reference contains and the model does not."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["d3"] = "d3"
    damping: Literal["d3bj", "d3zero", "d3bjm", "d3zerom", "d3op"] = "d3bj"
    functional: str = "pbe"


class NormalizationErrors(BaseModel):
    """The dummy model's errors on this set: the value 1 of each normalized error."""

    model_config = ConfigDict(extra="forbid")

    energy_rmse_per_atom: float = Field(gt=0, description="eV/atom")
    force_rmse: float = Field(gt=0, description="eV/Å")
    virial_rmse_per_atom: float | None = Field(default=None, gt=0, description="eV/atom")


class DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    domain: Domain
    group: str | None = Field(
        default=None,
        description="The benchmark set this label set belongs to (its leaderboard column); "
        "label sets of one group hold the same structures at different levels of theory.",
    )
    level: str = Field(default="pbe", description="Reference level key, matched to a card's `levels`")
    use: Annotated[Category, BeforeValidator(dataset_use)] = Field(
        default=Category.FORCE_FIELD,
        description="force_field: scored frame by frame as a set of M_FF; property / adaptability: read by such a task",
    )
    format: str = Field(
        description="extxyz, deepmd/npy or deepmd/npy/mixed; `directory` for a property task's own file layout"
    )
    files: list[DatasetFile] = Field(default_factory=list, description="Empty until an external set is fetched")
    labels: list[Label] = Field(default_factory=list, description="Required for force-field sets")
    n_frames: int | None = Field(default=None, gt=0, description="Checked on load where known")
    level_of_theory: dict[str, str | int | float | bool | None]
    source: str
    citation: str | None = None
    licence: str
    download_url: str | None = None
    archive_sha256: str | None = Field(default=None, description="Published checksum of the download")
    dispersion: Dispersion | None = None
    dummy_errors: NormalizationErrors | None = None
    certificate: DatasetFile | None = Field(
        default=None,
        description="Its convergence certificate (`lambench data certify`), part of the set's identity",
    )
    description: str = ""

    @model_validator(mode="after")
    def _files_or_download(self) -> DatasetEntry:
        if not self.files and not self.download_url:
            raise ValueError("a dataset needs files, or a download_url to fetch them from")
        if self.use == Category.FORCE_FIELD and not self.labels:
            raise ValueError("a force-field set names its labels (energy, forces, virial)")
        if self.format == DIRECTORY_FORMAT and self.use == Category.FORCE_FIELD:
            raise ValueError(f"format {DIRECTORY_FORMAT!r} is read by a task: set use: property or adaptability")
        return self

    @property
    def set_name(self) -> str:
        return self.group or self.name


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include: list[str] = Field(
        default_factory=list,
        description="Globs (relative to this file) of single-entry YAML files, e.g. built sets' entries",
    )
    datasets: list[DatasetEntry] = Field(default_factory=list)


class ManifestDocument:
    """Validated dataset entries, each with the manifest file it came from (its paths' root).

    Several manifests merge into one document (the built-in one, then the registry of fetched
    sets); a later entry of the same name replaces an earlier one.
    """

    def __init__(self, manifest: DatasetManifest, path: Path) -> None:
        self.path = path
        self._by_name: dict[str, DatasetEntry] = {}
        self._sources: dict[str, Path] = {}
        self.add(manifest, path)

    def add(self, manifest: DatasetManifest, path: Path) -> None:
        for entry in manifest.datasets:
            self._by_name[entry.name] = entry
            self._sources[entry.name] = path

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def entries(self) -> list[DatasetEntry]:
        return list(self._by_name.values())

    def source(self, entry: DatasetEntry) -> Path:
        """The manifest file that defines `entry` (named in every error about it)."""
        return self._sources[entry.name]

    def get(self, name: str) -> DatasetEntry:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown dataset {name!r} in {self.path} (known: {', '.join(self.names())})"
            ) from None

    def file_path(self, entry: DatasetEntry, dataset_file: DatasetFile) -> Path:
        return self._sources[entry.name].parent / dataset_file.path

    def is_present(self, entry: DatasetEntry) -> bool:
        return bool(entry.files) and all(self.file_path(entry, f).exists() for f in entry.files)

    def is_declared(self, entry: DatasetEntry) -> bool:
        """The entry lists its files: they are meant to be on this machine (shipped, built or
        fetched), so a missing one is an error to name, unlike a set that was never fetched."""
        return bool(entry.files)

    def absence(self, entry: DatasetEntry) -> InputError | None:
        """Why `entry` cannot be read on this machine, as the error naming the manifest, the entry's
        field and the file (None when every file is there). Not raised: callers decide when."""
        source = self.source(entry)
        if not entry.files:
            fetch = f"run `lambench data fetch {entry.name}`"
            return InputError(source, f"datasets[{entry.name}].files", f"not on this machine; {fetch}")
        for index, dataset_file in enumerate(entry.files):
            path = self.file_path(entry, dataset_file)
            if not path.exists():
                where = f"; fetch it from {entry.download_url}" if entry.download_url else ""
                return InputError(source, f"datasets[{entry.name}].files.{index}.path", f"{path} does not exist{where}")
        return None


def read_entry_file(path: Path) -> DatasetEntry:
    """One `<level>.entry.yaml` (as a manifest includes it)."""
    raw = read_yaml(path, "dataset entry")
    try:
        return DatasetEntry.model_validate(raw)
    except ValidationError as exc:
        field, message = first_validation_problem(exc)
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        raise InputError(path, f"datasets[{name}].{field}", message) from None


def load_manifest(path: Path = BUILTIN_MANIFEST) -> ManifestDocument:
    raw = read_yaml(path, "dataset manifest")
    try:
        manifest = DatasetManifest.model_validate(raw)
    except ValidationError as exc:
        field, message = first_validation_problem(exc)
        raise InputError(path, _named_field(raw, field), message) from None
    document = ManifestDocument(manifest, path)
    seen: dict[str, Path] = {}
    for index, entry in enumerate(manifest.datasets):
        if entry.name in seen:
            raise InputError(path, f"datasets.{index}.name", f"duplicate dataset {entry.name!r}")
        seen[entry.name] = path
    for pattern in manifest.include:
        for included in sorted(path.parent.glob(pattern)):
            entry = read_entry_file(included)
            if entry.name in seen:
                raise InputError(included, f"datasets[{entry.name}].name", f"already defined in {seen[entry.name]}")
            seen[entry.name] = included
            document.add(DatasetManifest(datasets=[entry]), included)
    return document


def _named_field(raw: object, field: str) -> str:
    """Replace `datasets.3.` by `datasets[name].` so the user can find the entry."""
    parts = field.split(".")
    if len(parts) >= 2 and parts[0] == "datasets" and parts[1].isdigit() and isinstance(raw, dict):
        entries = raw.get("datasets") or []
        index = int(parts[1])
        if index < len(entries) and isinstance(entries[index], dict) and "name" in entries[index]:
            parts[1] = f"[{entries[index]['name']}]"
            return parts[0] + parts[1] + ("." + ".".join(parts[2:]) if parts[2:] else "")
    return field


REGISTRY_FILE = "registry.yaml"


def data_dir() -> Path:
    """Where fetched datasets and their registry live."""
    return settings().data_folder


def load_datasets(manifest: Path = BUILTIN_MANIFEST, registry: Path | None = None) -> ManifestDocument:
    """The manifest merged with the registry of fetched sets (whose entries carry their files)."""
    document = load_manifest(manifest)
    registry = registry or data_dir() / REGISTRY_FILE
    if registry.is_file():
        fetched = load_manifest(registry)
        for entry in fetched.entries():
            document.add(DatasetManifest(datasets=[entry]), registry)
    return document
