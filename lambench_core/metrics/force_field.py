"""Force-field error metrics from per-frame records, with LAMBench's energy bias removal.

Models trained on different references disagree by a per-element constant (the isolated-atom
energies). Before scoring, shifts b are fitted by least squares to (E_pred − E_ref) against the
per-frame element counts, and E_pred − counts·b − E_ref is scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lambench_core.results.record import Metric

ENERGY_METRICS = {
    "energy_rmse": "eV",
    "energy_mae": "eV",
    "energy_rmse_per_atom": "eV/atom",
    "energy_mae_per_atom": "eV/atom",
}
FORCE_METRICS = {"force_rmse": "eV/Å", "force_mae": "eV/Å"}
VIRIAL_METRICS = {"virial_rmse_per_atom": "eV/atom", "virial_mae_per_atom": "eV/atom"}


def element_shifts(
    counts: Sequence[Mapping[str, int]], differences: Sequence[float]
) -> dict[str, float]:
    """Per-element shifts b minimizing Σ (ΔE_i − n_i·b)², ΔE = E_pred − E_ref (eV)."""
    elements = sorted({element for frame in counts for element in frame})
    matrix = np.array([[frame.get(e, 0) for e in elements] for frame in counts], float)
    solution, *_ = np.linalg.lstsq(matrix, np.asarray(differences, float), rcond=None)
    return dict(zip(elements, solution.tolist(), strict=True))


def energy_residuals(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected energy errors (eV) and atom counts of records that carry energies."""
    usable = [r for r in records if r.get("e_pred") is not None and r.get("e_ref") is not None]
    if not usable:
        return np.empty(0), np.empty(0)
    differences = [r["e_pred"] - r["e_ref"] for r in usable]
    shifts = element_shifts([r["counts"] for r in usable], differences)
    corrections = [sum(shifts[e] * n for e, n in r["counts"].items()) for r in usable]
    residuals = np.asarray(differences) - np.asarray(corrections)
    return residuals, np.array([r["n_atoms"] for r in usable], float)


def _summed(records: Sequence[Mapping[str, Any]], prefix: str) -> tuple[float, float, float]:
    present = [r for r in records if r.get(f"{prefix}_n")]
    return (
        float(sum(r[f"{prefix}_sse"] for r in present)),
        float(sum(r[f"{prefix}_sae"] for r in present)),
        float(sum(r[f"{prefix}_n"] for r in present)),
    )


def force_field_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Metric]:
    """All force-field metrics of a set of scored frame records; None where no frame has the label."""
    values: dict[str, float | None] = {}
    residuals, n_atoms = energy_residuals(records)
    if residuals.size:
        per_atom = residuals / n_atoms
        values |= {
            "energy_rmse": float(np.sqrt(np.mean(residuals**2))),
            "energy_mae": float(np.mean(np.abs(residuals))),
            "energy_rmse_per_atom": float(np.sqrt(np.mean(per_atom**2))),
            "energy_mae_per_atom": float(np.mean(np.abs(per_atom))),
        }
    for prefix, names in (("force", FORCE_METRICS), ("virial", VIRIAL_METRICS)):
        sse, sae, count = _summed(records, prefix)
        if count:
            rmse_name, mae_name = names
            values[rmse_name] = float(np.sqrt(sse / count))
            values[mae_name] = float(sae / count)
    units = ENERGY_METRICS | FORCE_METRICS | VIRIAL_METRICS
    return {name: Metric(value=values.get(name), unit=unit) for name, unit in units.items()}
