"""The table every score is computed from: raw metrics per model and benchmark, with the constants
that normalize them and, optionally, bootstrap replicates of each value.

It is deliberately flat (one row per model × benchmark × metric) so that numbers produced by any
harness — this one, a paper's tables, another leaderboard — can be written as JSON or Parquet and
scored the same way (`lambench aggregate TABLE`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError

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
    baselines: list[str] = Field(
        default_factory=list,
        description="Models shown as reference rows (the normalizing dummy, classical potentials): never ranked",
    )
    _notes: list[str] = PrivateAttr(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What reading the table left out (e.g. replicates beyond the memory bound); not serialized."""
        return self._notes

    @property
    def n_replicates(self) -> int:
        counts = {len(r.replicates) for r in self.rows if r.replicates is not None}
        return min(counts) if counts else 0

    def without_replicates(self) -> MetricsTable:
        """The same rows without replicates; rows that have none are shared, not copied."""
        stripped = [
            r
            if r.replicates is None and r.dummy_replicates is None
            else r.model_copy(update={"replicates": None, "dummy_replicates": None})
            for r in self.rows
        ]
        return MetricsTable(models=self.models, rows=stripped, baselines=self.baselines)


def _from_rows(rows: Iterable[dict], models: Sequence[str] | None, source: str) -> MetricsTable:
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


# Bootstrap replicates held in memory when a table is read: rows × replicates kept at most this many
# values (each a Python float in a list: ~32 bytes, so ~0.3 GB; scoring them takes ~3 µs a value on one
# core, so ~30-40 s). A larger Parquet table keeps the first `REPLICATE_BUDGET // rows` replicates of
# every row (replicate b of every row is the same resample, so the first k are a smaller bootstrap),
# or none below MIN_REPLICATES (too few for the tails of a 95% interval). A campaign's own table
# (10k rows × 1000 replicates) stays whole.
REPLICATE_BUDGET = 10_000_000
MIN_REPLICATES = 100


class _TableDocument(BaseModel):
    """A JSON table object, validated straight from the bytes (the fast path of `read_table`)."""

    model_config = ConfigDict(extra="ignore")

    models: Any = None
    baselines: Any = None
    rows: list[RawMetric] | None = None
    metrics: list[RawMetric] | None = None


_ROW_LIST = TypeAdapter(list[RawMetric])


def _json_fast(data: bytes) -> tuple[list[RawMetric], Any, Any] | None:
    """The rows and models of a well-formed JSON table, validated in one pass from the bytes (no
    intermediate Python objects; repeated strings shared). None when anything is off: the caller then
    takes the slow path, which names the file, the row and the field."""
    first = data.lstrip()[:1]
    try:
        if first == b"[":
            return _ROW_LIST.validate_json(data), None, None
        if first == b"{":
            document = _TableDocument.model_validate_json(data)
            if "rows" in document.model_fields_set:
                rows = document.rows
            elif "metrics" in document.model_fields_set:
                rows = document.metrics
            else:
                return None
            return (rows, document.models, document.baselines) if rows is not None else None
    except ValidationError:
        return None
    return None


