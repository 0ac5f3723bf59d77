"""Every task recomputes its metrics from its per-item records alone (`Task.summarize`), which the
bootstrap calls on records resampled by item, with repetition.

`assert_summarizes` is the check the task tests apply to the outputs of the runs they already do."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydantic import BaseModel

import lambench_core.tasks.builtin  # noqa: F401  (registers the built-in tasks)
from lambench_core.results.record import Metric
from lambench_core.tasks import stability
from lambench_core.tasks.base import _TASKS, StandaloneTask, Task, TaskOutput, task_class
from lambench_core.tasks.efficiency import EfficiencyParams, EfficiencyTask
from lambench_core.tasks.lambench_files import NoParams
from lambench_core.tasks.stability import MDStabilityParams, MDStabilityTask, MDSystem
from tests.core.test_task_context import task_context
from tests.support.helpers import model

REGISTERED = sorted(_TASKS)


def assert_summarizes(
    task: type[Task], output: TaskOutput, params: BaseModel, extras: Iterable[str] = ()
) -> dict[str, Metric]:
    """The output's metrics (but `extras`, which no record carries) are exactly summarize(records);
    summarize([]) has the same names and units, all None; the records' order does not matter; and
    every metric but counts is unchanged when each record is repeated (as a bootstrap draw may)."""
    extras = set(extras)
    assert all("item" in record for record in output.records)
    expected = {name: metric for name, metric in output.metrics.items() if name not in extras}
    summary = task.summarize(output.records, params)
    assert summary == expected
    empty = task.summarize([], params)
    assert {name: m.unit for name, m in empty.items()} == {name: m.unit for name, m in expected.items()}
    assert all(m.value is None for m in empty.values())
    reordered = task.summarize(output.records[::-1], params)
    doubled = task.summarize(output.records + output.records, params)
    for name, metric in summary.items():
        assert reordered[name].value == pytest.approx(metric.value, rel=1e-12, abs=1e-12)
        if metric.unit != "count":
            assert doubled[name].value == pytest.approx(metric.value, rel=1e-9, abs=1e-12)
    return summary


@pytest.mark.parametrize("name", REGISTERED)
def test_every_task_summarizes_its_records(name):
    task = task_class(name)
    assert task.summarize.__func__ is not Task.summarize.__func__, f"{name} does not override Task.summarize"
    params = task.Params()  # every built-in task has defaults for all its params
    empty = task.summarize([], params)
    assert empty and all(isinstance(metric, Metric) for metric in empty.values())
    assert all(metric.value is None for metric in empty.values())
    assert set(task.scored_metrics) <= set(empty)


def test_the_registry_holds_every_built_in_task():
    assert len(REGISTERED) >= 23
    assert {"force_field", "efficiency", "md_stability", "s22", "lambench_neb"} <= set(REGISTERED)


def test_the_base_task_cannot_summarize():
    class Bare(StandaloneTask[NoParams]):
        name = "bare"

        def run(self, model, params, context):  # pragma: no cover
            raise AssertionError

    with pytest.raises(NotImplementedError, match="'bare'"):
        Bare.summarize([], NoParams())


# ---------------------------------------------------------------------------------------------
# Records that mark a failed item


def _sweep(item: str, status: str, sizes: list[tuple[int, float]], exponent: float | None) -> dict:
    return {
        "item": item,
        "status": status,
        "sizes": [{"n_atoms": n, "us_per_atom": us} for n, us in sizes],
        "max_atoms": max((n for n, _ in sizes), default=None),
        "scaling_exponent": exponent,
    }


def test_efficiency_leaves_failed_systems_out():
    params = EfficiencyParams(eta_window=(100, 1000))
    completed = [
        _sweep("a", "completed", [(50, 9.0), (100, 2.0), (1000, 4.0), (2000, 7.0)], 1.1),
        _sweep("b", "completed", [(500, 6.0)], None),
    ]
    failed = _sweep("c", "failed", [(200, 1000.0), (4000, 1.0)], 3.0)
    metrics = EfficiencyTask.summarize([failed, *completed, failed], params)
    assert metrics == EfficiencyTask.summarize(completed, params)
    assert metrics["eta_us_per_atom"].value == pytest.approx(4.0)
    assert metrics["m_e"].value == pytest.approx(25.0)
    assert metrics["max_atoms"].value == 2000.0 and metrics["scaling_exponent"].value == pytest.approx(1.1)
    narrow = EfficiencyTask.summarize(completed, EfficiencyParams(eta_window=(500, 500)))
    assert narrow["eta_us_per_atom"].value == pytest.approx(6.0)
    assert "peak_rss_mib" not in metrics  # the run's own, added by run()
    assert all(m.value is None for m in EfficiencyTask.summarize([failed], params).values())


def test_stability_counts_failed_runs_as_attempted():
    completed = {"item": "a", "status": "completed", "drift_abs": 5e-3}
    failed = {"item": "b", "status": "failed", "drift_abs": None}
    metrics = MDStabilityTask.summarize([completed, failed], MDStabilityParams())
    assert metrics["survival_fraction"].value == 0.5
    assert metrics["m_is"].value == pytest.approx((1.0 + 5.0) / 2)
    assert metrics["drift_mean_abs"].value == pytest.approx(5e-3)
    resampled = MDStabilityTask.summarize([failed, failed, completed], MDStabilityParams())
    assert resampled["survival_fraction"].value == pytest.approx(1 / 3)


def test_a_stability_system_whose_model_raises_before_the_md_has_a_failed_record(monkeypatch):
    """A failure outside the MD loop leaves no trajectory, but the system still gets a record, so
    the metrics (which count it as attempted) follow from the records."""
    real_run_nve = stability.run_nve

    def run_nve(atoms, params, isolated):
        if len(atoms) > 4:
            raise RuntimeError("the model refuses")
        return real_run_nve(atoms, params, isolated)

    monkeypatch.setattr(stability, "run_nve", run_nve)
    systems = [MDSystem(dataset="cu_bulk_pbe", frame=0), MDSystem(dataset="cu_bulk_pbe", frame=0, repeat=(2, 1, 1))]
    params = MDStabilityParams(systems=systems, steps=20, log_interval=2)
    output = MDStabilityTask().run(model("emt"), params, task_context())
    (issue,) = output.issues
    assert issue.kind == "failed" and "the model refuses" in issue.reason
    completed, failed = output.records
    assert completed["status"] == "completed"
    assert failed["item"] == issue.item and failed["status"] == "failed" and failed["m_is"] == 5.0
    assert failed["failure"] == issue.reason and failed["n_atoms"] == 8
    assert output.metrics["survival_fraction"].value == 0.5
    assert_summarizes(MDStabilityTask, output, params)
