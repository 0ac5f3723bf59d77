"""`lambench compare` judges like with like: different benchmark sets or definitions are listed, not
called regressions; float noise is unchanged; a change counts only beyond the bootstrap interval."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from lambench_core.domains import Domain
from lambench_core.metrics.table import MetricsTable, RawMetric, table_to_parquet
from lambench_core.report.compare import compare_runs, load_run, same
from lambench_core.report.leaderboard import Leaderboard, leaderboard_from_table
from lambench_core.report.publish import site_files, write_folder
from tests.support.site_tables import MODELS, synthetic_table
from workflows.cli import main


def publish(folder: Path, table: MetricsTable, edit_board: Callable[[Leaderboard], Leaderboard] | None = None) -> str:
    board = leaderboard_from_table(folder.name, table)
    if edit_board is not None:
        board = edit_board(board)
    write_folder(site_files(board, table_to_parquet(table), b""), folder)
    return str(folder)


def scale(table: MetricsTable, model: str, benchmark: str, metric: str, factor: float, shift: float = 0.0) -> None:
    for row in table.rows:
        if row.model == model and row.benchmark == benchmark and row.metric == metric:
            row.value = row.value * factor + shift
            row.replicates = [v * factor + shift for v in row.replicates] if row.replicates else row.replicates


def without_replicates(table: MetricsTable) -> MetricsTable:
    return MetricsTable(models=table.models, rows=[r.model_copy(update={"replicates": None}) for r in table.rows])


def compare(tmp_path: Path, a: str, b: str, capsys) -> tuple[int, dict, str]:
    out = tmp_path / "report"
    code = main(["compare", a, b, "--out", str(out), "--fail-on-regression"])
    printed = capsys.readouterr().out
    return code, json.loads((out / "comparison.json").read_text()), printed


def verdicts(report: dict) -> dict[tuple[str, str], str]:
    return {(c["model"], c["metric"]): c["verdict"] for c in report["changes"]}


def test_runs_with_different_task_sets_are_not_a_regression_and_say_what_differs(tmp_path, capsys):
    table_b = synthetic_table()
    for model in MODELS:  # B also scores a property task A never ran, one every model does badly on
        table_b.rows.append(
            RawMetric(
                model=model,
                kind="property",
                benchmark="dbh24",
                domain=Domain.MOLECULES,
                metric="barrier_mae",
                value=9.0,
                dummy=10.0,
                unit="kcal/mol",
            )
        )
    code, report, printed = compare(
        tmp_path, publish(tmp_path / "a", synthetic_table()), publish(tmp_path / "b", table_b), capsys
    )
    assert code == 0 and report["changes"]
    found = verdicts(report)
    assert all(v != "regression" for v in found.values())
    assert {found[(m, "M_PC")] for m in MODELS} == {"not comparable"}  # M_PC rose, over another task set
    note = next(c["note"] for c in report["changes"] if c["metric"] == "M_PC")
    assert "only in B: dbh24" in note
    assert any(d.startswith("M_PC differs between the runs") and "dbh24" in d for d in report["differences"])
    assert found[("alpha", "dbh24/barrier_mae")] == "new"
    assert ("alpha", "M_FF") not in found  # the force-field sets are the same, and unchanged
    assert "Not compared: the runs differ" in printed and "0 regression(s)" in printed


def test_a_change_of_1e_12_is_unchanged_with_or_without_intervals(tmp_path, capsys):
    for name, strip in (("with", False), ("without", True)):
        table_a, table_b = synthetic_table(), synthetic_table()
        scale(table_b, "alpha", "mol_set", "force_rmse", 1.0, shift=1e-12)
        scale(table_b, "alpha", "efficiency", "m_e", 1.0, shift=-1e-12)
        if strip:
            table_a, table_b = without_replicates(table_a), without_replicates(table_b)
        code, report, _ = compare(
            tmp_path, publish(tmp_path / f"a-{name}", table_a), publish(tmp_path / f"b-{name}", table_b), capsys
        )
        assert code == 0
        assert report["changes"] == [], name
    assert same(0.25, 0.25 + 1e-12) and same(0.0, 1e-12) and not same(0.25, 0.25 * (1 + 1e-8))


def test_a_change_beyond_the_interval_is_a_regression_or_an_improvement(tmp_path, capsys):
    table_b = synthetic_table()
    scale(table_b, "alpha", "mol_set", "force_rmse", 2.0)  # worse, far beyond the 5% spread
    scale(table_b, "alpha", "md_stability", "m_is", 0.5)  # better (lower M_IS)
    scale(table_b, MODELS[1], "bulk_moduli", "bulk_modulus_mae", 1.01)  # inside the interval
    code, report, printed = compare(
        tmp_path, publish(tmp_path / "a", synthetic_table()), publish(tmp_path / "b", table_b), capsys
    )
    found = verdicts(report)
    assert found[("alpha", "mol_set/force_rmse")] == "regression"
    assert found[("alpha", "M_FF")] == "regression"
    assert found[("alpha", "M_IS")] == "improvement"
    assert found[("alpha", "md_stability/m_is")] == "improvement"
    assert found[(MODELS[1], "bulk_moduli/bulk_modulus_mae")] == "within interval"
    assert report["differences"] == []
    assert code == 1 and "regression(s) beyond A's bootstrap interval" in printed


def test_a_metric_on_one_side_only_is_new_or_gone_never_a_regression(tmp_path, capsys):
    table_a, table_b = synthetic_table(), synthetic_table()
    table_a.rows.append(
        RawMetric(model="alpha", kind="stability", benchmark="md_stability", metric="survival_fraction", value=1.0)
    )
    table_b.rows.append(
        RawMetric(model="alpha", kind="property", benchmark="bulk_moduli", metric="shear_mae", value=99.0)
    )
    code, report, _ = compare(tmp_path, publish(tmp_path / "a", table_a), publish(tmp_path / "b", table_b), capsys)
    found = verdicts(report)
    assert found == {("alpha", "md_stability/survival_fraction"): "gone", ("alpha", "bulk_moduli/shear_mae"): "new"}
    assert code == 0


def test_a_model_that_lost_a_set_or_a_redefined_task_is_not_compared(tmp_path, capsys):
    table_b = synthetic_table()
    for row in table_b.rows:
        if row.model == "alpha" and row.benchmark == "cat_set" and row.metric == "force_rmse":
            row.status, row.value, row.replicates = "failed", None, None
    scale(table_b, "alpha", "mol_set", "force_rmse", 2.0)
    scale(table_b, "alpha", "bulk_moduli", "bulk_modulus_mae", 2.0)

    run_a = publish(tmp_path / "a", synthetic_table(), versioned("1", 0.01))
    code, report, _ = compare(tmp_path, run_a, publish(tmp_path / "b", table_b, versioned("2", 0.02)), capsys)
    found = {(c["model"], c["metric"]): c for c in report["changes"]}
    m_ff = found[("alpha", "M_FF")]
    assert m_ff["verdict"] == "not comparable" and "only A has cat_set/F" in m_ff["note"]
    assert found[("alpha", "mol_set/force_rmse")]["verdict"] == "regression"  # the set itself is alike
    task = found[("alpha", "bulk_moduli/bulk_modulus_mae")]
    assert task["verdict"] == "not comparable" and "version 1 → 2" in task["note"] and "strain" in task["note"]
    assert found[("alpha", "M_PC")]["verdict"] == "not comparable"
    assert any(d.startswith("bulk_moduli differs") for d in report["differences"])
    assert code == 1  # the one real regression (mol_set) still fails the check


def versioned(version: str, strain: float) -> Callable[[Leaderboard], Leaderboard]:
    """The bulk_moduli task at this version and these parameters (as a campaign's leaderboard has them)."""

    def edit(board: Leaderboard) -> Leaderboard:
        for info in board.benchmarks:
            if info.name == "bulk_moduli":
                info.version, info.params = version, {"strain": strain}
        return board

    return edit


def test_runs_published_before_leaderboard_json_are_judged_from_results_json(tmp_path, capsys):
    run_a = publish(tmp_path / "a", synthetic_table())
    (tmp_path / "a" / "leaderboard.json").unlink()
    loaded = load_run(run_a)
    assert loaded.benchmarks["mol_set"].dummies == {"energy_rmse_per_atom": 0.1, "force_rmse": 1.0}
    comparison = compare_runs(loaded, load_run(publish(tmp_path / "b", synthetic_table())))
    assert comparison.changes == [] and comparison.differences == []
