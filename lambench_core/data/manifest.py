"""Dataset manifest: what each test set is, where its files are and the checksums they must have."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lambench_core.domains import Domain
from lambench_core.errors import InputError
from lambench_core.models.card import first_validation_problem

BUILTIN_MANIFEST = Path(__file__).parent / "datasets.yaml"

Label = Literal["energy", "forces", "virial"]


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
    format: str = Field(description="extxyz, deepmd/npy or deepmd/npy/mixed")
    files: list[DatasetFile] = Field(min_length=1)
    labels: list[Label] = Field(min_length=1)
    n_frames: int = Field(gt=0)
    level_of_theory: dict[str, str | int | float | bool | None]
    source: str
    citation: str | None = None
    licence: str
    download_url: str | None = None
    dispersion: Dispersion | None = None
    dummy_errors: NormalizationErrors | None = None
    description: str = ""


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[DatasetEntry]


class ManifestDocument:
    """A validated manifest together with the directory its relative paths start from."""

    def __init__(self, manifest: DatasetManifest, path: Path) -> None:
        self.manifest = manifest
        self.path = path
        self.root = path.parent
        self._by_name = {entry.name: entry for entry in manifest.datasets}

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def entries(self) -> list[DatasetEntry]:
        return list(self.manifest.datasets)

    def get(self, name: str) -> DatasetEntry:
        from lambench_core.models.catalog import UnknownNameError

        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown dataset {name!r} in {self.path} (known: {', '.join(self.names())})"
            ) from None

    def file_path(self, dataset_file: DatasetFile) -> Path:
        return self.root / dataset_file.path

    def is_present(self, entry: DatasetEntry) -> bool:
        return all(self.file_path(f).exists() for f in entry.files)


def load_manifest(path: Path = BUILTIN_MANIFEST) -> ManifestDocument:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(path, None, "dataset manifest not found") from None
    except yaml.YAMLError as exc:
        raise InputError(path, None, f"not valid YAML ({exc.__class__.__name__})") from None
    try:
        manifest = DatasetManifest.model_validate(raw)
    except ValidationError as exc:
        field, message = first_validation_problem(exc)
        raise InputError(path, _named_field(raw, field), message) from None
    seen: set[str] = set()
    for index, entry in enumerate(manifest.datasets):
        if entry.name in seen:
            raise InputError(path, f"datasets.{index}.name", f"duplicate dataset {entry.name!r}")
        seen.add(entry.name)
    return ManifestDocument(manifest, path)


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
