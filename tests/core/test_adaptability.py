"""Adaptability: the probe protocol learns a known map, never sees test-fold data, and M_AD is scored
from its out-of-fold records; representations of real models; Matbench's file format."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from ase.build import bulk, molecule

from lambench_core.domains import Domain
from lambench_core.metrics.scoring import score_table
from lambench_core.metrics.table import MetricsTable, RawMetric
from lambench_core.tasks.adaptability import G2FormationEnthalpyTask, g2_items, read_matbench
from lambench_core.tasks.base import task_class
from lambench_core.tasks.probing import candidate_heads, cross_validate, fit_predict, kfold
from tests.core.test_task_context import task_context
from tests.support.helpers import model


def synthetic(n: int = 200, d: int = 12, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    weights = rng.normal(size=d)
    return x, x @ weights + 3.0 + rng.normal(scale=noise, size=n)


def test_the_probe_learns_a_linear_map_down_to_its_noise():
    x, y = synthetic(noise=0.1)
    predictions = cross_validate(x, y, folds=5, seed=0, mlp=False)
    errors = np.array([p.predicted - p.target for p in predictions])
    # Gaussian noise σ = 0.1 has a mean absolute value of 0.1·√(2/π) ≈ 0.080; the fit adds a little.
    assert 0.06 < np.mean(np.abs(errors)) < 0.10
    mean_mae = np.mean([abs(p.train_mean - p.target) for p in predictions])
    assert mean_mae > 2.0  # the target varies far more than the noise
    assert sorted(p.index for p in predictions) == list(range(len(y)))  # every item predicted once
    assert {p.fold for p in predictions} == set(range(5))


def test_the_mlp_head_learns_a_nonlinear_map_that_ridge_cannot():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(240, 2))
    y = np.sin(2 * x[:, 0]) * x[:, 1] ** 2
    ridge = np.mean([abs(p.predicted - p.target) for p in cross_validate(x, y, 4, seed=0, mlp=False)])
    both = cross_validate(x, y, 4, seed=0, mlp=True)
    learned = np.mean([abs(p.predicted - p.target) for p in both])
    assert learned < 0.5 * ridge and all(p.head.startswith("mlp") for p in both)


def test_no_test_fold_data_reaches_training():
    """Predictions of a fold do not change when that fold's targets and features change: what the
    head saw (scaling, centring, head choice, fit) came from the training part only."""
    x, y = synthetic(n=60)
    folds = kfold(len(y), 5, seed=0)
    base = {p.index: p.predicted for p in cross_validate(x, y, 5, seed=0, mlp=False)}
    test = folds[2]
    poisoned_y = y.copy()
    poisoned_y[test] = 1e6  # test targets: absurd values would wreck any fit that saw them
    poisoned = {p.index: p for p in cross_validate(x, poisoned_y, 5, seed=0, mlp=False)}
    for index in test:
        assert poisoned[index].predicted == pytest.approx(base[index], rel=1e-9)
        assert poisoned[index].train_mean == pytest.approx(np.mean(np.delete(y, test)))
    # And the feature scaling of a fit uses its training rows only.
    head = candidate_heads(0, mlp=False)[3]
    train = np.setdiff1d(np.arange(len(y)), test)
    shifted = x.copy()
    shifted[test[1:]] += 1e3  # other test rows, far away, must not move this row's prediction
    one = fit_predict(head, x[train], y[train], x[test[:1]], 0)
    again = fit_predict(head, shifted[train], y[train], shifted[test[:1]], 0)
    assert one == pytest.approx(again)


def test_folds_are_seeded_and_disjoint():
    first, again, other = kfold(23, 5, 7), kfold(23, 5, 7), kfold(23, 5, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert sorted(np.concatenate(first).tolist()) == list(range(23))
    with pytest.raises(ValueError, match="5-fold"):
        kfold(3, 5, 0)


def test_g2_targets_are_experimental_formation_enthalpies():
    items = {item.name: item for item in g2_items()}
    assert len(items) == 148 and all(len(item.atoms) > 1 for item in items.values())
    # ΔfH°(298 K): CH4 −17.9, H2O −57.8, CO2 −94.1 kcal/mol (NIST-JANAF: −17.89, −57.80, −94.05).
    assert items["CH4"].target == pytest.approx(-17.9, abs=0.1)
    assert items["H2O"].target == pytest.approx(-57.8, abs=0.1)
    assert items["CO2"].target == pytest.approx(-94.05, abs=0.1)


def test_m_ad_is_the_mean_normalized_error_with_an_interval_and_gaps():
    task = G2FormationEnthalpyTask
    rng = np.random.default_rng(2)
    records = [
        {
            "item": f"m{i}",
            "target": t,
            "predicted": t + rng.normal(scale=1.0),
            "train_mean": 0.0,
            "composition": t + rng.normal(scale=3.0),
        }
        for i, t in enumerate(rng.normal(scale=10.0, size=80))
    ]
    metrics = task.summarize(records, task.Params())
    assert metrics["normalized_mae"].value == pytest.approx(metrics["mae"].value / metrics["mean_predictor_mae"].value)
    assert metrics["composition_normalized_mae"].value > metrics["normalized_mae"].value
    from lambench_core.metrics.bootstrap import replicate_metrics, resample_items

    draws = resample_items([r["item"] for r in records], 200, "g2")
    reps = replicate_metrics(
        records, draws, lambda rs: {k: m.value for k, m in task.summarize(rs, task.Params()).items()}
    )
    rows = [
        RawMetric(
            model="m",
            kind="adaptability",
            benchmark="g2",
            domain=Domain.MOLECULES,
            metric="normalized_mae",
            value=metrics["normalized_mae"].value,
            replicates=reps["normalized_mae"],
        ),
        RawMetric(
            model="m",
            kind="adaptability",
            benchmark="bulk",
            domain=Domain.INORGANIC_MATERIALS,
            metric="normalized_mae",
            value=0.5,
        ),
        RawMetric(
            model="n",
            kind="adaptability",
            benchmark="g2",
            domain=Domain.MOLECULES,
            metric="normalized_mae",
            status="unsupported",
        ),
    ]
    scores = {s.model: s for s in score_table(MetricsTable(models=["m", "n"], rows=rows)).models}
    expected = (metrics["normalized_mae"].value + 0.5) / 2
    assert scores["m"].m_ad.value == pytest.approx(expected) and not scores["m"].m_ad_partial
    assert scores["m"].m_ad.low < expected < scores["m"].m_ad.high
    assert scores["n"].m_ad.value is None and scores["n"].m_ad_partial


def test_models_without_a_representation_are_skipped_with_the_reason():
    task = task_class("adapt_g2_formation_enthalpy")
    output = task().run(model("emt"), task.Params(max_items=10), task_context())
    assert output.records == [] and len(output.issues) == 10
    assert all(i.kind == "skipped" and "no learned representation" in i.reason for i in output.issues)


@pytest.mark.slow
@pytest.mark.parametrize("name, width", [("chgnet-0.3.0", 64), ("sevennet-0", 128)])
def test_real_models_expose_per_atom_features(name, width):
    from lambench_core.models.representation import atom_features, pooled_features

    loaded = model(name)
    methane = atom_features(loaded, molecule("CH4"))
    silicon = atom_features(loaded, bulk("Si", "diamond", a=5.43))
    assert methane.shape == (5, width) and silicon.shape == (2, width)
    # The four hydrogens of methane are equivalent: their features agree; carbon's differ.
    assert np.allclose(methane[1:], methane[1], atol=1e-4) and not np.allclose(methane[0], methane[1], atol=1e-3)
    assert pooled_features(loaded, molecule("H2O")).shape == (2 * width,)


@pytest.mark.slow
def test_a_real_model_probe_beats_the_mean_on_g2():
    task = task_class("adapt_g2_formation_enthalpy")
    params = task.Params(mlp=False)
    output = task().run(model("chgnet-0.3.0"), params, task_context())
    assert len(output.records) == 148 and output.issues == []
    # Measured 0.478 (MAE 24.0 kcal/mol against 50.2 for the mean); composition alone reaches 0.70.
    assert output.metrics["normalized_mae"].value < 0.6
    assert output.metrics["normalized_mae"].value < output.metrics["composition_normalized_mae"].value
    assert task.summarize(output.records, params) == output.metrics


def test_matbench_files_are_read_and_bad_columns_named(tmp_path):
    from pymatgen.core import Lattice, Structure

    structures = [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Cu"], [[0, 0, 0]]).as_dict() for i in range(3)]
    document = {
        "index": ["mb-1", "mb-2", "mb-3"],
        "columns": ["structure", "n"],
        "data": [[s, 1.5] for s in structures],
    }
    with gzip.open(tmp_path / "matbench_dielectric.json.gz", "wt") as handle:
        json.dump(document, handle)
    items = read_matbench(tmp_path, "n")
    assert [i.name for i in items] == ["mb-1", "mb-2", "mb-3"] and items[2].atoms.cell[0, 0] == pytest.approx(3.2)
    with pytest.raises(ValueError, match="expected 'structure' and 'gap pbe'"):
        read_matbench(tmp_path, "gap pbe")
    assert task_class("matbench_mp_gap").column == "gap pbe"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chgnet-0.3.0", "sevennet-0"])
def test_fine_tuning_learns_from_training_folds_only_and_leaves_the_model_untouched(name):
    from lambench_core.tasks.finetune import Budget, fine_tune_cross_validate
    from lambench_core.tasks.probing import kfold

    loaded = model(name)
    items = g2_items()[:24]
    structures, targets = [i.atoms for i in items], np.array([i.target for i in items])
    before = [p.detach().clone() for p in loaded.calculator.model.parameters()]
    predictions = fine_tune_cross_validate(loaded, structures, targets, 2, 0, Budget(epochs=2))
    assert all(np.array_equal(a.detach(), b) for a, b in zip(loaded.calculator.model.parameters(), before, strict=True))
    mae = np.mean([abs(p.predicted - p.target) for p in predictions])
    mean_mae = np.mean([abs(p.train_mean - p.target) for p in predictions])
    assert mae < mean_mae and predictions[0].head.startswith("finetune")
    # Poison the second fold's targets: its predictions come from the first fold's training only.
    test = kfold(len(targets), 2, 0)[1]
    poisoned = targets.copy()
    poisoned[test] = 1e6
    again = {
        p.index: p.predicted for p in fine_tune_cross_validate(loaded, structures, poisoned, 2, 0, Budget(epochs=2))
    }
    for p in predictions:
        if p.index in test:
            assert again[p.index] == pytest.approx(p.predicted, rel=1e-5)
