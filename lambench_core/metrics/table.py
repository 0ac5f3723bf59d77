"""The table every score is computed from: raw metrics per model and benchmark, with the constants
that normalize them and, optionally, bootstrap replicates of each value.

It is deliberately flat (one row per model × benchmark × metric) so that numbers produced by any
harness — this one, a paper's tables, another leaderboard — can be written as JSON or Parquet and
scored the same way (`lambench aggregate TABLE`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambench_core.categories import Category
from lambench_core.domains import Domain
from lambench_core.errors import LambenchError

RowStatus = Literal["succeeded", "partial", "failed", "unsupported", "missing"]


class RawMetric(BaseModel):
    """One metric of one model on one benchmark set (force field) or task (everything else)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    kind: Category
    benchmark: str = Field(min_length=1, description="Benchmark set (force field) or task name")
    dataset: str | None = Field(default=None, description="Force field: the label set scored (its own normalization)")
    domain: Domain | None = None
    metric: str = Field(min_length=1)
    value: float | None = None
    unit: str = ""
    dummy: float | None = Field(
        default=None, gt=0, description="The dummy model's value of this metric, which defines a normalized error of 1"
    )
    dummy_replicates: list[float | None] | None = Field(
        default=None, description="The normalizing constant on each resample (ratio bootstrap); else it stays fixed"
    )
    status: RowStatus = "succeeded"
    success_rate: float = Field(default=1.0, ge=0, le=1, description="Scored ÷ attempted items")
    coverage: float = Field(default=1.0, ge=0, le=1, description="Attempted ÷ all items")
    replicates: list[float | None] | None = Field(
        default=None,
        description="Bootstrap replicates of value; replicate b of every row of a benchmark resampled the same items",
    )

    @property
    def usable(self) -> bool:
        return self.status not in ("failed", "unsupported", "missing") and self.value is not None


class MetricsTable(BaseModel):
    """Raw metrics of a set of models; `models` fixes who is shown, so a model with no row is a gap,
    not an omission."""

    model_config = ConfigDict(extra="forbid")

    models: list[str]
    rows: list[RawMetric]

    @property
    def n_replicates(self) -> int:
        counts = {len(r.replicates) for r in self.rows if r.replicates is not None}
        return min(counts) if counts else 0

    def without_replicates(self) -> MetricsTable:
        stripped = [r.model_copy(update={"replicates": None, "dummy_replicates": None}) for r in self.rows]
        return MetricsTable(models=self.models, rows=stripped)


def _from_rows(rows: Sequence[dict], models: Sequence[str] | None, source: str) -> MetricsTable:
    parsed = []
    for index, row in enumerate(rows):
        try:
            parsed.append(RawMetric.model_validate(row))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "row"
            raise LambenchError(f"{source}: row {index}, field {field!r}: {error['msg']}") from None
    names = list(models) if models else list(dict.fromkeys(r.model for r in parsed))
    return MetricsTable(models=names, rows=parsed)


def read_table(path: Path) -> MetricsTable:
    """A metrics table from JSON (a list of rows, or {"models": [...], "rows"|"metrics": [...]}) or Parquet."""
    if not path.is_file():
        raise LambenchError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(path).to_pylist()
            models = read_parquet_models(path)
        except Exception as exc:  # pyarrow's errors name no file
            raise LambenchError(f"{path}: not a readable Parquet file ({exc})") from None
        return _from_rows(records, models, str(path))
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LambenchError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(document, list):
        return _from_rows(document, None, str(path))
    if isinstance(document, dict):
        rows = document.get("rows", document.get("metrics"))
        if isinstance(rows, list):
            models = document.get("models")
            return _from_rows(rows, models if isinstance(models, list) else None, str(path))
    raise LambenchError(f"{path}: expected a list of metric rows or an object with a 'rows' list")


_PARQUET_FIELDS = tuple(RawMetric.model_fields)
REPLICATE_FIELDS = ("replicates", "dummy_replicates")


def table_to_parquet(table: MetricsTable) -> bytes:
    """The table as Parquet bytes (replicates as a float32 list column: the intervals need no more)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [getattr(r, name) for r in table.rows] for name in _PARQUET_FIELDS}
    columns["kind"] = [k.value for k in columns["kind"]]
    columns["domain"] = [d.value if d is not None else None for d in columns["domain"]]
    schema = pa.schema(
        [(name, pa.list_(pa.float32()) if name in REPLICATE_FIELDS else _arrow_type(name)) for name in _PARQUET_FIELDS],
        metadata={"models": json.dumps(table.models)},
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns, schema=schema), buffer, compression="zstd")
    return buffer.getvalue()


def _arrow_type(name: str):  # noqa: ANN202 (pyarrow types are untyped)
    import pyarrow as pa

    return pa.float64() if name in ("value", "dummy", "success_rate", "coverage") else pa.string()


def read_parquet_models(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(b"models")
    return json.loads(raw) if raw else None
