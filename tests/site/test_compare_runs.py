"""`lambench compare`: two published runs, local and on a real S3 server."""

from __future__ import annotations

import json

from lambench_core.metrics.table import table_to_parquet
from lambench_core.report.collect import JobSummary
from lambench_core.report.leaderboard import leaderboard_from_table
from lambench_core.report.publish import site_files, write_folder
from lambench_core.results.store import open_backend
from tests.support.site_tables import HOSTILE, QUOTED, synthetic_table
from workflows.cli import main


def job(model: str, task: str, status: str = "succeeded", error: str | None = None) -> JobSummary:
    return JobSummary(
        key=f"{model}-{task}",
        model=model,
        task=task,
        kind="property",
        benchmark=task,
        domain="molecules",
        dataset=None,
        status=status,
        error=error,
    )


def published_runs() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Run A; run B where alpha's force errors on one set doubled (beyond the interval), the hostile
    model's moved by 1% (inside it), a job started failing and one task was added."""
    table_a = synthetic_table()
    table_b = synthetic_table()
    for row in table_b.rows:
        if row.model == "alpha" and row.benchmark == "mol_set" and row.metric == "force_rmse":
            row.value *= 2
            row.replicates = [v * 2 for v in row.replicates or []]
        if row.model == HOSTILE and row.metric == "force_rmse":
            row.value *= 1.01
    board_a = leaderboard_from_table("a", table_a).model_copy(
        update={"jobs": [job("alpha", "s22"), job(QUOTED, "s22")]}
    )
    board_b = leaderboard_from_table("b", table_b).model_copy(
        update={"jobs": [job("alpha", "s22"), job(QUOTED, "s22", "failed", "boom"), job("alpha", "dbh24")]}
    )
    return (
        site_files(board_a, table_to_parquet(table_a), b""),
        site_files(board_b, table_to_parquet(table_b), b""),
    )


def check_report(out: str, printed: str) -> None:
    assert "regression(s) beyond A's bootstrap interval" in printed
    report = json.loads(open_backend(out).read_bytes("comparison.json"))
    verdicts = {(c["model"], c["metric"]): c["verdict"] for c in report["changes"]}
    assert verdicts[("alpha", "mol_set/force_rmse")] == "regression"
    assert verdicts[("alpha", "M_FF")] == "regression"
    assert verdicts[(HOSTILE, "mol_set/force_rmse")] == "within interval"
    assert ("alpha", "cat_set/force_rmse") not in verdicts  # unchanged
    assert report["new_jobs"] == ["alpha × dbh24"]
    assert report["failed_jobs"] == [f"{QUOTED} × s22 (newly): boom"]


def test_compare_local_runs_flags_only_changes_beyond_the_interval(tmp_path, capsys):
    run_a, run_b = published_runs()
    write_folder(run_a, tmp_path / "a" / "site")  # a run directory holding site/
    write_folder(run_b, tmp_path / "b")  # the published folder itself
    out = tmp_path / "report"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    check_report(str(out), capsys.readouterr().out)
    assert (out / "comparison.md").read_text().count("| regression |") >= 2
    code = main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--fail-on-regression"])
    assert code == 1
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(out), "--fail-on-regression"]) == 0


def test_compare_runs_published_to_s3(s3_env, capsys):
    run_a, run_b = published_runs()
    for prefix, files in (("s3://nightly/2026-11-23", run_a), ("s3://nightly/2026-11-24", run_b)):
        backend = open_backend(prefix)
        for name, content in files.items():
            if name.endswith((".json", ".parquet")):
                backend.write_bytes(f"site/{name}", content)
    out = "s3://nightly/reports/2026-11-24"
    assert main(["compare", "s3://nightly/2026-11-23", "s3://nightly/2026-11-24/site", "--out", out]) == 0
    check_report(out, capsys.readouterr().out)


def test_compare_names_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert f"{tmp_path}: no rankings.json there or in site/" in capsys.readouterr().err
