"""`lambench aggregate` at scale, checked by structure, never by the clock: the report reads the rows
a constant number of times (dictionaries per cell, not scans), the fast paths give exactly what the
straightforward ones give, and the replicates a table may hold in memory are bounded.
(benchmarks/aggregate_scale.py measures the time and memory: 10k, 100k, 1M rows.)"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambench_core.domains import Domain
from lambench_core.metrics import scoring
from lambench_core.metrics import table as table_module
from lambench_core.metrics.aggregate import score_force_field
from lambench_core.metrics.property import score_property
from lambench_core.metrics.scoring import Estimate, ModelScores, score_table
from lambench_core.metrics.table import MetricsTable, RawMetric, read_table, table_to_parquet
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.markdown import to_markdown
from lambench_core.report.site import iter_site, pareto_front
from tests.support.site_tables import synthetic_table


class CountingList(list):
    """A list that counts how often it is walked through."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


def wide_table(n_models: int, n_sets: int, replicates: int = 0, seed: int = 0) -> MetricsTable:
    """n_models × n_sets force-field sets (E, F) × a property task × efficiency and stability rows,
    with a few failed rows, dummy replicates on one set and replicate lists of uneven length."""
    rng = random.Random(seed)
    rows = []

    def reps(value: float | None) -> list[float | None] | None:
        if not replicates or value is None:
            return None
        drawn: list[float | None] = [value * (1 + 0.05 * rng.gauss(0, 1)) for _ in range(replicates)]
        if rng.random() < 0.1:
            drawn[0] = None
        return drawn + ([value] if rng.random() < 0.2 else [])

    domains = list(Domain)
    for m in range(n_models):
        model, skill = f"model-{m:03d}", 0.1 + 0.8 * rng.random()
        for s in range(n_sets):
            for metric, dummy in (("energy_rmse_per_atom", 0.1), ("force_rmse", 1.0)):
                failed = rng.random() < 0.03
                value = None if failed else skill * dummy * (0.8 + 0.4 * rng.random())
                dummy_reps = [dummy * (1 + 0.02 * rng.gauss(0, 1)) for _ in range(replicates)] if s == 0 else None
                rows.append(
                    RawMetric(
                        model=model,
                        kind="force_field",
                        benchmark=f"set-{s:02d}",
                        dataset=f"set-{s:02d}",
                        domain=domains[s % 3],
                        metric=metric,
                        value=value,
                        dummy=dummy,
                        dummy_replicates=dummy_reps or None,
                        status="failed" if failed else "succeeded",
                        replicates=reps(value),
                    )
                )
        for metric in ("a_mae", "b_mae"):
            value = skill * 10 * rng.random()
            rows.append(
                RawMetric(
                    model=model,
                    kind="property",
                    benchmark="task",
                    domain=Domain.MOLECULES,
                    metric=metric,
                    value=value,
                    dummy=10.0,
                    success_rate=0.9,
                    replicates=reps(value),
                )
            )
        for kind, benchmark, metric, value in (
            ("efficiency", "efficiency", "m_e", 1 / skill),
            ("stability", "md_stability", "m_is", 2 * skill),
            ("adaptability", "probe", "normalized_mae", skill),
        ):
            rows.append(
                RawMetric(
                    model=model, kind=kind, benchmark=benchmark, metric=metric, value=value, replicates=reps(value)
                )
            )
    return MetricsTable(models=[f"model-{m:03d}" for m in range(n_models)], rows=rows)


@pytest.mark.parametrize("n_models", [3, 30])
def test_the_report_walks_the_rows_and_jobs_a_constant_number_of_times(n_models):
    board = leaderboard_from_table("scale", wide_table(n_models, 12))
    CountingList.walks = 0
    board.table.rows = CountingList(board.table.rows)
    board.jobs = CountingList(board.jobs)
    to_markdown(board)
    dict(iter_site(board))
    # Once each to index the rows and the jobs (plus the footnotes' walk over the jobs), whatever the
    # size: a scan per cell would walk them models × benchmarks times.
    assert CountingList.walks <= 4


@pytest.mark.parametrize("n_models", [3, 30])
def test_scoring_walks_the_table_a_constant_number_of_times(n_models):
    table = wide_table(n_models, 6, replicates=20)
    CountingList.walks = 0
    table.rows = CountingList(table.rows)
    scores = score_table(table)
    assert scores.n_replicates == 20
    assert CountingList.walks <= 2  # n_replicates and one pass: not per model, not per replicate


def test_lookups_find_what_the_scans_they_replace_found():
    table = synthetic_table()
    table.rows.append(table.rows[0].model_copy(update={"value": 123.0}))  # a duplicate: the first one wins
    board = leaderboard_from_table("lookup", table)
    for row in board.table.rows:
        first = next(
            r for r in board.table.rows if (r.model, r.benchmark, r.metric) == (row.model, row.benchmark, row.metric)
        )
        assert board.value(row.model, row.benchmark, row.metric) is first
    assert board.value("alpha", "mol_set", "nope") is None and board.job("alpha", "mol_set") is None
    assert board.scores("alpha").model == "alpha"
    board.jobs = []  # replacing a list rebuilds the lookup
    assert board.lookup().jobs == {}


