"""Baselines (the dummy, classical potentials; `baseline: true` on the card) are reference rows: shown
with their scores, never ranked, never tied with, never on the Pareto front, and the table says so
wherever it travels (Parquet, results.json, `lambench aggregate`)."""

from __future__ import annotations

import json

from lambench_core.metrics.scoring import score_table
from lambench_core.metrics.table import read_table, table_to_parquet
from lambench_core.models.catalog import ModelCatalog
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.markdown import to_markdown
from lambench_core.report.publish import site_files
from lambench_core.report.site import _pareto
from tests.support.site_tables import HOSTILE, QUOTED, synthetic_table


def with_alpha_as_baseline():
    """alpha has the best M_FF (0.2) of the synthetic table: as a baseline it must not take rank 1."""
    table = synthetic_table()
    table.baselines = ["alpha"]
    return table


def test_a_baseline_is_shown_after_the_contenders_and_never_ranked_or_tied():
    board = score_table(with_alpha_as_baseline())
    order = [(s.model, s.rank, s.baseline) for s in board.models]
    assert order == [(HOSTILE, 1, False), (QUOTED, 2, False), ("alpha", None, True)]
    assert all("alpha" not in s.tied_with for s in board.models)
    alpha = board.models[-1]
    assert alpha.m_ff.value is not None and alpha.m_ff.low is not None  # its scores are still computed


def test_the_pareto_front_and_the_markdown_leave_the_baseline_out():
    board = leaderboard_from_table("b", with_alpha_as_baseline())
    figure = _pareto(board)
    assert figure is not None
    traces = {trace["name"]: trace.get("text", []) for trace in figure["data"]}
    assert "alpha" not in traces["on the Pareto front"] and traces["reference (not ranked)"] == ["alpha"]
    markdown = to_markdown(board)
    assert "| ref. | alpha |" in markdown and "reference rows (baselines)" in markdown


def test_baselines_survive_parquet_json_and_the_published_results(tmp_path):
    table = with_alpha_as_baseline()
    parquet = tmp_path / "t.parquet"
    parquet.write_bytes(table_to_parquet(table))
    assert read_table(parquet).baselines == ["alpha"]
    board = leaderboard_from_table("b", table)
    files = site_files(board, table_to_parquet(table), b"")
    results = json.loads(files["results.json"])
    assert results["baselines"] == ["alpha"]
    published = tmp_path / "results.json"
    published.write_bytes(files["results.json"])
    again = score_table(read_table(published))
    assert [s.model for s in again.models if s.rank is None] == ["alpha"]
    assert "class='baseline'" in files["index.html"].decode()


def test_the_shipped_baselines_are_the_dummy_and_emt():
    baselines = {card.name for card in ModelCatalog.load().cards() if card.baseline}
    assert baselines == {"dummy", "emt"}
