"""What a stored result must satisfy before anything reads it as the result of its key.

The store is not trusted: a file can be edited, copied over another job's, or written by something
else. `result_problem` checks a parsed result against the key it was read under, against itself
(its fields and its provenance agree), against physical bounds (counts, rates, errors, finite
numbers) and, where this process planned the key, against the planned job. The first problem found
is returned as (field, reason); the store quarantines such an object and the job is computed again.

Values this harness writes can never be non-finite (pydantic writes NaN and infinity as null), so a
non-finite number in a stored result is never ours.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from lambench_core.results.identity import planned_mismatch
from lambench_core.results.record import TaskResult

Problem = tuple[str, str]

# Name parts (split at "_") of quantities that cannot be negative: errors, absolute values, counts,
# times, memory. A metric or record field whose name has one is checked to be ≥ 0.
NON_NEGATIVE_PARTS = frozenset(
    {"mae", "rmse", "mse", "mad", "sse", "sae", "abs", "std", "seconds", "mib", "gib", "n", "count"}
)
# Name parts of fractions: in [0, 1].
FRACTION_PARTS = frozenset({"rate", "fraction"})


def _parts(name: str) -> set[str]:
    return set(name.lower().split("_"))


def _numbers(value: Any, path: str) -> Iterator[tuple[str, float]]:
    """Every number inside a JSON value, with its dotted path."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}.{index}")


def _bounded(field: str, name: str, value: float) -> Problem | None:
    if not math.isfinite(value):
        return field, f"{value} is not a finite number"
    parts = _parts(name)
    if parts & NON_NEGATIVE_PARTS and value < 0:
        return field, f"{value} is negative (an error, count or time cannot be)"
    if parts & FRACTION_PARTS and not 0 <= value <= 1:
        return field, f"{value} is not a fraction in [0, 1]"
    return None


def _counts(result: TaskResult) -> Problem | None:
    if result.n_items < 0:
        return "n_items", f"{result.n_items} is negative"
    if result.n_scored < 0:
        return "n_scored", f"{result.n_scored} is negative"
    if result.n_scored > result.n_items:
        return "n_scored", f"{result.n_scored} items scored of {result.n_items}"
    if len(result.issues) > result.n_items:
        return "issues", f"{len(result.issues)} issues for {result.n_items} items"
    if not math.isfinite(result.success_rate) or not 0 <= result.success_rate <= 1:
        return "success_rate", f"{result.success_rate} is not a fraction in [0, 1]"
    return None


def _flags(name: str) -> tuple[bool, bool]:
    parts = _parts(name)
    return bool(parts & NON_NEGATIVE_PARTS), bool(parts & FRACTION_PARTS)


def _nested_fine(value: Any) -> bool:
    """Every float inside a JSON value is finite (bounds of nested numbers: see _numbers)."""
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is dict:
        return all(_nested_fine(item) for item in value.values() if type(item) is not int)
    if type(value) is list:
        return all(_nested_fine(item) for item in value if type(item) is not int)
    return True


def _records(records: list[dict[str, Any]]) -> Problem | None:
    """The records' numbers: finite, and within the bounds their names imply. One pass, with each
    field's bounds looked up once (a force-field job holds one record per frame)."""
    flags: dict[str, tuple[bool, bool]] = {}
    isfinite = math.isfinite
    for index, record in enumerate(records):
        for name, value in record.items():
            kind = type(value)
            if kind is float:
                if not isfinite(value):
                    return f"records.{index}.{name}", f"{value} is not a finite number"
            elif kind is int:
                pass
            elif kind is dict or kind is list:
                if not _nested_fine(value):  # rare: then find which number, and where
                    for path, number in _numbers(value, f"records.{index}.{name}"):
                        if problem := _bounded(path, name, number):
                            return problem
                continue
            else:
                continue
            bounds = flags.get(name)
            if bounds is None:
                bounds = flags[name] = _flags(name)
            non_negative, fraction = bounds
            if (non_negative and value < 0) or (fraction and not 0 <= value <= 1):
                return _bounded(f"records.{index}.{name}", name, float(value))
    return None


def _values(result: TaskResult) -> Problem | None:
    for name, metric in result.metrics.items():
        if metric.value is not None and (problem := _bounded(f"metrics.{name}.value", name, metric.value)):
            return problem
    if problem := _records(result.records):
        return problem
    provenance = result.provenance
    if provenance is not None:
        for name in ("wall_seconds", "compute_seconds", "load_seconds"):
            if problem := _bounded(f"provenance.{name}", name, getattr(provenance, name)):
                return problem
    return None


def _consistent(result: TaskResult) -> Problem | None:
    """The result's own fields agree with its provenance."""
    provenance = result.provenance
    if provenance is None:
        return None
    card_name = provenance.model_card.get("name")
    if card_name != result.model:
        return "model", f"{result.model!r}, but its provenance names model card {card_name!r}"
    if provenance.task != result.task:
        return "task", f"{result.task!r}, but its provenance names task {provenance.task!r}"
    return None


def result_problem(result: TaskResult, key: str) -> Problem | None:
    """The first reason `result`, read under `key`, is not a trustworthy result of that key."""
    if result.key != key:
        return "key", f"holds key {result.key}, not {key}: another job's result"
    return _consistent(result) or planned_mismatch(result) or _counts(result) or _values(result)