def _parquet_rows(path: Path, notes: list[str]) -> Iterator[dict]:
    """The rows of a Parquet table, batch by batch, as `pq.read_table(path).to_pylist()` would give
    them: repeated strings shared, replicates within REPLICATE_BUDGET (what was left out is said in
    `notes`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        n_rows = parquet.metadata.num_rows
        names = parquet.schema_arrow.names
    except Exception as exc:  # pyarrow's errors name no file
        raise LambenchError(f"{path}: not a readable Parquet file ({exc})") from None
    keep = REPLICATE_BUDGET // n_rows if n_rows else 0
    present = [name for name in REPLICATE_FIELDS if name in names]
    if present and keep < MIN_REPLICATES:
        names = [name for name in names if name not in REPLICATE_FIELDS]
        notes.append(
            f"{path.name}: no intervals: {n_rows} rows are too many to hold their bootstrap replicates "
            f"(at most {REPLICATE_BUDGET:,} values and {MIN_REPLICATES} replicates a row); point values only"
        )
    longest = 0
    try:
        for batch in parquet.iter_batches(batch_size=65536, columns=names):
            values: dict[str, list] = {}
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    encoded = column.dictionary_encode()
                    uniques = encoded.dictionary.to_pylist()
                    values[name] = [None if i is None else uniques[i] for i in encoded.indices.to_pylist()]
                elif name in REPLICATE_FIELDS and pa.types.is_list(column.type):
                    longest = max(longest, pc.max(pc.list_value_length(column)).as_py() or 0)
                    values[name] = pc.list_slice(column, 0, keep).to_pylist() if keep < longest else column.to_pylist()
                else:
                    values[name] = column.to_pylist()
            columns = list(values.items())
            for i in range(batch.num_rows):
                yield {name: column[i] for name, column in columns}
    except LambenchError:
        raise
    except Exception as exc:
        raise LambenchError(f"{path}: not a readable Parquet file ({exc})") from None
    if longest > keep >= MIN_REPLICATES:
        notes.append(
            f"{path.name}: intervals from the first {keep} of {longest} bootstrap replicates "
            f"({n_rows} rows; at most {REPLICATE_BUDGET:,} replicate values are held)"
        )


def read_table(path: Path) -> MetricsTable:
    """A metrics table from JSON (a list of rows, or {"models": [...], "rows"|"metrics": [...]}) or Parquet.

    Linear in the table and bounded in memory: Parquet is read batch by batch with its replicates
    capped (REPLICATE_BUDGET; what was left out is in `table.notes`), JSON is validated straight from
    the bytes (a table that fails is read again the slow way, for an error naming its row and field)."""
    if not path.is_file():
        raise LambenchError(f"{path}: no such file")
    if path.suffix == ".parquet":
        notes: list[str] = []
        try:
            metadata = read_parquet_metadata(path)
        except Exception as exc:  # pyarrow's errors name no file
            raise LambenchError(f"{path}: not a readable Parquet file ({exc})") from None
        table = _from_rows(_parquet_rows(path, notes), metadata.get("models"), str(path))
        table.notes.extend(notes)
        table.baselines = _names(metadata.get("baselines"))
        return table
    data = path.read_bytes()
    fast = _json_fast(data)
    if fast is not None:
        rows, models, baselines = fast
        models = models if isinstance(models, list) else None
        names = list(models) if models else list(dict.fromkeys(r.model for r in rows))
        return MetricsTable(models=names, rows=rows, baselines=_names(baselines))
    try:
        document = json.loads(data.decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LambenchError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(document, list):
        return _from_rows(document, None, str(path))
    if isinstance(document, dict):
        listed = document.get("rows", document.get("metrics"))
        if isinstance(listed, list):
            models = document.get("models")
            table = _from_rows(listed, models if isinstance(models, list) else None, str(path))
            table.baselines = _names(document.get("baselines"))
            return table
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
        metadata={"models": json.dumps(table.models), "baselines": json.dumps(table.baselines)},
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns, schema=schema), buffer, compression="zstd")
    return buffer.getvalue()


def _arrow_type(name: str):  # noqa: ANN202 (pyarrow types are untyped)
    import pyarrow as pa

    return pa.float64() if name in ("value", "dummy", "success_rate", "coverage") else pa.string()


def read_parquet_metadata(path: Path) -> dict[str, Any]:
    """The table's declared lists (models, baselines) from the Parquet schema, read once."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return {key.decode(): json.loads(raw) for key, raw in metadata.items() if key in (b"models", b"baselines") and raw}


def _names(value: Any) -> list[str]:
    """A list of model names as a table declares it; anything else (absent, malformed) is none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
