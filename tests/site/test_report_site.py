"""The site, the exports and `lambench aggregate`, on a synthetic table (the browser test opens the
same site in Chromium: tests/site/test_site_browser.py)."""

from __future__ import annotations

import json
import re

import pytest

from lambench_core.errors import LambenchError
from lambench_core.metrics.scoring import score_table
from lambench_core.metrics.table import read_table, table_to_parquet
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.markdown import to_markdown
from lambench_core.report.publish import site_files
from lambench_core.report.site import pareto_front, slug
from tests.support.site_tables import HOSTILE, MODELS, QUOTED, synthetic_table
from workflows.cli import main


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    table = synthetic_table()
    return site_files(leaderboard_from_table("synthetic", table), table_to_parquet(table), b"")


def test_every_page_escapes_user_text(files):
    pages = {name: content.decode() for name, content in files.items() if name.endswith(".html")}
    assert len(pages) == 1 + len(MODELS) + 5  # index, one per model, one per benchmark
    for name, page in pages.items():
        assert "<script>window.__pwned" not in page, name
        assert "window.__pwned=1</script>" not in page, name
    index = pages["index.html"]
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in index
    assert "model &#34;quoted&#34; &amp; &#39;apostrophes&#39;" in index  # markupsafe's escapes
    # The plot data rides in a JSON script block that no string can close.
    block = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', index, re.S)
    assert block and "<" not in block.group(1) and "\\u0026lt;script\\u0026gt;window.__pwned" in block.group(1)
    json.loads(block.group(1))


def test_file_names_of_models_cannot_escape_their_folder():
    for name in [HOSTILE, QUOTED, "../../etc/passwd", "a/b", "ü"]:
        name_slug = slug(name)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name_slug) and not name_slug.startswith(".")
    assert slug("a/b") != slug("a-b")


def test_the_site_has_every_model_metric_interval_and_export(files):
    index = files["index.html"].decode()
    assert index.count("<tr data-model=") == len(MODELS)
    for plot in ("plot-radar", "plot-pareto", "plot-benchmarks"):
        assert f"id='{plot}'" in index
    for export in ("results.json", "rankings.json", "metrics.parquet", "leaderboard.md", "leaderboard.json"):
        assert export in files and f"href='{export}'" in index
    assert "assets/plotly.min.js" in files and len(files["assets/plotly.min.js"]) > 1_000_000
    rankings = json.loads(files["rankings.json"])
    alpha = next(m for m in rankings["models"] if m["model"] == "alpha")
    assert alpha["rank"] == 1 and alpha["m_ff"]["low"] < alpha["m_ff"]["value"] < alpha["m_ff"]["high"]
    assert rankings["n_replicates"] == 200


def test_pareto_front_keeps_only_undominated_models():
    points = [("fast-poor", 10.0, 0.9), ("slow-good", 1.0, 0.2), ("dominated", 0.5, 0.5), ("both", 10.0, 0.2)]
    assert pareto_front(points) == ["both"]
    assert pareto_front(points[:3]) == ["fast-poor", "slow-good"]


def test_aggregate_scores_a_json_table_the_same_way(tmp_path, capsys):
    table = synthetic_table()
    path = tmp_path / "table.json"
    path.write_text(json.dumps([row.model_dump(mode="json") for row in table.rows]))
    assert main(["aggregate", str(path), "--out", str(tmp_path / "site")]) == 0
    printed = capsys.readouterr().out
    assert "| 1 | alpha |" in printed and "M_FF ↓ [95%]" in printed
    assert (tmp_path / "site" / "index.html").is_file()
    rescored = json.loads((tmp_path / "site" / "rankings.json").read_text())
    direct = score_table(table)
    assert [m["m_ff"] for m in rescored["models"]] == [m.m_ff.model_dump() for m in direct.models]


def test_parquet_round_trip_keeps_replicates_and_model_order(tmp_path):
    table = synthetic_table()
    path = tmp_path / "metrics.parquet"
    path.write_bytes(table_to_parquet(table))
    again = read_table(path)
    assert again.models == table.models and again.n_replicates == 200
    first, second = score_table(table), score_table(again)
    for a, b in zip(first.models, second.models, strict=True):
        assert a.m_ff.value == pytest.approx(b.m_ff.value)
        assert a.m_ff.low == pytest.approx(b.m_ff.low, rel=1e-5)  # float32 replicates


def test_results_json_of_a_run_is_itself_an_aggregate_table(tmp_path, files):
    path = tmp_path / "results.json"
    path.write_bytes(files["results.json"])
    table = read_table(path)
    assert table.models == MODELS and table.n_replicates == 0
    board = score_table(table)
    assert board.models[0].model == "alpha" and board.models[0].m_ff.low is None


def test_a_bad_table_names_the_file_the_row_and_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"model": "m", "kind": "force_field", "benchmark": "b", "value": 1.0}]))
    with pytest.raises(LambenchError, match=r"bad\.json: row 0, field 'metric': Field required"):
        read_table(path)
    path.write_text(json.dumps([{"model": "m", "kind": "nonsense", "benchmark": "b", "metric": "x"}]))
    with pytest.raises(LambenchError, match=r"bad\.json: row 0, field 'kind'"):
        read_table(path)
    path.write_text("{not json")
    with pytest.raises(LambenchError, match=r"bad\.json: not valid JSON"):
        read_table(path)


def test_markdown_shows_intervals_ties_and_escapes_pipes():
    board = leaderboard_from_table("synthetic", synthetic_table())
    text = to_markdown(board)
    assert "M_FF ↓ [95%]" in text and "200 replicates" in text
    first_row = next(line for line in text.splitlines() if line.startswith("| 1"))
    assert re.search(r"\| 0\.200 \[0\.\d+, 0\.\d+\] \|", first_row)
    assert QUOTED in text


def test_a_job_whose_records_cannot_be_resampled_keeps_its_values_and_says_so(tmp_path):
    from lambench_core.campaign import CampaignContext, CampaignSpec, plan_campaign
    from lambench_core.report.leaderboard import build_leaderboard
    from lambench_core.results.record import Metric, Status, TaskResult
    from lambench_core.results.store import ResultStore

    spec = CampaignSpec(campaign_id="c", models=["emt"], tasks=["s22"], store=str(tmp_path / "store"))
    context = CampaignContext(spec)
    (job,) = plan_campaign(spec, ResultStore.open(spec.store)).all_jobs
    # Records from an "older version" of the task lack the fields its summarize reads.
    stale = TaskResult(
        key=job.key, model="emt", task="s22", status=Status.SUCCEEDED, n_items=2, n_scored=2, success_rate=1.0,
        metrics={"s22_mae": Metric(value=1.5, unit="kcal/mol")}, records=[{"item": "a"}, {"item": "b"}],
    )
    board, table = build_leaderboard("c", ["emt"], [stale], [job], context.manifest, n_replicates=50)
    (scores,) = board.scoreboard.models
    assert scores.metrics["s22"]["s22_mae"].value == 1.5 and scores.metrics["s22"]["s22_mae"].low is None
    assert any(note.startswith("emt on s22: no intervals (KeyError") for note in board.notes)
