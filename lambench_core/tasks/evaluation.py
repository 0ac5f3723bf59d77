"""Shared helpers of property tasks: one structure's energy with the harness's rules applied."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
from ase import Atoms

from lambench_core.models.loading import LoadedModel
from lambench_core.models.preparation import prepare_for_model, unsupported_elements
from lambench_core.results.record import ItemIssue
from lambench_core.tasks.base import ItemResults, ProgressCallback

T = TypeVar("T")

REASON_LENGTH = 300
DEFAULT_PADDING = 15.0


class ItemFailure(Exception):
    """An item of a property task that cannot be scored; its message is the recorded reason."""


class ItemUnsupported(ItemFailure):
    """An item the model cannot answer by construction (not an error: a coverage gap, stored as
    skipped, so a task of such items is unsupported and not computed again)."""


class Timer:
    """Sums the wall time spent inside model calls."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def energy(self, model: LoadedModel, atoms: Atoms, padding: float = DEFAULT_PADDING) -> float:
        """Potential energy (eV) of `atoms`; raises ItemFailure for a non-finite prediction."""
        prepared = prepare_for_model(model.card, atoms, padding)
        prepared.calc = model.calculator
        start = time.perf_counter()
        try:
            energy = float(prepared.get_potential_energy())
        finally:
            self.seconds += time.perf_counter() - start
        if not np.isfinite(energy):
            raise ItemFailure("non-finite energy predicted")
        return energy


def skip_reason(model: LoadedModel, structures: list[Atoms]) -> str | None:
    missing = sorted({e for atoms in structures for e in unsupported_elements(model.card, atoms)})
    if missing:
        return f"model lacks element(s) {', '.join(missing)}"
    limits = model.card.limits
    if limits is not None:
        return next((reason for atoms in structures if (reason := limits.excludes(atoms))), None)
    return None


def issue_for(item: str, exc: Exception) -> ItemIssue:
    return ItemIssue(item=item, kind="failed", reason=f"{type(exc).__name__}: {exc}"[:REASON_LENGTH])


def evaluate_items(
    model: LoadedModel,
    items: Sequence[tuple[str, T]],
    structures: Callable[[T], list[Atoms]],
    evaluate: Callable[[str, T], dict[str, Any]],
    progress: ProgressCallback,
) -> ItemResults:
    """The loop every property task shares: skip items with elements the model lacks (a coverage
    gap, not a failure), record one failed item with its reason and go on, report progress.
    `evaluate` returns the item's record; its "item" key is set here."""
    results = ItemResults(n_items=len(items))
    for done, (name, item) in enumerate(items, start=1):
        try:
            reason = skip_reason(model, structures(item))
        except Exception as exc:  # unreadable input of one item is that item's failure
            reason = None
            results.issues.append(issue_for(name, exc))
        else:
            if reason:
                results.issues.append(ItemIssue(item=name, kind="skipped", reason=reason))
            else:
                try:
                    results.records.append({"item": name, **evaluate(name, item)})
                except ItemUnsupported as exc:
                    results.issues.append(ItemIssue(item=name, kind="skipped", reason=str(exc)[:REASON_LENGTH]))
                except Exception as exc:  # one item never sinks the task
                    results.issues.append(issue_for(name, exc))
        progress(done, len(items))
    return results


def mean_or_none(values: Iterable[float]) -> float | None:
    values = [float(v) for v in values]
    return float(np.mean(values)) if values else None
