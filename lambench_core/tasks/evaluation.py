"""Shared helpers of property tasks: one structure's energy with the harness's rules applied."""

from __future__ import annotations

import time

import numpy as np
from ase import Atoms

from lambench_core.models.loading import LoadedModel
from lambench_core.results.record import ItemIssue
from lambench_core.tasks.structures import prepare_for_model, unsupported_elements

REASON_LENGTH = 300
DEFAULT_PADDING = 15.0


class ItemFailure(Exception):
    """An item of a property task that cannot be scored; its message is the recorded reason."""


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
    return f"model lacks element(s) {', '.join(missing)}" if missing else None


def issue_for(item: str, exc: Exception) -> ItemIssue:
    return ItemIssue(item=item, kind="failed", reason=f"{type(exc).__name__}: {exc}"[:REASON_LENGTH])
