from __future__ import annotations

import math

import numpy as np
import pytest

from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import DatasetNormalization, RawForceFieldRow, geometric_mean, score_force_field
from lambench_core.metrics.force_field import element_shifts, energy_residuals, force_field_metrics


def record(counts, e_ref, e_pred, force_errors=(), virial_errors=None):
    n_atoms = sum(counts.values())
    errors = np.asarray(force_errors, float)
    rec = {"counts": counts, "n_atoms": n_atoms, "e_ref": e_ref, "e_pred": e_pred,
           "force_sse": float(np.sum(errors**2)), "force_sae": float(np.sum(np.abs(errors))), "force_n": errors.size}
    if virial_errors is not None:
        v = np.asarray(virial_errors, float) / n_atoms
        rec |= {"virial_sse": float(np.sum(v**2)), "virial_sae": float(np.sum(np.abs(v))), "virial_n": v.size}
    return rec


def test_per_element_shift_is_removed_exactly():
    # Predictions off by exactly 2 eV per H and −3 eV per O score zero energy error.
    counts = [{"H": 2, "O": 1}, {"H": 4, "O": 2}, {"H": 2, "O": 2}, {"H": 1}]
    e_ref = [-10.0, -20.5, -13.0, -2.0]
    e_pred = [r + 2 * c.get("H", 0) - 3 * c.get("O", 0) for r, c in zip(e_ref, counts)]
    shifts = element_shifts(counts, np.subtract(e_pred, e_ref))
    assert shifts == pytest.approx({"H": 2.0, "O": -3.0})
    residuals, _ = energy_residuals([record(c, r, p) for c, r, p in zip(counts, e_ref, e_pred)])
    assert np.abs(residuals).max() < 1e-10


def test_metrics_against_hand_computation():
    counts = [{"H": 2, "O": 1}, {"H": 2, "O": 1}, {"H": 1, "O": 1}, {"H": 1, "O": 1}]
    # Same composition pairs: the fitted shift cancels the mean error of each pair.
    e_ref = [0.0, 0.0, 0.0, 0.0]
    e_pred = [0.3, 0.1, -0.2, 0.2]
    records = [record(c, r, p, force_errors=[0.1, -0.2, 0.0] * sum(c.values())) for c, r, p in zip(counts, e_ref, e_pred)]
    metrics = {k: m.value for k, m in force_field_metrics(records).items()}
    # Fit: H, O shifts such that composition (2,1) gets 0.2 and (1,1) gets 0.0 → residuals ±0.1, ±0.2.
    residuals = np.array([0.1, -0.1, -0.2, 0.2])
    n = np.array([3, 3, 2, 2])
    assert metrics["energy_rmse"] == pytest.approx(math.sqrt(np.mean(residuals**2)))
    assert metrics["energy_mae_per_atom"] == pytest.approx(np.mean(np.abs(residuals / n)))
    assert metrics["force_rmse"] == pytest.approx(math.sqrt((0.01 + 0.04) / 3))
    assert metrics["force_mae"] == pytest.approx(0.1)
    assert metrics["virial_rmse_per_atom"] is None


def test_virial_metrics_are_per_atom():
    records = [record({"Si": 2}, -10.0, -10.0, [0.0] * 6, virial_errors=[0.2] * 9)]
    metrics = force_field_metrics(records)
    assert metrics["virial_rmse_per_atom"].value == pytest.approx(0.1)
    assert metrics["virial_rmse_per_atom"].unit == "eV/atom"


NORMS = [
    DatasetNormalization(dataset="mol_a", domain=Domain.MOLECULES, energy_rmse_per_atom=0.1, force_rmse=1.0),
    DatasetNormalization(dataset="mol_b", domain=Domain.MOLECULES, energy_rmse_per_atom=0.2, force_rmse=2.0),
    DatasetNormalization(dataset="bulk", domain=Domain.INORGANIC_MATERIALS, energy_rmse_per_atom=0.1, force_rmse=1.0, virial_rmse_per_atom=0.5),
]


def test_m_ff_follows_lambench_definition():
    rows = [
        RawForceFieldRow(model="m", dataset="mol_a", energy_rmse_per_atom=0.01, force_rmse=0.5),
        RawForceFieldRow(model="m", dataset="mol_b", energy_rmse_per_atom=0.4, force_rmse=0.2),  # E capped at 1
        RawForceFieldRow(model="m", dataset="bulk", energy_rmse_per_atom=0.05, force_rmse=0.1, virial_rmse_per_atom=0.25),
    ]
    (score,) = score_force_field(["m"], rows, NORMS)
    molecules = 0.5 * math.sqrt(0.1 * 1.0) + 0.5 * math.sqrt(0.5 * 0.1)
    materials = 0.45 * 0.5 + 0.45 * 0.1 + 0.10 * 0.5
    assert score.domains[Domain.MOLECULES] == pytest.approx(molecules)
    assert score.domains[Domain.INORGANIC_MATERIALS] == pytest.approx(materials)
    assert score.m_ff == pytest.approx((molecules + materials) / 2)
    assert not score.partial and score.missing == []


def test_dummy_scores_one_and_perfect_scores_zero():
    dummy = [RawForceFieldRow(model="d", dataset=n.dataset, energy_rmse_per_atom=n.energy_rmse_per_atom,
                              force_rmse=n.force_rmse, virial_rmse_per_atom=n.virial_rmse_per_atom) for n in NORMS]
    perfect = [RawForceFieldRow(model="p", dataset=n.dataset, energy_rmse_per_atom=0.0, force_rmse=0.0,
                                virial_rmse_per_atom=0.0 if n.virial_rmse_per_atom else None) for n in NORMS]
    scores = {s.model: s for s in score_force_field(["d", "p"], dummy + perfect, NORMS)}
    assert scores["d"].m_ff == pytest.approx(1.0)
    assert scores["p"].m_ff == pytest.approx(0.0)


def test_missing_dataset_is_marked_partial_and_listed():
    rows = [RawForceFieldRow(model="m", dataset="mol_a", energy_rmse_per_atom=0.01, force_rmse=0.5)]
    (score,) = score_force_field(["m", ], rows, NORMS)
    assert score.partial
    assert score.missing == ["bulk", "mol_b"]
    assert score.domains[Domain.INORGANIC_MATERIALS] is None


def test_model_without_any_result_is_kept():
    scores = score_force_field(["ghost"], [], NORMS)
    assert scores[0].model == "ghost" and scores[0].m_ff is None and scores[0].partial


def test_missing_virial_prediction_counts_as_dummy():
    rows = [RawForceFieldRow(model="m", dataset="bulk", energy_rmse_per_atom=0.1, force_rmse=1.0)]
    (score,) = score_force_field(["m"], rows, NORMS[2:])
    assert score.normalized["bulk"]["V"] == 1.0 and score.m_ff == pytest.approx(1.0)
    assert any("virial" in note for note in score.notes)


def test_geometric_mean():
    assert geometric_mean([0.25, 1.0]) == pytest.approx(0.5)
    assert geometric_mean([0.0, 1.0]) == 0.0