def test_replicates_scored_the_fast_way_equal_the_whole_chain_per_replicate():
    """The replicate path shares the arithmetic with the point path; here it is checked number for
    number against the straightforward per-replicate chain (inputs → score functions)."""
    table = wide_table(7, 5, replicates=30, seed=3)
    n = table.n_replicates
    ff_rows = [r for r in table.rows if r.kind == "force_field"]
    pc_rows = [r for r in table.rows if r.kind == "property"]
    fast_ff = scoring._force_field_replicates(ff_rows, table.models, n)
    fast_pc = scoring._property_replicates(pc_rows, table.models, n)
    for b in range(n):
        rows, norms = scoring._force_field_inputs(table.rows, scoring._replicate(b), scoring._replicate_dummy(b))
        expected = {s.model: (s.m_ff, s.domains) for s in score_force_field(table.models, rows, norms)}
        assert fast_ff[b] == expected
        prows, pnorms = scoring._property_inputs(table.rows, scoring._replicate(b), scoring._replicate_dummy(b))
        expected = {s.model: (s.m_pc, s.domains) for s in score_property(table.models, prows, pnorms)}
        assert fast_pc[b] == expected


def _reference_ties(ranked: list[ModelScores]) -> list[list[str]]:
    return [[o.model for o in ranked if o is not s and o.m_ff.overlaps(s.m_ff)] for s in ranked]


def test_ties_and_the_pareto_front_equal_their_pairwise_definitions():
    rng = random.Random(5)
    for _ in range(50):
        ranked = []
        for i in range(rng.randint(1, 25)):
            value = rng.choice([0.1, 0.2, 0.3, rng.random()])
            low = None if rng.random() < 0.3 else value - rng.random() * 0.2
            high = None if low is None else value + rng.random() * 0.2
            estimate = Estimate(value=value, low=low, high=high)
            ranked.append(
                ModelScores.model_construct(model=f"m{i}", m_ff=estimate, tied_with=[])  # only what ties read
            )
        assert scoring._ties(ranked) == _reference_ties(ranked)
        points = [(f"p{i}", rng.choice([1.0, 2.0, rng.random()]), rng.choice([0.5, rng.random()])) for i in range(30)]
        expected = [
            name
            for name, x, y in points
            if not any((x2 >= x and y2 <= y) and (x2 > x or y2 < y) for _, x2, y2 in points)
        ]
        assert pareto_front(points) == expected
    assert pareto_front([("a", math.nan, 1.0), ("b", 1.0, 1.0)]) == ["a", "b"]


def test_a_json_table_read_the_fast_way_equals_the_row_by_row_reading(tmp_path):
    table = wide_table(4, 3, replicates=5)
    document = {"models": table.models, "rows": [r.model_dump(mode="json") for r in table.rows]}
    path = tmp_path / "table.json"
    path.write_text(json.dumps(document))
    fast = read_table(path)
    slow = table_module._from_rows(json.loads(path.read_text())["rows"], table.models, str(path))
    assert fast == slow == table
    path.write_text(json.dumps(document["rows"]))
    assert read_table(path) == table
    path.write_text(json.dumps({"metrics": document["rows"], "jobs": [{"anything": 1}]}))  # a results.json
    assert read_table(path).rows == table.rows


def test_a_parquet_table_keeps_its_replicates_within_the_memory_bound(tmp_path, monkeypatch):
    table = wide_table(10, 4, replicates=150)  # 130 rows × 150-151 replicates
    rows = len(table.rows)
    path = tmp_path / "metrics.parquet"
    path.write_bytes(table_to_parquet(table))
    assert read_table(path).n_replicates == 150  # within the default bound: all of them

    monkeypatch.setattr(table_module, "REPLICATE_BUDGET", rows * 110)  # room for 110 a row
    read = read_table(path)
    assert read.n_replicates == 110 and max(len(r.replicates or []) for r in read.rows) == 110
    assert read.notes == [
        f"metrics.parquet: intervals from the first 110 of 151 bootstrap replicates ({rows} rows; "
        f"at most {rows * 110:,} replicate values are held)"
    ]
    for ours, full in zip(read.rows, table.rows, strict=True):  # the first 110 of each row, as float32
        if full.replicates:
            assert ours.replicates == pytest.approx(full.replicates[:110], rel=1e-6, nan_ok=True)
    board = leaderboard_from_table("bounded", read)
    assert board.notes == read.notes and "110 replicates" in to_markdown(board)

    monkeypatch.setattr(table_module, "REPLICATE_BUDGET", rows * 50)  # under MIN_REPLICATES a row
    read = read_table(path)
    assert read.n_replicates == 0 and all(r.replicates is None and r.dummy_replicates is None for r in read.rows)
    assert "no intervals" in read.notes[0] and [r.value for r in read.rows] == [r.value for r in table.rows]


def test_a_parquet_table_read_in_batches_equals_reading_it_whole(tmp_path):
    table = wide_table(5, 3, replicates=4)
    path = tmp_path / "metrics.parquet"
    path.write_bytes(table_to_parquet(table))
    whole = table_module._from_rows(pq.read_table(path).to_pylist(), table.models, str(path))
    assert read_table(path) == whole
    extra = pq.read_table(path).append_column("surprise", pa.array(np.zeros(len(table.rows))))
    pq.write_table(extra, path)
    with pytest.raises(Exception, match=r"row 0, field 'surprise': Extra inputs are not permitted"):
        read_table(path)
