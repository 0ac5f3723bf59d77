"""Scores with bootstrap intervals, ranks and ties, from a metrics table (no harness involved).

The coverage test draws synthetic force-field records whose true errors are known, runs them
through the real chain (the task's own summarize on resampled records → M_FF) and checks that the
95% intervals contain the truth about 95% of the time.
"""

from __future__ import annotations

import numpy as np
import pytest

from lambench_core.domains import Domain
from lambench_core.metrics.aggregate import DatasetNormalization, RawForceFieldRow, score_force_field
from lambench_core.metrics.bootstrap import interval, replicate_metrics, resample_items
from lambench_core.metrics.scoring import score_table
from lambench_core.metrics.table import MetricsTable, RawMetric
from lambench_core.tasks.base import task_class

DUMMY_E, DUMMY_F = 0.2, 1.0  # eV/atom, eV/Å
ATOMS = 8


def synthetic_records(rng: np.random.Generator, n_frames: int, sigma_e: float, sigma_f: float) -> list[dict]:
    """Force-field records of a model whose per-atom energy error (after the shift) has RMSE sigma_e
    and whose force components have RMSE sigma_f, on one-element frames of ATOMS atoms."""
    records = []
    for i in range(n_frames):
        forces = rng.normal(0.0, sigma_f, size=3 * ATOMS)
        e_ref = float(rng.normal(-3.0 * ATOMS, 1.0))
        records.append(
            {
                "item": f"f{i:03d}",
                "n_atoms": ATOMS,
                "counts": {"Cu": ATOMS},
                "e_ref": e_ref,
                # A constant per-atom offset (removed by the shift fit) plus the scored error.
                "e_pred": e_ref + 0.7 * ATOMS + ATOMS * float(rng.normal(0.0, sigma_e)),
                "force_sse": float(np.sum(forces**2)),
                "force_sae": float(np.sum(np.abs(forces))),
                "force_n": forces.size,
            }
        )
    return records


def force_field_rows(model: str, records: list[dict], draws: list[list[str]]) -> list[RawMetric]:
    task = task_class("force_field")
    params = task.Params()
    point = task.summarize(records, params)
    replicates = replicate_metrics(
        records, draws, lambda rs: {k: m.value for k, m in task.summarize(rs, params).items()}
    )
    return [
        RawMetric(
            model=model,
            kind="force_field",
            benchmark="synthetic",
            dataset="synthetic",
            domain=Domain.MOLECULES,
            metric=metric,
            value=point[metric].value,
            unit=point[metric].unit,
            dummy=dummy,
            replicates=replicates[metric],
        )
        for metric, dummy in (("energy_rmse_per_atom", DUMMY_E), ("force_rmse", DUMMY_F))
    ]


def test_bootstrap_intervals_cover_the_known_answer_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    sigma_e, sigma_f = 0.05, 0.3
    truth = {
        "energy_rmse_per_atom": sigma_e,
        "force_rmse": sigma_f,
        "m_ff": 0.5 * sigma_e / DUMMY_E + 0.5 * sigma_f / DUMMY_F,
    }
    trials, hits = 150, dict.fromkeys(truth, 0)
    for trial in range(trials):
        records = synthetic_records(rng, 60, sigma_e, sigma_f)
        draws = resample_items([r["item"] for r in records], 200, f"trial-{trial}")
        table = MetricsTable(models=["m"], rows=force_field_rows("m", records, draws))
        (scores,) = score_table(table).models
        estimates = {**scores.metrics["synthetic"], "m_ff": scores.m_ff}
        for name, value in truth.items():
            estimate = estimates[name]
            hits[name] += estimate.low <= value <= estimate.high
    coverage = {name: count / trials for name, count in hits.items()}
    # 150 trials: the binomial standard error at 95% is 1.8%; a broken interval misses by far more.
    for name, fraction in coverage.items():
        assert 0.88 <= fraction <= 0.995, (name, coverage)


def test_point_scores_match_the_plain_scoring_functions_and_intervals_contain_them():
    rng = np.random.default_rng(1)
    good = synthetic_records(rng, 40, 0.02, 0.1)
    poor = synthetic_records(rng, 40, 0.1, 0.6)
    draws = resample_items([r["item"] for r in good], 300, "synthetic|synthetic")
    table = MetricsTable(
        models=["good", "poor"], rows=force_field_rows("good", good, draws) + force_field_rows("poor", poor, draws)
    )
    board = score_table(table)
    plain = score_force_field(
        ["good", "poor"],
        [
            RawForceFieldRow(
                model=row.model, dataset="synthetic", **{r.metric: r.value for r in table.rows if r.model == row.model}
            )
            for row in table.rows[::2]
        ],
        [
            DatasetNormalization(
                dataset="synthetic", domain=Domain.MOLECULES, energy_rmse_per_atom=DUMMY_E, force_rmse=DUMMY_F
            )
        ],
    )
    for scores, expected in zip(board.models, plain, strict=True):
        assert scores.model == expected.model
        assert scores.m_ff.value == pytest.approx(expected.m_ff)
        assert scores.m_ff.low <= scores.m_ff.value <= scores.m_ff.high
    good_scores, poor_scores = board.models
    assert (good_scores.rank, poor_scores.rank) == (1, 2)
    # Far apart: no tie, and the rank never flips.
    assert good_scores.tied_with == [] and (good_scores.rank_low, good_scores.rank_high) == (1, 1)
    assert (poor_scores.rank_low, poor_scores.rank_high) == (2, 2)


