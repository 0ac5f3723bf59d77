"""Readers shared by the tasks on LAMBench's file layouts: one clear InputError naming the file and
field for an unusable file, ItemFailure for one bad value."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict

from lambench_core.errors import InputError
from lambench_core.results.record import Metric
from lambench_core.tasks.evaluation import ItemFailure


class NoParams(BaseModel):
    """The params of a task that has none (unknown ones are still an error)."""

    model_config = ConfigDict(extra="forbid")


def require_files(root: Path, names: Sequence[str]) -> list[Path]:
    """The paths of `names` under `root`; InputError naming every missing one."""
    if not root.is_dir():
        raise InputError(root, None, "data directory not found")
    paths = [root / name for name in names]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise InputError(root, None, f"missing file(s): {', '.join(missing)}")
    return paths


def read_trajectory(path: Path) -> list[Atoms]:
    from ase.io import read  # ase.io pulls in scipy: imported where it is used, not at every step's start

    try:
        frames = read(path, index=":")
    except Exception as exc:
        raise InputError(path, None, f"unreadable trajectory ({type(exc).__name__}: {exc})") from None
    return list(frames) if isinstance(frames, list) else [frames]


def read_csv_rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a csv with a header; InputError naming the columns it lacks."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, None, f"unreadable csv ({type(exc).__name__}: {exc})") from None
    missing = [column for column in columns if column not in header]
    if missing:
        raise InputError(path, ", ".join(missing), f"missing column(s) (header: {', '.join(header)})")
    return rows


def as_float(value: Any, what: str) -> float:
    """A finite float, or ItemFailure naming `what`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ItemFailure(f"{what} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise ItemFailure(f"{what} is not finite: {value!r}")
    return number


def error_metrics(records: list[dict[str, Any]], unit: str, predicted: str = "value") -> dict[str, Metric]:
    """MAE and RMSE of `predicted` against `reference` over the scored records."""
    errors = np.array([r[predicted] - r["reference"] for r in records], dtype=float)
    return {
        "mae": Metric(value=float(np.mean(np.abs(errors))) if errors.size else None, unit=unit),
        "rmse": Metric(value=float(np.sqrt(np.mean(errors**2))) if errors.size else None, unit=unit),
    }