def test_models_with_overlapping_intervals_are_tied_and_their_ranks_spread():
    rng = np.random.default_rng(3)
    a = synthetic_records(rng, 30, 0.05, 0.30)
    b = synthetic_records(rng, 30, 0.05, 0.31)
    c = synthetic_records(rng, 30, 0.01, 0.05)
    draws = resample_items([r["item"] for r in a], 300, "tie")
    rows = [*force_field_rows("a", a, draws), *force_field_rows("b", b, draws), *force_field_rows("c", c, draws)]
    board = score_table(MetricsTable(models=["a", "b", "c"], rows=rows))
    by_model = {s.model: s for s in board.models}
    assert board.models[0].model == "c" and by_model["c"].tied_with == []
    assert by_model["a"].tied_with == ["b"]
    assert "a" in by_model["b"].tied_with
    assert by_model["a"].rank_low == 2 and by_model["a"].rank_high == 3


def test_missing_results_are_gaps_and_partial_never_silently_averaged():
    rows = [
        RawMetric(model="full", kind="force_field", benchmark=s, domain=d, metric=m, value=v, dummy=1.0)
        for s, d in (("set1", Domain.MOLECULES), ("set2", Domain.CATALYSIS))
        for m, v in (("energy_rmse_per_atom", 0.5), ("force_rmse", 0.5))
    ]
    rows += [
        RawMetric(
            model="half", kind="force_field", benchmark="set1", domain=Domain.MOLECULES, metric=m, value=0.1, dummy=1.0
        )
        for m in ("energy_rmse_per_atom", "force_rmse")
    ]
    rows += [
        RawMetric(
            model="half",
            kind="force_field",
            benchmark="set2",
            domain=Domain.CATALYSIS,
            metric=m,
            dummy=1.0,
            status="failed",
        )
        for m in ("energy_rmse_per_atom", "force_rmse")
    ]
    board = score_table(MetricsTable(models=["full", "half", "ghost"], rows=rows))
    by_model = {s.model: s for s in board.models}
    assert [s.model for s in board.models] == ["full", "half", "ghost"]
    assert by_model["full"].rank == 1 and by_model["full"].m_ff.value == pytest.approx(0.5)
    # "half" is better on what it has, but its score covers one domain of two: partial, not ranked.
    assert by_model["half"].m_ff_partial and by_model["half"].rank is None
    assert by_model["half"].ff_domains[Domain.CATALYSIS].value is None
    assert by_model["ghost"].m_ff.value is None and by_model["ghost"].rank is None
    assert by_model["ghost"].force_field.missing == ["set1", "set2"]


def test_the_dummy_normalized_by_itself_gets_a_degenerate_interval():
    """With the dummy's own replicates as the normalizer (ratio bootstrap), x = 1 on every resample."""
    rng = np.random.default_rng(5)
    dummy = synthetic_records(rng, 40, DUMMY_E, DUMMY_F)
    draws = resample_items([r["item"] for r in dummy], 200, "ratio")
    rows = force_field_rows("dummy", dummy, draws)
    for row in rows:
        row.dummy = row.value
        row.dummy_replicates = list(row.replicates or [])
    (scores,) = score_table(MetricsTable(models=["dummy"], rows=rows)).models
    assert scores.m_ff.value == pytest.approx(1.0)
    assert scores.m_ff.low == pytest.approx(1.0) and scores.m_ff.high == pytest.approx(1.0)


def test_resampling_is_deterministic_and_paired():
    first = resample_items(["a", "b", "c", "d"], 5, "set")
    assert first == resample_items(["d", "c", "b", "a"], 5, "set")
    assert first != resample_items(["a", "b", "c", "d"], 5, "other set")
    assert all(len(draw) == 4 for draw in first)


def test_interval_needs_enough_finite_replicates():
    assert interval([1.0, None, None, 2.0], 0.95) is None
    low, high = interval(list(np.linspace(0.0, 1.0, 1001)), 0.9)
    assert low == pytest.approx(0.05) and high == pytest.approx(0.95)


def test_records_of_one_cluster_are_drawn_together():
    records = [{"item": f"m{m}/c{c}", "cluster": f"m{m}", "x": float(m)} for m in range(3) for c in range(4)]
    draws = resample_items({r["cluster"] for r in records}, 50, "clusters")
    counts = replicate_metrics(
        records, draws, lambda rs: {"n": float(len(rs)), "distinct": float(len({r["x"] for r in rs}))}
    )
    # Three molecules drawn per replicate, each bringing its four conformers.
    assert set(counts["n"]) == {12.0}
    assert min(counts["distinct"]) >= 1.0 and max(counts["distinct"]) <= 3.0
